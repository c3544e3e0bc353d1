//! The generated city and the traffic simulator against the real binary: `velka seed` loads cars
//! and verified customers through the command API (and a rerun changes nothing), and
//! `velka simulate` drives a few seconds of app traffic that the server answers without a 5xx,
//! on the server's clock or on a simulated one it moves, with card failures injected into the
//! payment gateway simulator at a set rate.

#![allow(clippy::unwrap_used)]

use event_store::testing::scalar;
use http_edge::Role;
use std::process::Output;
use std::time::Duration;
use tests::{App, SECRET, eventually, velka_binary};

/// Runs the velka binary as a client of `app` and returns its output; fails on a non-zero exit.
async fn client(app: &App, args: &[&str]) -> Output {
    let output = tokio::process::Command::new(velka_binary().unwrap())
        .args(args)
        .args(["--url", &app.base])
        .env("VELKA_JWT_SECRET", SECRET)
        .env("VELKA_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("velka finished within 60 s")
        .unwrap();
    assert!(
        output.status.success(),
        "velka {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn count(app: &App, sql: &str) -> i64 {
    scalar(app.db.pool(), sql).await.unwrap()
}

#[tokio::test]
async fn seed_loads_the_city_once_and_simulate_drives_it_without_server_errors() {
    let app = App::spawn().await.unwrap();
    let seed = ["seed", "--cars", "20", "--customers", "10", "--seed", "7"];
    let first = client(&app, &seed).await;
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("20 cars") && stdout.contains("10 verified customers"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("30/30"),
        "a progress line reaches the total (20 cars and 10 customers)"
    );

    // The read models count them: 20 cars, 10 customers with documents, all verified.
    eventually(Duration::from_secs(10), || async {
        let cars = count(&app, "SELECT count(*) FROM vehicles_view").await;
        let verified = count(
            &app,
            "SELECT count(*) FROM customers_view WHERE verification = 'verified'",
        )
        .await;
        Ok((cars == 20 && verified == 10).then_some(()))
    })
    .await
    .unwrap();
    let plates = count(
        &app,
        "SELECT count(*) FROM vehicles_view WHERE plate ~ '^[АВЕКМНОРСТУХ][0-9]{3}[АВЕКМНОРСТУХ]{2}[0-9]{2,3}$'",
    )
    .await;
    assert_eq!(plates, 20, "every plate is a Russian one");
    let documents = count(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'KycDocumentsSubmitted'",
    )
    .await;
    assert_eq!(documents, 10);

    // A rerun with the same seed answers from the idempotency keys and appends nothing.
    let events = count(&app, "SELECT count(*) FROM events").await;
    client(&app, &seed).await;
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, events);

    // Three seconds of traffic by five of those customers.
    let simulated = client(
        &app,
        &[
            "simulate",
            "--rate",
            "60",
            "--duration",
            "3s",
            "--users",
            "5",
            "--seed",
            "7",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&simulated.stdout);
    let result = stdout
        .lines()
        .rfind(|line| line.starts_with("result: bench=simulate"))
        .unwrap_or_else(|| panic!("no result line in:\n{stdout}"));
    let field = |name: &str| -> f64 {
        result
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {result}"))
    };
    assert_eq!(field("errors_5xx"), 0.0, "{stdout}");
    assert_eq!(field("transport_errors"), 0.0, "{stdout}");
    assert!(field("requests") >= 60.0, "{result}");
    assert!(field("p99_ms") > 0.0, "{result}");
    // The users drove: trips started, and the simulator ended every one it started.
    let trips = count(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'TripStarted'",
    )
    .await;
    assert!(trips > 0, "{stdout}");
    eventually(Duration::from_secs(10), || async {
        let running = count(
            &app,
            "SELECT count(*) FROM trips_view WHERE status <> 'ended'",
        )
        .await;
        let ended = count(&app, "SELECT count(*) FROM trips_view").await;
        Ok((running == 0 && ended == trips).then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn simulate_gateway_still_parses_and_simulate_refuses_a_bad_duration() {
    let binary = velka_binary().unwrap();
    let output = tokio::process::Command::new(&binary)
        .args(["simulate", "--rate", "5", "--duration", "soon"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--duration"), "{stderr}");
    let help = tokio::process::Command::new(&binary)
        .args(["simulate", "gateway", "--help"])
        .output()
        .await
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--webhook-url"));
}

/// The server's manual clock, read over the API.
async fn server_now(app: &App) -> chrono::DateTime<chrono::Utc> {
    let service = app.token(Role::Service, "city-test");
    let reading = app.get("/v1/admin/clock", Some(&service)).await.unwrap();
    assert_eq!(reading.status, 200, "{}", reading.body);
    reading.body["now"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn simulate_moves_a_simulated_clock_and_injects_card_failures_at_the_set_rate() {
    let gateway = fixtures::gateway::start(
        "127.0.0.1:0".parse().unwrap(),
        fixtures::gateway::GatewayConfig::default(),
    )
    .await
    .unwrap();
    let gateway_url = gateway.url();
    let app = App::spawn_with(&[("VELKA_GATEWAY_URL", &gateway_url)])
        .await
        .unwrap();
    client(
        &app,
        &["seed", "--cars", "10", "--customers", "5", "--seed", "3"],
    )
    .await;

    // Every card operation refused: no trip can start, and the report names the refusals.
    let before = server_now(&app).await;
    let simulated = client(
        &app,
        &[
            "simulate",
            "--rate",
            "60",
            "--duration",
            "3s",
            "--users",
            "5",
            "--seed",
            "3",
            "--clock",
            "simulated",
            "--speed",
            "120",
            "--gateway-url",
            &gateway_url,
            "--payment-failure-percent",
            "100",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&simulated.stdout);
    let started = count(
        &app,
        "SELECT count(*) FROM events WHERE event_type = 'TripStarted'",
    )
    .await;
    assert_eq!(started, 0, "no hold succeeds, so no trip starts:\n{stdout}");
    assert!(
        stdout.contains("payment-declined") || stdout.contains("payment-unavailable"),
        "the refused starts are counted by type:\n{stdout}"
    );
    let holds = gateway.ledger()["payments"].as_array().map_or(0, Vec::len);
    let keys = gateway.ledger()["keys"].as_array().map_or(0, Vec::len);
    assert!(
        holds + keys > 0,
        "the starts reached the gateway: {}",
        gateway.ledger()
    );

    // The simulated clock moved about 120 s per real second (at least two ticks of 3 s).
    let moved = (server_now(&app).await - before).num_seconds();
    assert!(moved >= 240, "the server's clock moved {moved} s");

    // The faults are cleared at the end: the next run's cards work again.
    let faults: serde_json::Value = reqwest::get(format!("{gateway_url}/control/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for rate in ["decline_rate", "error_5xx_rate", "timeout_rate"] {
        assert_eq!(
            faults[rate].as_f64().unwrap_or(0.0),
            0.0,
            "{rate} after the run: {faults}"
        );
    }
}

#[tokio::test]
async fn simulate_refuses_card_failures_without_a_gateway_to_inject_them_into() {
    let app = App::spawn().await.unwrap();
    let binary = velka_binary().unwrap();
    let output = tokio::process::Command::new(&binary)
        .args([
            "simulate",
            "--duration",
            "1s",
            "--payment-failure-percent",
            "5",
        ])
        .args(["--url", &app.base])
        .env("VELKA_JWT_SECRET", SECRET)
        .env_remove("VELKA_GATEWAY_URL")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--gateway-url"), "{stderr}");
}
