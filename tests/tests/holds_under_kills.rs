//! An operator's bad day: app clients race customers for cars (start, then end), retrying an
//! unknown outcome (a connection error or a 503) with the same `Idempotency-Key` as the README
//! tells apps to — and sometimes giving up — through a gateway that fails now and then, while
//! the server is SIGKILLed and restarted three times. Afterwards, once the grace period has
//! passed on the manual clock: no hold is left, every hold let go was one Velka had noted, no
//! car or customer was ever in two trips at once, and `velka audit money --gateway-url` reports
//! no difference.

use anyhow::{Context, ensure};
use fixtures::gateway::GatewayConfig;
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tests::App;
use tokio::sync::RwLock;

const CENTRE: (f64, f64) = (55.7648, 37.6056);
const CUSTOMERS: u32 = 12;
const CARS: u32 = 6;
const GRACE_S: i64 = 60;
const KILLS: usize = 3;

/// A splitmix64 step: reproducible choices per client.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One app client: a customer and what it has seen.
struct Client {
    http: reqwest::Client,
    base: Arc<RwLock<String>>,
    token: String,
    cars: Arc<Vec<String>>,
    telematics: String,
    rng: u64,
}

/// How a request ended, as the app sees it.
enum Outcome {
    Answered(StatusCode, Value),
    /// No answer: the connection failed (the server died) — the outcome is unknown.
    Unknown,
}

