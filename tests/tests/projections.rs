//! `GET /v1/admin/projections` from the outside: every read model's position, lag and health,
//! for operators only.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::StatusCode;
use std::time::Duration;
use tests::{App, eventually};

const CENTRE: (f64, f64) = (55.7600, 37.6200);

#[tokio::test]
async fn operators_see_every_projector_reach_the_head_of_the_log() {
    // By default the projectors run on a thread and runtime of their own.
    every_projector_reaches_the_head(App::spawn().await.unwrap()).await;
}

#[tokio::test]
async fn projectors_on_the_requests_runtime_reach_the_head_too() {
    let app = App::spawn_with(&[("VELKA_SHARED_PROJECTOR_RUNTIME", "1")])
        .await
        .unwrap();
    every_projector_reaches_the_head(app).await;
}

async fn every_projector_reaches_the_head(app: App) {
    app.car(1, CENTRE).await.unwrap();
    let service = app.token(Role::Service, "ops");

    let projectors = eventually(Duration::from_secs(10), || async {
        let answer = app.get("/v1/admin/projections", Some(&service)).await?;
        anyhow::ensure!(answer.status == StatusCode::OK, "{}", answer.body);
        let list = answer.body.as_array().cloned().unwrap_or_default();
        let caught_up = !list.is_empty()
            && list
                .iter()
                .all(|p| p["lag_events"] == 0 && p["position"] == p["head"]);
        Ok(caught_up.then_some(list))
    })
    .await
    .unwrap();
    let names: Vec<&str> = projectors
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"trips_view"), "{names:?}");
    assert!(names.contains(&"vehicles_view"), "{names:?}");
    for projector in &projectors {
        assert_eq!(projector["status"], "running", "{projector}");
        assert!(projector["head"].as_i64().unwrap() > 0, "{projector}");
        assert_eq!(projector["lag_ms"], 0, "{projector}");
        assert_eq!(projector["last_error"], serde_json::Value::Null);
    }
    // The car's events were applied by the cars' read model.
    let vehicles = projectors
        .iter()
        .find(|p| p["name"] == "vehicles_view")
        .unwrap();
    assert!(vehicles["events_applied"].as_u64().unwrap() >= 1);

    let customer = app.token(Role::Customer, &uuid::Uuid::now_v7().to_string());
    let forbidden = app
        .get("/v1/admin/projections", Some(&customer))
        .await
        .unwrap();
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.content_type(), "application/problem+json");
    let anonymous = app.get("/v1/admin/projections", None).await.unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
