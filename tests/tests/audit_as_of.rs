//! As of time T, through the real binary: a trip started before T and ended after it is active
//! in its state as of T (over the API and `velka audit state`) and in the read models rebuilt as
//! of T (`velka audit rebuild-as-of`), while the live ones show it ended; the customer's account,
//! charged at the end, did not exist yet. Every as-of query is recorded.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{App, eventually, sqlx_scalar, velka_binary};

const CENTRE: (f64, f64) = (55.7648, 37.6056);

async fn server_now(app: &App) -> DateTime<Utc> {
    let service = app.token(Role::Service, "test-clock");
    let answer = app.get("/v1/admin/clock", Some(&service)).await.unwrap();
    answer.body["now"].as_str().unwrap().parse().unwrap()
}

/// Runs `velka audit ARGS` on the app's database: (exit success, stdout, stderr).
async fn velka_audit(app: &App, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(velka_binary().unwrap())
        .arg("audit")
        .args(args)
        .args(["--by", "eve"])
        .env("DATABASE_URL", app.db.url())
        .env("VELKA_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn state_and_read_models_as_of_a_time_are_what_the_system_knew_then() {
    let app = App::spawn().await.unwrap();
    let customer_id = app.verified_customer(1).await.unwrap();
    let vehicle_id = app.car(1, CENTRE).await.unwrap();
    let token = app.token(Role::Customer, &customer_id);
    let started = app
        .post(
            "/v1/trips",
            Some(&token),
            &json!({ "vehicle_id": vehicle_id }),
        )
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let trip_id = started.str("trip_id");
    app.advance_clock(60).await.unwrap();
    let t = server_now(&app).await;
    app.advance_clock(10 * 60).await.unwrap();
    let locked = app
        .telemetry(&vehicle_id, CENTRE, 12_005.0, true)
        .await
        .unwrap();
    assert_eq!(locked.status, StatusCode::OK);
    let ended = app
        .post(
            &format!("/v1/trips/{trip_id}/end"),
            Some(&token),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    let auditor = app.token(Role::Auditor, "eve");
    let at = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let query = |stream: String, as_of: String| {
        let app = &app;
        let auditor = auditor.clone();
        async move {
            app.get(
                &format!(
                    "/v1/audit/streams/{stream}/state?as_of={}",
                    as_of.replace('+', "%2B")
                ),
                Some(&auditor),
            )
            .await
            .unwrap()
        }
    };

    // The trip as of T: started, not ended, no price; now: ended with its price.
    let then = query(format!("trip-{trip_id}"), at.clone()).await;
    assert_eq!(then.status, StatusCode::OK, "{}", then.body);
    let trip_events_by_t = sqlx_scalar(
        &app,
        &format!(
            "SELECT count(*) FROM events WHERE stream_id = 'trip-{trip_id}' AND recorded_at <= '{at}'"
        ),
    )
    .await
    .unwrap();
    assert_eq!(then.body["version"].as_i64(), Some(trip_events_by_t));
    assert!(trip_events_by_t >= 1);
    assert!(
        then.body["later_events"].as_i64() >= Some(1),
        "{}",
        then.body
    );
    assert_eq!(then.body["state"]["price"], Value::Null, "{}", then.body);
    assert!(then.body["state"]["started"].is_object());
    let now = query(
        format!("trip-{trip_id}"),
        server_now(&app)
            .await
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
    .await;
    assert_eq!(now.status, StatusCode::OK);
    assert!(now.body["state"]["price"].is_object(), "{}", now.body);
    assert_eq!(now.body["later_events"], 0);

    // The account, charged at the end, did not exist at T.
    let account = query(format!("account-{customer_id}"), at.clone()).await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    assert_eq!(account.body["existed"], false);
    assert_eq!(account.body["version"], 0);

    // Bad questions name what is wrong.
    let bad = query(format!("trip-{trip_id}"), "yesterday".to_owned()).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["field"], "as_of", "{}", bad.body);
    let bad = query("audit-log".to_owned(), at.clone()).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["field"], "stream_id", "{}", bad.body);
    let missing = query(format!("trip-{}", uuid::Uuid::new_v4()), at.clone()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let refused = app
        .get(
            &format!("/v1/audit/streams/trip-{trip_id}/state?as_of={at}"),
            Some(&token),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The CLI folds the same.
    let (ok, stdout, stderr) =
        velka_audit(&app, &["state", &format!("trip-{trip_id}"), "--as-of", &at]).await;
    assert!(ok, "{stderr}");
    let cli: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(cli, then.body);

    // The read models as of T: the trip is still driving there, ended in the live ones.
    let live_status = eventually(std::time::Duration::from_secs(10), || async {
        let status = sqlx_scalar(
            &app,
            &format!(
                "SELECT count(*) FROM trips_view WHERE trip_id = '{trip_id}' AND status = 'ended'"
            ),
        )
        .await?;
        Ok((status == 1).then_some(status))
    })
    .await
    .unwrap();
    assert_eq!(live_status, 1);
    let (ok, stdout, stderr) = velka_audit(
        &app,
        &["rebuild-as-of", "--at", &at, "--schema", "asof_test"],
    )
    .await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("result: audit=rebuild-as-of schema=asof_test events="),
        "{stdout}"
    );
    assert!(stdout.contains("asof_test.trips_view: 1 rows"), "{stdout}");
    let driving_then = sqlx_scalar(
        &app,
        &format!(
            "SELECT count(*) FROM asof_test.trips_view WHERE trip_id = '{trip_id}' AND status = 'driving' AND ended_at IS NULL"
        ),
    )
    .await
    .unwrap();
    assert_eq!(driving_then, 1, "the trip is active in the as-of schema");
    let accounts_then = sqlx_scalar(&app, "SELECT count(*) FROM asof_test.accounts_view")
        .await
        .unwrap();
    assert_eq!(accounts_then, 0, "nothing was charged by T");
    // The live read models are untouched.
    eventually(std::time::Duration::from_secs(10), || async {
        let live = sqlx_scalar(&app, "SELECT count(*) FROM public.accounts_view").await?;
        Ok((live == 1).then_some(()))
    })
    .await
    .unwrap();

    // Every as-of question is on the record: the API's successful ones and the CLI's.
    let recorded = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE stream_id = 'audit-log'
           AND event_type = 'AuditStateQueried' AND actor = 'auditor:eve'",
    )
    .await
    .unwrap();
    assert_eq!(recorded, 4, "three over the API, one from the CLI");
    let rebuilt = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'AuditReadModelsRebuiltAsOf'
           AND data->>'schema' = 'asof_test'",
    )
    .await
    .unwrap();
    assert_eq!(rebuilt, 1);
}
