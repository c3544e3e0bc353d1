//! Business accounts over HTTP: support registers a company (one per INN), adds and removes
//! employees; a customer belongs to at most one company, and the customer's own stream records
//! it in the same append as the company's.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::App;

/// Real, valid INNs (Sberbank and Gazprom).
const INN_1: &str = "7707083893";
const INN_2: &str = "7736050003";

async fn stream_types(app: &App, stream_id: &str) -> Vec<String> {
    let support = app.token(Role::Support, "agent-7");
    let answer = app
        .get(&format!("/v1/streams/{stream_id}/events"), Some(&support))
        .await
        .unwrap();
    answer.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

fn company(name: &str, inn: &str) -> Value {
    json!({"name": name, "inn": inn, "billing_email": "billing@romashka.example"})
}

#[tokio::test]
async fn support_registers_a_company_once_per_valid_inn() {
    let app = App::spawn().await.unwrap();
    let support = app.token(Role::Support, "agent-7");

    let registered = app
        .post(
            "/v1/companies",
            Some(&support),
            &company("ООО «Ромашка»", INN_1),
        )
        .await
        .unwrap();
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    let company_id = registered.str("company_id");
    assert_eq!(
        stream_types(&app, &format!("company-{company_id}")).await,
        ["CompanyRegistered"]
    );

    let before = app.caller_event_count().await.unwrap();
    let bad_checksum = app
        .post(
            "/v1/companies",
            Some(&support),
            &company("ООО «Лютик»", "7707083894"),
        )
        .await
        .unwrap();
    assert_eq!(bad_checksum.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_checksum.body["field"], "inn");
    assert_eq!(bad_checksum.content_type(), "application/problem+json");
    let same_inn = app
        .post(
            "/v1/companies",
            Some(&support),
            &company("ООО «Лютик»", INN_1),
        )
        .await
        .unwrap();
    assert_eq!(same_inn.status, StatusCode::CONFLICT, "{}", same_inn.body);
    assert_eq!(same_inn.body["rule"], "already-taken");
    assert_eq!(same_inn.body["field"], "inn");
    let mut bad_email = company("ООО «Лютик»", INN_2);
    bad_email["billing_email"] = json!("billing-at-lutik");
    let answer = app
        .post("/v1/companies", Some(&support), &bad_email)
        .await
        .unwrap();
    assert_eq!(answer.body["field"], "billing_email");
    for role in [Role::Customer, Role::Fleet] {
        let token = app.token(role, &uuid::Uuid::now_v7().to_string());
        let forbidden = app
            .post(
                "/v1/companies",
                Some(&token),
                &company("ООО «Лютик»", INN_2),
            )
            .await
            .unwrap();
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{role}");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), before);
}

#[tokio::test]
async fn an_employee_belongs_to_one_company_at_a_time() {
    let app = App::spawn().await.unwrap();
    let support = app.token(Role::Support, "agent-7");
    let romashka = app
        .post(
            "/v1/companies",
            Some(&support),
            &company("ООО «Ромашка»", INN_1),
        )
        .await
        .unwrap()
        .str("company_id");
    let lutik = app
        .post(
            "/v1/companies",
            Some(&support),
            &company("ООО «Лютик»", INN_2),
        )
        .await
        .unwrap()
        .str("company_id");
    let customer_id = app.verified_customer(1).await.unwrap();
    let employees = |company: &str| format!("/v1/companies/{company}/employees");

    let added = app
        .post(
            &employees(&romashka),
            Some(&support),
            &json!({"customer_id": customer_id}),
        )
        .await
        .unwrap();
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["employee"], json!(true));
    assert_eq!(
        stream_types(&app, &format!("customer-{customer_id}")).await,
        [
            "CustomerRegistered",
            "CustomerVerified",
            "CustomerJoinedCompany"
        ]
    );
    assert_eq!(
        stream_types(&app, &format!("company-{romashka}")).await,
        ["CompanyRegistered", "EmployeeAdded"]
    );

    // Refusals append nothing: another company, the same company again, an unknown company or
    // customer, the wrong role.
    let before = app.caller_event_count().await.unwrap();
    let other = app
        .post(
            &employees(&lutik),
            Some(&support),
            &json!({"customer_id": customer_id}),
        )
        .await
        .unwrap();
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(other.body["rule"], "customer-in-another-company");
    let again = app
        .post(
            &employees(&romashka),
            Some(&support),
            &json!({"customer_id": customer_id}),
        )
        .await
        .unwrap();
    assert_eq!(again.body["rule"], "customer-already-employee");
    let nowhere = app
        .post(
            &employees(&uuid::Uuid::now_v7().to_string()),
            Some(&support),
            &json!({"customer_id": customer_id}),
        )
        .await
        .unwrap();
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.body["rule"], "company-not-found");
    let nobody = app
        .post(
            &employees(&lutik),
            Some(&support),
            &json!({"customer_id": uuid::Uuid::now_v7()}),
        )
        .await
        .unwrap();
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert_eq!(nobody.body["rule"], "customer-not-found");
    let me = app.token(Role::Customer, &customer_id);
    let forbidden = app
        .post(
            &employees(&lutik),
            Some(&me),
            &json!({"customer_id": customer_id}),
        )
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let remove_path =
        |company: &str| format!("/v1/companies/{company}/employees/{customer_id}/remove");
    let forbidden = app
        .post(&remove_path(&romashka), Some(&me), &json!({}))
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let not_theirs = app
        .post(&remove_path(&lutik), Some(&support), &json!({}))
        .await
        .unwrap();
    assert_eq!(not_theirs.status, StatusCode::CONFLICT);
    assert_eq!(not_theirs.body["rule"], "customer-not-employee");
    assert_eq!(app.caller_event_count().await.unwrap(), before);

    // Removed from one company, the customer may join the other.
    let removed = app
        .post(&remove_path(&romashka), Some(&support), &json!({}))
        .await
        .unwrap();
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body["employee"], json!(false));
    let joined = app
        .post(
            &employees(&lutik),
            Some(&support),
            &json!({"customer_id": customer_id}),
        )
        .await
        .unwrap();
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(
        stream_types(&app, &format!("customer-{customer_id}")).await,
        [
            "CustomerRegistered",
            "CustomerVerified",
            "CustomerJoinedCompany",
            "CustomerLeftCompany",
            "CustomerJoinedCompany"
        ]
    );
}

#[tokio::test]
async fn two_companies_racing_for_one_customer_cannot_both_win() {
    let app = App::spawn().await.unwrap();
    let support = app.token(Role::Support, "agent-7");
    let mut companies = Vec::new();
    for (name, inn) in [("ООО «Ромашка»", INN_1), ("ООО «Лютик»", INN_2)] {
        let answer = app
            .post("/v1/companies", Some(&support), &company(name, inn))
            .await
            .unwrap();
        companies.push(answer.str("company_id"));
    }
    let customer_id = app.verified_customer(1).await.unwrap();
    let body = json!({"customer_id": customer_id});
    let paths: Vec<String> = companies
        .iter()
        .map(|company| format!("/v1/companies/{company}/employees"))
        .collect();
    let attempts = paths
        .iter()
        .map(|path| app.post(path, Some(&support), &body));
    let answers = futures::future::join_all(attempts).await;
    let statuses: Vec<StatusCode> = answers.into_iter().map(|a| a.unwrap().status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    let joined = stream_types(&app, &format!("customer-{customer_id}"))
        .await
        .iter()
        .filter(|t| *t == "CustomerJoinedCompany")
        .count();
    assert_eq!(joined, 1);
}
