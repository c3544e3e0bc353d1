//! `/openapi.json` is generated from the code and covers every route: each route the server
//! answers is in the document, each documented operation is answered by the server, and every
//! API operation documents its problem+json errors.

#![allow(clippy::unwrap_used)]

use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;
use tests::App;

/// Every route the server serves. Add a route here when you add it to the server: the test then
/// checks that it is documented.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/customers"),
    ("POST", "/v1/customers/{customer_id}/verification"),
    ("POST", "/v1/vehicles"),
    ("POST", "/v1/vehicles/{vehicle_id}/telemetry"),
    ("GET", "/v1/vehicles/available"),
    ("POST", "/v1/trips"),
    ("GET", "/v1/trips/{trip_id}"),
    ("POST", "/v1/trips/{trip_id}/park"),
    ("POST", "/v1/trips/{trip_id}/resume"),
    ("POST", "/v1/trips/{trip_id}/end"),
    ("GET", "/v1/streams/{stream_id}/events"),
    ("POST", "/v1/admin/clock"),
    ("GET", "/v1/admin/clock"),
    ("GET", "/v1/admin/projections"),
    ("GET", "/v1/admin/sagas"),
    ("POST", "/v1/accounts/{account_id}/payments"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    (
        "POST",
        "/v1/accounts/{account_id}/charges/{charge_id}/refunds",
    ),
    (
        "POST",
        "/v1/accounts/{account_id}/charges/{charge_id}/waive",
    ),
    ("GET", "/v1/accounts/{account_id}"),
    ("POST", "/v1/penalties"),
    ("POST", "/v1/fines"),
    ("POST", "/v1/fines/{fine_id}/match"),
    ("POST", "/v1/webhooks/kyc"),
    ("POST", "/v1/customers/{customer_id}/kyc/manual-review"),
    ("GET", "/v1/fines/{fine_id}"),
    // People and fleet.
    ("POST", "/v1/customers/{customer_id}/documents"),
    ("POST", "/v1/customers/{customer_id}/blocks"),
    ("POST", "/v1/customers/{customer_id}/erase"),
    ("POST", "/v1/customers/{customer_id}/blocks/{reason}/lift"),
    ("POST", "/v1/companies"),
    ("POST", "/v1/companies/{company_id}/employees"),
    (
        "POST",
        "/v1/companies/{company_id}/employees/{customer_id}/remove",
    ),
    ("POST", "/v1/vehicles/{vehicle_id}/service-tasks"),
    ("POST", "/v1/service-tasks/{task_id}/assign"),
    ("POST", "/v1/service-tasks/{task_id}/start"),
    ("POST", "/v1/service-tasks/{task_id}/complete"),
    ("GET", "/v1/service-tasks/{task_id}"),
    ("POST", "/v1/vehicles/{vehicle_id}/damage-reports"),
    ("POST", "/v1/quotes"),
    ("POST", "/v1/reservations"),
    ("POST", "/v1/reservations/{reservation_id}/cancel"),
    ("GET", "/v1/reservations/{reservation_id}"),
    // The public GBFS feed.
    ("GET", "/gbfs/v3/gbfs.json"),
    ("GET", "/gbfs/v3/system_information.json"),
    ("GET", "/gbfs/v3/vehicle_types.json"),
    ("GET", "/gbfs/v3/vehicle_status.json"),
    ("GET", "/gbfs/v3/geofencing_zones.json"),
    ("GET", "/gbfs/v3/system_pricing_plans.json"),
    // Support, CRM and the app's history.
    ("GET", "/v1/vehicles/{vehicle_id}/holder"),
    ("GET", "/v1/vehicles/by-plate/{plate}/holder"),
    ("GET", "/v1/support/search"),
    ("GET", "/v1/customers/{customer_id}/trips"),
    ("GET", "/v1/support/customers/{customer_id}"),
    ("GET", "/v1/fleet/status"),
    // Auditors.
    ("GET", "/v1/audit/events"),
    ("GET", "/v1/audit/money"),
    ("GET", "/v1/audit/streams/{stream_id}/state"),
];

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = App::spawn().await.unwrap();
    let answer = app.get("/openapi.json", None).await.unwrap();
    assert_eq!(answer.status, 200);
    let document = answer.body;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );

    let documented = documented(&document);
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    let unlisted: Vec<_> = documented.difference(&served).collect();
    assert!(
        unlisted.is_empty(),
        "documented but not in ROUTES: {unlisted:?}"
    );

    // The server answers every documented operation (with anything but "no such route").
    for (method, path) in &documented {
        let concrete = path
            .replace("{stream_id}", "trip-00000000-0000-0000-0000-000000000000")
            .replace(['{', '}'], "")
            .replace("customer_id", "00000000-0000-0000-0000-000000000000")
            .replace("vehicle_id", "00000000-0000-0000-0000-000000000000")
            .replace("trip_id", "00000000-0000-0000-0000-000000000000");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let answer = app
            .send(method.clone(), &concrete, None, &[], None)
            .await
            .unwrap();
        assert_ne!(
            answer.body["rule"], "route-not-found",
            "{method} {concrete}"
        );
        assert_ne!(
            answer.body["rule"], "method-not-allowed",
            "{method} {concrete}"
        );
    }
}

#[tokio::test]
async fn every_api_operation_documents_its_schemas_and_problems() {
    let app = App::spawn().await.unwrap();
    let document = app.get("/openapi.json", None).await.unwrap().body;
    let mut operation_ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(
                operation_ids.insert(id.to_owned()),
                "operationId {id} is used twice"
            );
            if !path.starts_with("/v1/") {
                continue;
            }
            let responses = operation["responses"].as_object().unwrap();
            let success = responses
                .keys()
                .find(|status| status.starts_with('2'))
                .unwrap();
            assert!(
                responses[success]["content"]["application/json"]["schema"].is_object(),
                "{method} {path}: the success answer has no schema"
            );
            let problems = responses
                .iter()
                .filter(|(status, _)| status.starts_with('4'))
                .filter(|(_, r)| r["content"]["application/problem+json"].is_object())
                .count();
            assert!(
                problems >= 3,
                "{method} {path} documents {problems} problem answers"
            );
            // The clock is not a command; the KYC provider's callback is idempotent by its
            // check id, which the provider controls (it cannot send our header).
            if method == "post" && path != "/v1/admin/clock" && path != "/v1/webhooks/kyc" {
                let has_key = operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
                assert!(has_key, "{method} {path} does not document Idempotency-Key");
            }
        }
    }
    assert!(document["components"]["schemas"]["Problem"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}
