//! The command API's contract from the outside: tokens and roles, problem+json errors that name
//! the field and change nothing, and idempotent retries.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::App;

const CENTRE: (f64, f64) = (55.7600, 37.6200);

#[tokio::test]
async fn tokens_are_required_and_roles_are_enforced() {
    let app = App::spawn().await.unwrap();
    let vehicle = json!({"plate": "А777АА77", "vin": "XW8ZZZ61Z00000001", "model": "Kia Rio",
        "lat": 55.76, "lon": 37.62, "fuel_percent": 50, "odometer_km": 1.0});

    let anonymous = app.post("/v1/vehicles", None, &vehicle).await.unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.content_type(), "application/problem+json");

    let forged = app
        .post("/v1/vehicles", Some("not.a.token"), &vehicle)
        .await
        .unwrap();
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    let other_secret = http_edge::TokenKeys::from_secret(b"someone else's secret")
        .issue(
            Role::Fleet,
            "x",
            chrono::Duration::hours(1),
            chrono::Utc::now(),
        )
        .unwrap();
    let foreign = app
        .post("/v1/vehicles", Some(&other_secret), &vehicle)
        .await
        .unwrap();
    assert_eq!(foreign.status, StatusCode::UNAUTHORIZED);

    let customer = app.token(Role::Customer, &uuid::Uuid::now_v7().to_string());
    let wrong_role = app
        .post("/v1/vehicles", Some(&customer), &vehicle)
        .await
        .unwrap();
    assert_eq!(wrong_role.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong_role.body["rule"], "forbidden");

    let fleet = app.token(Role::Fleet, "fleet-1");
    let verify = app
        .post(
            &format!("/v1/customers/{}/verification", uuid::Uuid::now_v7()),
            Some(&fleet),
            &json!({"decision": "approved"}),
        )
        .await
        .unwrap();
    assert_eq!(verify.status, StatusCode::FORBIDDEN);
    let start = app
        .post(
            "/v1/trips",
            Some(&fleet),
            &json!({"vehicle_id": uuid::Uuid::now_v7()}),
        )
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.caller_event_count().await.unwrap(),
        0,
        "refused requests append nothing"
    );
}

