//! Fines over HTTP against the real binary: the feed imports a fine, which stays open; a repeat
//! of its resolution number is answered with the same fine and appends nothing, also when 20
//! imports race; contradicting or invalid fines are refused and append nothing; only the
//! service role imports, only support and auditors read.

#![allow(clippy::unwrap_used)]

mod money;

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use http_edge::Role;
use money::{DEADLINE, server_now};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{App, eventually, sqlx_scalar};

const RESOLUTION: &str = "18810177231125000017";

/// A speeding fine caught on Tverskaya two days before `now`, issued a day later.
fn fine(now: DateTime<Utc>, resolution_number: &str) -> Value {
    let occurred_at = now - Duration::days(2);
    json!({
        "plate": "а 123 вс 777",
        "occurred_at": occurred_at,
        "lat": 55.7648,
        "lon": 37.6056,
        "amount_kopecks": 50_000,
        "resolution_number": resolution_number,
        "issued_on": (occurred_at + Duration::days(1)).date_naive(),
    })
}

fn feed(app: &App) -> String {
    app.token(Role::Service, "fine-feed")
}

#[tokio::test]
async fn an_imported_fine_stays_open_and_a_repeat_import_is_the_same_fine() {
    let app = App::spawn().await.unwrap();
    let now = server_now(&app).await.unwrap();
    let imported = app
        .post("/v1/fines", Some(&feed(&app)), &fine(now, RESOLUTION))
        .await
        .unwrap();
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.body);
    assert_eq!(imported.body["status"], "open");
    assert_eq!(imported.body["duplicate"], false);
    let fine_id = imported.str("fine_id");

    let support = app.token(Role::Support, "agent-7");
    let shown = eventually(DEADLINE, || async {
        let answer = app
            .get(&format!("/v1/fines/{fine_id}"), Some(&support))
            .await?;
        Ok((answer.status == StatusCode::OK).then_some(answer.body))
    })
    .await
    .unwrap();
    assert_eq!(shown["status"], "open");
    assert_eq!(shown["resolution_number"], RESOLUTION);
    assert_eq!(shown["plate"], "А123ВС777");
    assert_eq!(shown["amount_kopecks"], 50_000);

    let before = requests_appended(&app).await;
    let repeat = app
        .post("/v1/fines", Some(&feed(&app)), &fine(now, RESOLUTION))
        .await
        .unwrap();
    assert_eq!(repeat.status, StatusCode::OK, "{}", repeat.body);
    assert_eq!(repeat.body["fine_id"], fine_id.as_str());
    assert_eq!(repeat.body["duplicate"], true);
    assert_eq!(requests_appended(&app).await, before);

    let auditor = app.token(Role::Auditor, "auditor-1");
    let read = app
        .get(&format!("/v1/fines/{fine_id}"), Some(&auditor))
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::OK);
}

#[tokio::test]
async fn contradicting_or_invalid_fines_are_refused_and_append_nothing() {
    let app = App::spawn().await.unwrap();
    let now = server_now(&app).await.unwrap();
    let first = app
        .post("/v1/fines", Some(&feed(&app)), &fine(now, RESOLUTION))
        .await
        .unwrap();
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let before = requests_appended(&app).await;

    let mut amended = fine(now, RESOLUTION);
    amended["amount_kopecks"] = json!(75_000);
    let conflict = app
        .post("/v1/fines", Some(&feed(&app)), &amended)
        .await
        .unwrap();
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.body);
    assert_eq!(conflict.content_type(), "application/problem+json");
    assert_eq!(conflict.body["rule"], "resolution-number-conflict");
    assert_eq!(conflict.body["field"], "resolution_number");

    let other = "18810177231125000024";
    let cases: [(&str, Value); 6] = [
        ("occurred_at", json!(now + Duration::hours(1))),
        ("resolution_number", json!("188101772311250000171")),
        ("amount_kopecks", json!(0)),
        ("plate", json!("А1")),
        ("lat", json!(91.0)),
        ("issued_on", json!((now - Duration::days(3)).date_naive())),
    ];
    for (field, value) in cases {
        let mut bad = fine(now, other);
        bad[field] = value;
        let answer = app
            .post("/v1/fines", Some(&feed(&app)), &bad)
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            answer.body
        );
        assert_eq!(answer.body["rule"], "invalid-field", "{field}");
        assert_eq!(answer.body["field"], field);
    }
    assert_eq!(requests_appended(&app).await, before);
}

/// Events in the log but the fine saga's own reaction to an import (`FineAssignedToFleet`, which
/// it appends whenever it gets to it, racing the test): what the test's requests appended.
async fn requests_appended(app: &App) -> i64 {
    sqlx_scalar(
        app,
        "SELECT count(*) FROM events WHERE event_type <> 'FineAssignedToFleet'",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn only_the_feed_imports_and_only_support_and_auditors_read_fines() {
    let app = App::spawn().await.unwrap();
    let now = server_now(&app).await.unwrap();
    for role in [Role::Customer, Role::Support, Role::Fleet, Role::Auditor] {
        let token = app.token(role, &uuid::Uuid::now_v7().to_string());
        let answer = app
            .post("/v1/fines", Some(&token), &fine(now, RESOLUTION))
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            answer.body
        );
        assert_eq!(answer.body["rule"], "forbidden");
    }
    assert_eq!(app.caller_event_count().await.unwrap(), 0);

    let imported = app
        .post("/v1/fines", Some(&feed(&app)), &fine(now, RESOLUTION))
        .await
        .unwrap();
    let fine_id = imported.str("fine_id");
    for role in [Role::Customer, Role::Fleet, Role::Service] {
        let token = app.token(role, &uuid::Uuid::now_v7().to_string());
        let answer = app
            .get(&format!("/v1/fines/{fine_id}"), Some(&token))
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            answer.body
        );
    }
    let support = app.token(Role::Support, "agent-7");
    let unknown = app
        .get(
            &format!("/v1/fines/{}", uuid::Uuid::now_v7()),
            Some(&support),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["rule"], "fine-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_imports_of_one_resolution_make_exactly_one_fine() {
    let app = App::spawn().await.unwrap();
    let now = server_now(&app).await.unwrap();
    let body = fine(now, RESOLUTION);
    let tokens: Vec<String> = (0..20)
        .map(|n| app.token(Role::Service, &format!("fine-feed-{n}")))
        .collect();
    let answers = join_all(
        tokens
            .iter()
            .map(|token| app.post("/v1/fines", Some(token), &body)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .unwrap();

    let created: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    let fine_id = created[0].str("fine_id");
    for answer in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body["duplicate"], true);
        assert_eq!(answer.str("fine_id"), fine_id);
    }
    let fines = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'FineReceived'",
    )
    .await
    .unwrap();
    assert_eq!(fines, 1);
    let claims = sqlx_scalar(
        &app,
        &format!(
            "SELECT count(*) FROM exclusive_claims WHERE claim = 'fine-resolution:{RESOLUTION}'"
        ),
    )
    .await
    .unwrap();
    assert_eq!(claims, 1);
}
