//! Auditors, end to end: the history API (filters, keyset pages, chain hashes, bad filters, who
//! may ask, every query recorded), `velka audit verify` before and after an event is edited in
//! SQL, `velka audit export` line for line, and the chain head on NATS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tests::{App, eventually, sqlx_scalar, velka_binary};

/// Waits until the sealer has covered every event in the log.
async fn all_sealed(app: &App) {
    eventually(Duration::from_secs(20), || async {
        let events = sqlx_scalar(app, "SELECT count(*) FROM events").await?;
        let sealed = sqlx_scalar(app, "SELECT count(*) FROM event_chain").await?;
        Ok((events == sealed).then_some(()))
    })
    .await
    .unwrap();
}

/// Runs `velka audit ARGS` on the app's database: (exit success, stdout, stderr).
async fn velka_audit(app: &App, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(velka_binary().unwrap())
        .arg("audit")
        .args(args)
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

/// Every page of `query`, following `next`; the positions in order.
async fn all_pages(app: &App, token: &str, query: &str) -> (Vec<Value>, usize) {
    let mut events = Vec::new();
    let mut pages = 0;
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let page = app
            .get(&format!("/v1/audit/events?{query}{cursor}"), Some(token))
            .await
            .unwrap();
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        events.extend(page.body["events"].as_array().unwrap().iter().cloned());
        match page.body["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return (events, pages),
        }
    }
}

fn positions(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect()
}