#[tokio::test]
async fn a_role_that_may_not_use_a_route_is_refused_whatever_the_body() {
    let app = App::spawn().await.unwrap();
    let customer = app.token(Role::Customer, &uuid::Uuid::now_v7().to_string());
    let task = uuid::Uuid::now_v7();
    // Each route is closed to customers; each body is malformed for it (a wrong type, an
    // unknown field, not an object), which a caller who may use the route hears about as 400.
    let cases = [
        ("/v1/vehicles", json!({"plate": 7})),
        ("/v1/companies", json!({"nonsense": true})),
        ("/v1/fines", json!([])),
        (
            &*format!("/v1/service-tasks/{task}/assign"),
            json!({"staff_id": 7}),
        ),
    ];
    for (path, body) in &cases {
        let refused = app.post(path, Some(&customer), body).await.unwrap();
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
        assert_eq!(refused.body["rule"], "forbidden", "{path}");
        assert_eq!(refused.content_type(), "application/problem+json");
    }
    // Not even JSON: still 403, not 415.
    let not_json = app
        .send(
            Method::POST,
            "/v1/vehicles",
            Some(&customer),
            &[("content-type", "text/plain")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(not_json.status, StatusCode::FORBIDDEN, "{}", not_json.body);
    // Without a token it is 401, whatever the body.
    let anonymous = app
        .post("/v1/vehicles", None, &json!({"plate": 7}))
        .await
        .unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    // A caller who may use the route still hears what is wrong with the body.
    let fleet = app.token(Role::Fleet, "fleet-1");
    let malformed = app
        .post("/v1/vehicles", Some(&fleet), &json!({"plate": 7}))
        .await
        .unwrap();
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.body
    );
    assert_eq!(malformed.body["field"], "plate");
    assert_eq!(app.caller_event_count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_customer_acts_only_on_their_own_trip() {
    let app = App::spawn().await.unwrap();
    let owner = app.verified_customer(1).await.unwrap();
    let other = app.verified_customer(2).await.unwrap();
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let owner_token = app.token(Role::Customer, &owner);
    let other_token = app.token(Role::Customer, &other);
    let trip = app
        .post(
            "/v1/trips",
            Some(&owner_token),
            &json!({"vehicle_id": vehicle_id}),
        )
        .await
        .unwrap();
    let trip_id = trip.str("trip_id");
    let before = app.caller_event_count().await.unwrap();

    for action in ["park", "resume", "end"] {
        let answer = app
            .post(
                &format!("/v1/trips/{trip_id}/{action}"),
                Some(&other_token),
                &json!({}),
            )
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{action}: {}",
            answer.body
        );
    }
    // The read model follows the log a moment behind: wait until the owner sees the trip.
    tests::eventually(std::time::Duration::from_secs(10), || async {
        let own = app
            .get(&format!("/v1/trips/{trip_id}"), Some(&owner_token))
            .await?;
        Ok((own.status == StatusCode::OK).then_some(()))
    })
    .await
    .unwrap();
    let read = app
        .get(&format!("/v1/trips/{trip_id}"), Some(&other_token))
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.body);
    let unknown = app
        .post(
            &format!("/v1/trips/{}/park", uuid::Uuid::now_v7()),
            Some(&owner_token),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["rule"], "trip-not-found");
    assert_eq!(app.caller_event_count().await.unwrap(), before);
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field_and_changes_nothing() {
    let app = App::spawn().await.unwrap();
    let valid = json!({
        "name": "Пётр Сидоров", "phone": "+79161112233", "email": "petr@example.ru",
        "birth_date": "1990-01-01",
        "licence": {"number": "7700112233", "issued_on": "2010-01-01", "expires_on": "2030-01-01"},
    });
    let cases = [
        (
            "phone",
            json!("twelve"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "phone",
        ),
        (
            "email",
            json!("petr-at-example"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            "name",
            json!("   "),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "birth_date",
            json!("yesterday"),
            StatusCode::BAD_REQUEST,
            "birth_date",
        ),
        (
            "birth_date",
            json!("2999-01-01"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "birth_date",
        ),
    ];
    for (field, value, status, named) in cases {
        let mut body = valid.clone();
        body[field] = value;
        let answer = app.post("/v1/customers", None, &body).await.unwrap();
        assert_eq!(answer.status, status, "{field}: {}", answer.body);
        assert_eq!(answer.body["field"], named, "{}", answer.body);
        assert_eq!(answer.content_type(), "application/problem+json");
        assert!(
            answer.body["type"]
                .as_str()
                .unwrap()
                .starts_with("https://velka.dev/problems/")
        );
    }
    let mut expired = valid.clone();
    expired["licence"]["expires_on"] = json!("2009-01-01");
    let answer = app.post("/v1/customers", None, &expired).await.unwrap();
    assert_eq!(
        answer.body["field"], "licence.expires_on",
        "{}",
        answer.body
    );

    let mut missing = valid.clone();
    missing["licence"].as_object_mut().unwrap().remove("number");
    let answer = app.post("/v1/customers", None, &missing).await.unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["field"], "licence.number", "{}", answer.body);

    let mut extra = valid.clone();
    extra["is_admin"] = json!(true);
    let answer = app.post("/v1/customers", None, &extra).await.unwrap();
    assert_eq!(answer.body["field"], "is_admin", "{}", answer.body);

    let not_json = app
        .send(
            Method::POST,
            "/v1/customers",
            None,
            &[("content-type", "application/json")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.caller_event_count().await.unwrap(), 0);

    // A phone number belongs to one customer.
    let first = app.post("/v1/customers", None, &valid).await.unwrap();
    assert_eq!(first.status, StatusCode::CREATED);
    let mut same_phone = valid.clone();
    same_phone["email"] = json!("another@example.ru");
    let answer = app.post("/v1/customers", None, &same_phone).await.unwrap();
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.body["rule"], "already-taken");
    assert_eq!(answer.body["field"], "phone");
    assert_eq!(app.caller_event_count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_first_answer_and_appends_nothing() {
    let app = App::spawn().await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let token = app.token(Role::Customer, &customer_id);
    let body = json!({"vehicle_id": vehicle_id});
    let key = [("idempotency-key", "start-1")];

    let first = app
        .send(Method::POST, "/v1/trips", Some(&token), &key, Some(&body))
        .await
        .unwrap();
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let after_first = app.caller_event_count().await.unwrap();

    let retry = app
        .send(Method::POST, "/v1/trips", Some(&token), &key, Some(&body))
        .await
        .unwrap();
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(app.caller_event_count().await.unwrap(), after_first);

    // Without the key, the same request is a new command: the customer already drives.
    let again = app.post("/v1/trips", Some(&token), &body).await.unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["rule"], "customer-has-active-trip");

    // The key is the caller's: reused for a different request it is refused.
    let other_body = json!({"vehicle_id": uuid::Uuid::now_v7()});
    let reused = app
        .send(
            Method::POST,
            "/v1/trips",
            Some(&token),
            &key,
            Some(&other_body),
        )
        .await
        .unwrap();
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["rule"], "idempotency-key-reused");

    // A rejected command's answer is remembered too, so its retry gets the same answer.
    let trip_id = first.str("trip_id");
    let resume_key = [("idempotency-key", "resume-1")];
    let path = format!("/v1/trips/{trip_id}/resume");
    let refused = app
        .send(
            Method::POST,
            &path,
            Some(&token),
            &resume_key,
            Some(&json!({})),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["rule"], "trip-not-parked");
    app.post(
        &format!("/v1/trips/{trip_id}/park"),
        Some(&token),
        &json!({}),
    )
    .await
    .unwrap();
    let replayed = app
        .send(
            Method::POST,
            &path,
            Some(&token),
            &resume_key,
            Some(&json!({})),
        )
        .await
        .unwrap();
    assert_eq!(
        replayed.status,
        StatusCode::CONFLICT,
        "the first answer, though resuming would now work"
    );
    assert_eq!(replayed.body, refused.body);
    assert_eq!(replayed.content_type(), "application/problem+json");
}

#[tokio::test]
async fn the_clock_moves_only_when_manual_and_only_for_the_service_role() {
    let app = App::spawn().await.unwrap();
    let support = app.token(Role::Support, "agent");
    let refused = app
        .post(
            "/v1/admin/clock",
            Some(&support),
            &json!({"advance_seconds": 60}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let service = app.token(Role::Service, "tests");
    let before = app.get("/v1/admin/clock", Some(&service)).await.unwrap();
    let backwards = app
        .post(
            "/v1/admin/clock",
            Some(&service),
            &json!({"advance_seconds": -5}),
        )
        .await
        .unwrap();
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(backwards.body["field"], "advance_seconds");
    app.advance_clock(17 * 60).await.unwrap();
    let after = app.get("/v1/admin/clock", Some(&service)).await.unwrap();
    let parse = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v["now"].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        (parse(&after.body) - parse(&before.body)).num_seconds(),
        17 * 60
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = App::spawn().await.unwrap();
    let missing = app.get("/v1/nothing-here", None).await.unwrap();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["rule"], "route-not-found");
    assert_eq!(missing.content_type(), "application/problem+json");
    let wrong = app
        .send(Method::DELETE, "/v1/trips", None, &[], None)
        .await
        .unwrap();
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.body["rule"], "method-not-allowed");
    let ready = app.get("/readyz", None).await.unwrap();
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["database"], "reachable");
    let metrics = app.get("/metrics", None).await.unwrap();
    assert!(
        metrics
            .body
            .as_str()
            .unwrap_or_default()
            .contains("velka_http_request_seconds")
    );
}

#[tokio::test]
async fn a_plate_typed_with_latin_look_alikes_is_the_same_plate() {
    let app = App::spawn().await.unwrap();
    let fleet = app.token(Role::Fleet, "fleet-1");
    let car = |plate: &str, vin: &str| {
        json!({"plate": plate, "vin": vin, "model": "Kia Rio",
            "lat": CENTRE.0, "lon": CENTRE.1, "fuel_percent": 50, "odometer_km": 1.0})
    };
    let cyrillic = app
        .post(
            "/v1/vehicles",
            Some(&fleet),
            &car("А123ВС777", "XW8ZZZ61Z00000001"),
        )
        .await
        .unwrap();
    assert_eq!(cyrillic.status, StatusCode::CREATED, "{}", cyrillic.body);
    // The same letters typed on a Latin keyboard are the same plate.
    let latin = app
        .post(
            "/v1/vehicles",
            Some(&fleet),
            &car("a123bc777", "XW8ZZZ61Z00000002"),
        )
        .await
        .unwrap();
    assert_eq!(latin.status, StatusCode::CONFLICT, "{}", latin.body);
    assert_eq!(latin.body["rule"], "already-taken");
    assert_eq!(latin.body["field"], "plate");
    assert_eq!(app.caller_event_count().await.unwrap(), 1);
}