impl Client {
    async fn post(&self, path: &str, token: &str, key: Option<&str>, body: &Value) -> Outcome {
        let base = self.base.read().await.clone();
        let mut request = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.json().await.unwrap_or(Value::Null);
                Outcome::Answered(status, body)
            }
            Err(_) => Outcome::Unknown,
        }
    }

    /// Sends until an answer that is not "try again", up to `tries`, the same key every time.
    async fn retried(
        &self,
        path: &str,
        token: &str,
        key: &str,
        body: &Value,
        tries: usize,
    ) -> Option<(StatusCode, Value)> {
        for _ in 0..tries {
            match self.post(path, token, Some(key), body).await {
                Outcome::Answered(status, body) if status != StatusCode::SERVICE_UNAVAILABLE => {
                    return Some((status, body));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        None
    }

    /// Starts and ends trips until `stop`.
    async fn run(mut self, stop: Arc<AtomicBool>) -> usize {
        let mut trips = 0;
        while !stop.load(Ordering::SeqCst) {
            let car = self.cars[(next(&mut self.rng) % self.cars.len() as u64) as usize].clone();
            let key = uuid::Uuid::new_v4().to_string();
            // One client in five gives up after its first unknown outcome: its hold (if the
            // gateway made one) is left to the sweeper.
            let patient = !next(&mut self.rng).is_multiple_of(5);
            let tries = if patient { 40 } else { 1 };
            let started = self
                .retried(
                    "/v1/trips",
                    &self.token.clone(),
                    &key,
                    &json!({ "vehicle_id": car }),
                    tries,
                )
                .await;
            let Some((StatusCode::CREATED, body)) = started else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let trip_id = body["trip_id"].as_str().unwrap_or_default().to_owned();
            tokio::time::sleep(Duration::from_millis(20 + next(&mut self.rng) % 80)).await;
            let telematics = self.telematics.clone();
            let _ = self
                .retried(
                    &format!("/v1/vehicles/{car}/telemetry"),
                    &telematics,
                    &uuid::Uuid::new_v4().to_string(),
                    &json!({"lat": CENTRE.0, "lon": CENTRE.1, "fuel_percent": 70,
                            "odometer_km": 12_001.0, "doors_locked": true}),
                    40,
                )
                .await;
            let _ = self
                .retried(
                    &format!("/v1/trips/{trip_id}/end"),
                    &self.token.clone(),
                    &format!("end-{trip_id}"),
                    &json!({}),
                    40,
                )
                .await;
            trips += 1;
        }
        trips
    }
}

#[tokio::test]
async fn no_hold_outlives_its_trip_through_kills_and_retries() -> anyhow::Result<()> {
    let gateway =
        fixtures::gateway::start("127.0.0.1:0".parse()?, GatewayConfig::default()).await?;
    let url = gateway.url();
    let grace = GRACE_S.to_string();
    let mut app = App::spawn_with(&[
        ("VELKA_GATEWAY_URL", &url),
        ("VELKA_GATEWAY_TIMEOUT_MS", "300"),
        ("VELKA_TRIP_HOLD_KOPECKS", "5000"),
        ("VELKA_SAGA_RETRY_MS", "20"),
        ("VELKA_HOLD_GRACE_S", &grace),
        ("VELKA_HOLD_RECONCILE_MS", "200"),
    ])
    .await?;
    let mut customers = Vec::new();
    for n in 1..=CUSTOMERS {
        customers.push(app.verified_customer(n).await?);
    }
    let mut cars = Vec::new();
    for n in 1..=CARS {
        cars.push(app.car(n, CENTRE).await?);
    }
    let cars = Arc::new(cars);
    // A gateway that fails now and then: 5xx, and answers lost after the operation was applied.
    let faults = reqwest::Client::new()
        .post(format!("{url}/control/faults"))
        .json(&json!({ "error_5xx_rate": 0.05, "timeout_rate": 0.03, "seed": 5 }))
        .send()
        .await?;
    ensure!(faults.status().is_success());
    let base = Arc::new(RwLock::new(app.base.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let telematics = app.token(Role::Service, "telematics");
    let clients: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(n, customer_id)| {
            let client = Client {
                http: http.clone(),
                base: base.clone(),
                token: app.token(Role::Customer, customer_id),
                cars: cars.clone(),
                telematics: telematics.clone(),
                rng: 1_000 + n as u64,
            };
            tokio::spawn(client.run(stop.clone()))
        })
        .collect();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_secs(3)).await;
        // SIGKILL, mid-traffic; the clients retry against the new address.
        app.restart_keeping_clock().await?;
        *base.write().await = app.base.clone();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut trips = 0;
    for client in clients {
        trips += client.await?;
    }
    ensure!(trips > 20, "only {trips} trips ran");
    let no_faults = reqwest::Client::new()
        .post(format!("{url}/control/faults"))
        .json(&json!({}))
        .send()
        .await?;
    ensure!(no_faults.status().is_success());

    // Trips whose end the app never saw answered (it gave up): ended now.
    let running: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.stream_id, s.data::jsonb->>'customer_id', s.data::jsonb->>'vehicle_id'
         FROM events s WHERE s.event_type = 'TripStarted' AND NOT EXISTS
             (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id AND e.event_type = 'TripEnded')",
    )
    .fetch_all(app.db.pool())
    .await?;
    for (stream_id, customer_id, vehicle_id) in &running {
        let trip_id = stream_id.trim_start_matches("trip-");
        let token = app.token(Role::Customer, customer_id);
        let locked = app.telemetry(vehicle_id, CENTRE, 12_002.0, true).await?;
        ensure!(locked.status == StatusCode::OK, "{}", locked.body);
        let ended = app
            .post(
                &format!("/v1/trips/{trip_id}/end"),
                Some(&token),
                &json!({}),
            )
            .await?;
        ensure!(ended.status == StatusCode::OK, "{}", ended.body);
    }

    // No car and no customer was ever in two trips at once (from the log).
    let trips_log: Vec<(String, String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT s.stream_id, s.data::jsonb->>'customer_id', s.data::jsonb->>'vehicle_id',
                s.position, (SELECT e.position FROM events e
                             WHERE e.stream_id = s.stream_id AND e.event_type = 'TripEnded')
         FROM events s WHERE s.event_type = 'TripStarted' ORDER BY s.position",
    )
    .fetch_all(app.db.pool())
    .await?;
    let mut by_car: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    let mut by_customer: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (_, customer, car, from, to) in &trips_log {
        let span = (*from, to.context("a trip was left running")?);
        by_car.entry(car).or_default().push(span);
        by_customer.entry(customer).or_default().push(span);
    }
    for spans in by_car.values().chain(by_customer.values()) {
        for pair in spans.windows(2) {
            ensure!(pair[0].1 < pair[1].0, "two trips overlap: {pair:?}");
        }
    }

    tests::money::nothing_left(&app, &gateway, GRACE_S, false)
        .await
        .with_context(|| format!("after {trips} trips and {KILLS} kills"))?;
    Ok(())
}