async fn db_positions(app: &App, filter: &str) -> Vec<i64> {
    sqlx::query_scalar(&format!(
        "SELECT position FROM events WHERE {filter} ORDER BY transaction_id, position"
    ))
    .fetch_all(app.db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn auditors_filter_and_page_the_whole_log_and_every_query_is_recorded() {
    let app = App::spawn().await.unwrap();
    let first = app.verified_customer(1).await.unwrap();
    app.car(1, (55.75, 37.61)).await.unwrap();
    app.advance_clock(3600).await.unwrap();
    let second = app.verified_customer(2).await.unwrap();
    all_sealed(&app).await;
    let auditor = app.token(Role::Auditor, "eve");

    // Paged two at a time, a category is every one of its events once, in delivery order,
    // each with metadata and its chain hash.
    let (customers, pages) = all_pages(&app, &auditor, "category=customer&limit=2").await;
    assert_eq!(
        positions(&customers),
        db_positions(&app, "category = 'customer'").await
    );
    assert!(pages >= 2);
    for event in &customers {
        assert!(
            event["stream_id"]
                .as_str()
                .unwrap()
                .starts_with("customer-")
        );
        assert_eq!(event["hash"].as_str().unwrap().len(), 64, "{event}");
        assert!(event["seq"].as_i64().unwrap() >= 1);
        assert!(event["metadata"]["correlation_id"].is_string());
        assert!(event["data"].is_object());
    }

    // Each filter, alone and together.
    let (registered, _) = all_pages(&app, &auditor, "event_type=CustomerRegistered").await;
    assert_eq!(registered.len(), 2);
    let (by_support, _) = all_pages(&app, &auditor, "actor=support:agent-1").await;
    assert_eq!(
        positions(&by_support),
        db_positions(&app, "actor = 'support:agent-1'").await
    );
    assert!(!by_support.is_empty());
    let correlation = registered[1]["metadata"]["correlation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (correlated, _) = all_pages(&app, &auditor, &format!("correlation_id={correlation}")).await;
    assert_eq!(
        positions(&correlated),
        db_positions(&app, &format!("correlation_id = '{correlation}'")).await
    );
    // The second customer was registered an hour (of the manual clock) later.
    let second_at = registered[1]["recorded_at"].as_str().unwrap().to_owned();
    assert!(
        registered[1]["stream_id"]
            .as_str()
            .unwrap()
            .ends_with(&second)
    );
    assert!(
        registered[0]["stream_id"]
            .as_str()
            .unwrap()
            .ends_with(&first)
    );
    let since =
        chrono::DateTime::parse_from_rfc3339(&second_at).unwrap() - chrono::Duration::minutes(1);
    let (later, _) = all_pages(
        &app,
        &auditor,
        &format!(
            "category=customer&from={}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )
    .await;
    assert!(!later.is_empty());
    assert!(
        later
            .iter()
            .all(|e| e["stream_id"].as_str().unwrap().ends_with(&second)),
        "{later:?}"
    );
    let (earlier, _) = all_pages(
        &app,
        &auditor,
        &format!(
            "category=customer&event_type=CustomerRegistered&to={}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )
    .await;
    assert_eq!(positions(&earlier), positions(&registered[..1]));

    // Support may read too; customers may not. Bad filters are named.
    let support = app.token(Role::Support, "agent-1");
    assert_eq!(
        app.get("/v1/audit/events?limit=1", Some(&support))
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    let customer = app.token(Role::Customer, &first);
    assert_eq!(
        app.get("/v1/audit/events", Some(&customer))
            .await
            .unwrap()
            .status,
        StatusCode::FORBIDDEN
    );
    let queries_before_bad = sqlx_scalar(
        &app,
        "SELECT count(*) FROM events WHERE stream_id = 'audit-log'",
    )
    .await
    .unwrap();
    for (query, field) in [
        ("correlation_id=nope", "correlation_id"),
        ("from=yesterday", "from"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("category=Trip", "category"),
        ("after=12", "after"),
        ("categroy=trip", "categroy"),
        ("actor=", "actor"),
        ("event_type=A&event_type=B", "event_type"),
    ] {
        let answer = app
            .get(&format!("/v1/audit/events?{query}"), Some(&auditor))
            .await
            .unwrap();
        assert!(
            answer.status.is_client_error(),
            "{query}: {}",
            answer.status
        );
        assert_eq!(answer.content_type(), "application/problem+json", "{query}");
        assert_eq!(answer.str("field"), field, "{query}: {}", answer.body);
    }

    // Every answered query is an AuditQueryPerformed event by its caller; refused ones are not.
    let recorded: Vec<(String, Value)> = sqlx::query_as(
        "SELECT actor, data FROM events
         WHERE stream_id = 'audit-log' AND event_type = 'AuditQueryPerformed'
         ORDER BY position",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(recorded.len() as i64, queries_before_bad);
    assert!(
        recorded
            .iter()
            .filter(|(actor, _)| actor == "auditor:eve")
            .any(
                |(_, data)| data["filters"]["event_type"] == "CustomerRegistered"
                    && data["by"] == "auditor:eve"
                    && data["returned"] == 2
            )
    );
    assert!(recorded.iter().any(|(actor, _)| actor == "support:agent-1"));
}

#[tokio::test]
async fn verify_names_the_edited_event_and_export_is_the_log_line_for_line() {
    let app = App::spawn_with(&[("VELKA_AUDIT_HEAD_EVERY", "3")])
        .await
        .unwrap();
    let nats = async_nats::connect(tests::nats_url()).await.unwrap();
    let mut heads = nats
        .subscribe(format!("{}.audit.chain-head", app.nats_prefix))
        .await
        .unwrap();
    app.verified_customer(1).await.unwrap();
    app.car(1, (55.75, 37.61)).await.unwrap();

    // The head reaches NATS, and the same statement is in the log.
    let message = tokio::time::timeout(Duration::from_secs(20), heads.next())
        .await
        .expect("a chain head on NATS")
        .unwrap();
    let published: Value = serde_json::from_slice(&message.payload).unwrap();
    all_sealed(&app).await;
    let in_log: Vec<Value> = sqlx::query_scalar(
        "SELECT data FROM events WHERE stream_id = 'audit-chain' ORDER BY stream_version",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert!(in_log.contains(&published), "{published} not in {in_log:?}");
    let head_hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM event_chain WHERE seq = $1")
        .bind(published["events"].as_i64().unwrap())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let head_hex: String = head_hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(published["hash"], head_hex.as_str());

    // Intact, up to the last sealed event, held to the head seen on NATS.
    let (events, last): (i64, i64) = sqlx::query_as(
        "SELECT count(*), (SELECT position FROM event_chain ORDER BY seq DESC LIMIT 1)
         FROM event_chain",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let held = format!("{}:{}", published["events"], head_hex);
    let (ok, stdout, stderr) = velka_audit(&app, &["verify", "--head", &held]).await;
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("intact up to position {last} ({events} events)")
    );
    assert!(stderr.contains("velka: verified"), "{stderr}");

    // The export: every event in delivery order with its hash, and the export is recorded.
    let file = std::env::temp_dir().join(format!("velka-export-{}.jsonl", uuid::Uuid::now_v7()));
    let (ok, stdout, stderr) = velka_audit(
        &app,
        &[
            "export",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
            "--output",
            file.to_str().unwrap(),
            "--by",
            "eve",
        ],
    )
    .await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("velka: exported"), "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let expected: Vec<ExportedRow> = sqlx::query_as(
        "SELECT e.position, e.event_id, e.actor, e.data, c.hash
         FROM events e LEFT JOIN event_chain c ON c.position = e.position
         WHERE e.stream_id <> 'audit-log'
         ORDER BY e.transaction_id, e.position",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    // The export's own record came after it; everything before is in the file.
    assert_eq!(lines.len(), expected.len());
    for (line, (position, event_id, actor, data, hash)) in lines.iter().zip(&expected) {
        assert_eq!(line["position"], *position);
        assert_eq!(line["event_id"], event_id.to_string());
        assert_eq!(line["metadata"]["actor"], actor.as_str());
        assert_eq!(line["data"], *data);
        let hash: String = hash
            .as_ref()
            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default();
        assert_eq!(line["hash"].as_str().unwrap_or_default(), hash);
    }
    let record: Value = sqlx::query_scalar(
        "SELECT data FROM events WHERE event_type = 'AuditExportPerformed' AND actor = 'auditor:eve'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(record["events"], lines.len());
    assert_eq!(record["by"], "auditor:eve");

    // One event's data edited in SQL: verify names exactly its position and fails.
    let target: i64 = sqlx::query_scalar("SELECT position FROM event_chain WHERE seq = 4")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE events SET data = data::jsonb || '{\"edited\": true}' WHERE position = $1")
        .bind(target)
        .execute(app.db.pool())
        .await
        .unwrap();
    let (ok, stdout, stderr) = velka_audit(&app, &["verify"]).await;
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!("mismatch at position {target} (chain entry 4)")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("does not match at position {target}")),
        "{stderr}"
    );
}

/// An event as the export must show it: position, id, actor, data and chain hash.
type ExportedRow = (i64, uuid::Uuid, String, Value, Option<Vec<u8>>);
