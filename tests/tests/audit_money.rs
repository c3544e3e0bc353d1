//! `velka audit money` and `GET /v1/audit/money` against a real server paying through the
//! gateway simulator: real trips, a capture from the hold and a separate charge, a refund to the
//! card — and no difference; then a read model row edited in SQL and a capture made at the
//! gateway behind Velka's back, each found and named with its account; every run recorded.

#![allow(clippy::unwrap_used)]

use anyhow::{Context, bail};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{App, eventually, sqlx_scalar, velka_binary};

const CENTRE: (f64, f64) = (55.7648, 37.6056);

/// Runs `velka audit money ARGS` on the app's database: (exit success, stdout, stderr).
async fn audit_money(app: &App, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(velka_binary().unwrap())
        .args(["audit", "money", "--by", "eve"])
        .args(args)
        .env("DATABASE_URL", app.db.url())
        .env_remove("VELKA_GATEWAY_URL")
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

fn last_line(stdout: &str) -> &str {
    stdout.lines().last().unwrap_or_default()
}

/// Waits until the payment saga has nothing to send, no overdue timer, its checkpoint at the
/// head three polls in a row, and every account row has caught up with its stream.
async fn settled(app: &App) -> anyhow::Result<()> {
    let support = app.token(Role::Support, "agent-1");
    let quiet = std::sync::atomic::AtomicU32::new(0);
    let quiet = &quiet;
    eventually(Duration::from_secs(30), || {
        let support = support.clone();
        async move {
            use std::sync::atomic::Ordering;
            let sagas = app.get("/v1/admin/sagas", Some(&support)).await?;
            let head = sqlx_scalar(app, "SELECT coalesce(max(position), 0) FROM events").await?;
            let lagging = sqlx_scalar(
                app,
                "SELECT count(*) FROM (SELECT stream_id, max(stream_version) AS v FROM events
                   WHERE category = 'account' GROUP BY stream_id) e
                 LEFT JOIN accounts_view a ON a.account_id = 'customer:' || substr(e.stream_id, 9)
                 WHERE a.stream_version IS DISTINCT FROM e.v",
            )
            .await?;
            let saga = sagas
                .body
                .as_array()
                .and_then(|all| all.iter().find(|s| s["saga"] == "payments"))
                .cloned()
                .unwrap_or(Value::Null);
            let idle = saga["commands_pending"] == 0
                && saga["checkpoint_position"].as_i64() == Some(head)
                && saga["overdue_timers"] == 0
                && lagging == 0;
            let in_a_row = if idle {
                quiet.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                quiet.store(0, Ordering::SeqCst);
                0
            };
            Ok((in_a_row >= 3).then_some(()))
        }
    })
    .await
    .context("the payment saga did not settle")
}

/// Customer `n` drives car `n` for `minutes` and ends the trip; returns the customer id.
async fn trip(app: &App, n: u32, minutes: i64) -> anyhow::Result<String> {
    let customer_id = app.verified_customer(n).await?;
    let vehicle_id = app.car(n, CENTRE).await?;
    let token = app.token(Role::Customer, &customer_id);
    let started = app
        .post(
            "/v1/trips",
            Some(&token),
            &json!({ "vehicle_id": vehicle_id }),
        )
        .await?;
    if started.status != StatusCode::CREATED {
        bail!("start answered {}: {}", started.status, started.body);
    }
    app.advance_clock(minutes * 60).await?;
    let locked = app.telemetry(&vehicle_id, CENTRE, 12_003.0, true).await?;
    if locked.status != StatusCode::OK {
        bail!("telemetry answered {}: {}", locked.status, locked.body);
    }
    let ended = app
        .post(
            &format!("/v1/trips/{}/end", started.str("trip_id")),
            Some(&token),
            &json!({}),
        )
        .await?;
    if ended.status != StatusCode::OK {
        bail!("end answered {}: {}", ended.status, ended.body);
    }
    Ok(customer_id)
}

#[tokio::test]
async fn money_reconciles_and_a_tampered_row_and_a_foreign_capture_are_named() -> anyhow::Result<()>
{
    let gateway = fixtures::gateway::start(
        "127.0.0.1:0".parse()?,
        fixtures::gateway::GatewayConfig::default(),
    )
    .await?;
    let url = gateway.url();
    let app = App::spawn_with(&[
        ("VELKA_GATEWAY_URL", &url),
        ("VELKA_GATEWAY_TIMEOUT_MS", "300"),
        ("VELKA_TRIP_HOLD_KOPECKS", "5000"),
        ("VELKA_SAGA_RETRY_MS", "50"),
    ])
    .await?;
    let support = app.token(Role::Support, "agent-1");

    // A long trip (captured from the hold, the rest charged) and a short one.
    let first = trip(&app, 1, 12).await?;
    let second = trip(&app, 2, 3).await?;
    settled(&app).await?;
    // Support refunds part of the first trip: it goes back to the card.
    let account = app
        .get(&format!("/v1/accounts/{first}"), Some(&support))
        .await?;
    let charge = &account.body["charges"][0];
    assert!(
        charge["paid_kopecks"].as_i64() > Some(5000),
        "the hold did not cover the trip: {}",
        account.body
    );
    let refunded = app
        .post(
            &format!(
                "/v1/accounts/{first}/charges/{}/refunds",
                charge["charge_id"].as_str().unwrap()
            ),
            Some(&support),
            &json!({ "amount_kopecks": 1000, "reason": "Goodwill" }),
        )
        .await?;
    assert_eq!(refunded.status, StatusCode::CREATED, "{}", refunded.body);
    settled(&app).await?;
    let returned = gateway.ledger()["refunds"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(returned, 1, "the refund went back to the card");

    // Three witnesses that agree.
    let (ok, stdout, stderr) = audit_money(&app, &["--gateway-url", &url]).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(
        last_line(&stdout),
        "result: audit=money accounts=2 differences=0 waiting=0",
        "{stdout}\n{stderr}"
    );

    // (a) The read model says 100 kopecks less were paid, and 100 more are owed.
    let tampered = format!("customer:{first}");
    sqlx::query(
        "UPDATE accounts_view SET paid_kopecks = paid_kopecks - 100, open_kopecks = open_kopecks + 100
         WHERE account_id = $1",
    )
    .bind(&tampered)
    .execute(app.db.pool())
    .await?;
    let paid_events = sqlx_scalar(
        &app,
        &format!(
            "SELECT ((SELECT coalesce(sum((data->>'amount_kopecks')::bigint), 0) FROM events
                      WHERE stream_id = 'account-{first}' AND event_type = 'PaymentCaptured')
                  - (SELECT coalesce(sum((data->>'amount_kopecks')::bigint), 0) FROM events
                      WHERE stream_id = 'account-{first}' AND event_type = 'PaymentRefunded'))::bigint"
        ),
    )
    .await?;
    let (ok, stdout, stderr) = audit_money(&app, &["--gateway-url", &url]).await;
    assert!(!ok, "differences must fail the run: {stdout}");
    assert_eq!(
        last_line(&stdout),
        "result: audit=money accounts=2 differences=2 waiting=0",
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "difference: account {tampered} field paid_kopecks: events {paid_events}, read model {}, gateway -",
            paid_events - 100
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "difference: account {tampered} field open_kopecks:"
        )),
        "{stdout}"
    );
    // The figure is explained by the captures and the refund to the card, by position.
    let explaining = sqlx_scalar(
        &app,
        &format!(
            "SELECT count(*) FROM events WHERE stream_id = 'account-{first}'
               AND event_type IN ('PaymentCaptured', 'PaymentRefunded')"
        ),
    )
    .await?;
    let paid_block: Vec<&str> = stdout
        .split("difference: ")
        .find(|block| block.contains("field paid_kopecks:"))
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("  event position "))
        .collect();
    assert_eq!(paid_block.len() as i64, explaining, "{stdout}");
    assert!(explaining >= 3, "hold capture, rest and refund: {stdout}");
    sqlx::query(
        "UPDATE accounts_view SET paid_kopecks = paid_kopecks + 100, open_kopecks = open_kopecks - 100
         WHERE account_id = $1",
    )
    .bind(&tampered)
    .execute(app.db.pool())
    .await?;

    // (b) Someone captures at the gateway with a key Velka never used.
    let rogue = reqwest::Client::new()
        .post(format!("{url}/v1/payments"))
        .header("Idempotence-Key", "not-velka-1")
        .json(&json!({
            "amount_kopecks": 777,
            "customer_ref": second,
            "description": "not Velka",
            "capture": true,
        }))
        .send()
        .await?;
    assert!(rogue.status().is_success());
    let rogue_id = rogue.json::<Value>().await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, stdout, stderr) = audit_money(&app, &["--gateway-url", &url]).await;
    assert!(!ok, "{stdout}");
    assert_eq!(
        last_line(&stdout),
        "result: audit=money accounts=2 differences=1 waiting=0",
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "difference: account customer:{second} field paid_kopecks (gateway):"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "gateway payment {rogue_id} (succeeded, key not-velka-1): gateway 777, events 0"
        )),
        "{stdout}"
    );
    // Without the gateway, the events and the read model agree.
    let (ok, stdout, _) = audit_money(&app, &[]).await;
    assert!(ok, "{stdout}");
    assert_eq!(
        last_line(&stdout),
        "result: audit=money accounts=2 differences=0 waiting=0"
    );

    // The same over HTTP, for auditors only.
    let auditor = app.token(Role::Auditor, "eve");
    let answer = app.get("/v1/audit/money", Some(&auditor)).await?;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let differences = answer.body["differences"].as_array().cloned().unwrap();
    assert_eq!(differences.len(), 1, "{}", answer.body);
    assert_eq!(differences[0]["account"], format!("customer:{second}"));
    assert_eq!(
        differences[0]["gateway_payments"][0]["payment_id"],
        rogue_id
    );
    assert_eq!(answer.body["gateway_checked"], true);
    let customer = app.token(Role::Customer, &second);
    let refused = app.get("/v1/audit/money", Some(&customer)).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Every run is on the record: four from the CLI, one over HTTP.
    let recorded = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events
         WHERE stream_id = 'audit-log' AND event_type = 'AuditMoneyReconciled'",
    )
    .await?;
    assert_eq!(recorded, 5);
    let by_http = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'AuditMoneyReconciled'
           AND actor = 'auditor:eve' AND (data->>'differences')::int = 1",
    )
    .await?;
    assert_eq!(by_http, 2, "the CLI's and the API's run of (b)");
    Ok(())
}
