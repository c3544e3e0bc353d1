//! The reservation expiry worker's durability: a reservation made while no worker runs is found
//! and expired by a fresh worker once its deadline has passed — the deadline lives in the log
//! and its read model, not in any worker's memory — and a second fresh worker finds nothing left
//! to do.

#![allow(clippy::unwrap_used)]

use chrono::Duration;
use command_api::expiry::{ExpiryWorker, Pass};
use command_api::{CommandContext, Pricing};
use event_store::clock::ManualClock;
use event_store::testing::TestDatabase;
use http_edge::{Role, TokenKeys};
use serde_json::{Value, json};
use std::sync::Arc;

struct Server {
    base: String,
    keys: TokenKeys,
    http: reqwest::Client,
}

impl Server {
    async fn post(&self, path: &str, role: Option<(Role, &str)>, body: Value) -> Value {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some((role, subject)) = role {
            let token = self
                .keys
                .issue(role, subject, Duration::hours(1), chrono::Utc::now())
                .unwrap();
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_worker_expires_a_reservation_made_before_it_started() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let clock = Arc::new(ManualClock::starting_now());
    let city = fixtures::moscow().unwrap();
    let keys = TokenKeys::from_secret(b"expiry-test");
    let context = CommandContext {
        store: store.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        manual_clock: Some(clock.clone()),
        area: Arc::new(city.operating_area.clone()),
        tariff: Arc::new(city.standard_tariff().unwrap().clone()),
        penalty_tariff: Arc::new(fixtures::fees().unwrap().penalty_amounts_kopecks),
        kyc: Arc::new(fixtures::kyc().unwrap()),
        fleet: Arc::new(fixtures::fleet().unwrap()),
        pricing: Arc::new(Pricing {
            policy: city.pricing.clone(),
            standard: city.standard_terms().unwrap(),
        }),
        payments: None,
        fine_admin_fee_kopecks: fixtures::fees().unwrap().fine_admin_fee_kopecks,
        kyc_webhook_secret: Arc::from(&b"expiry-test-kyc"[..]),
    };
    let (router, _) = command_api::router(context.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let server = Server {
        base,
        keys,
        http: reqwest::Client::new(),
    };

    // A customer reserves a car; no worker is running.
    let customer = server
        .post(
            "/v1/customers",
            None,
            json!({"name": "Анна Иванова", "phone": "+79160000001", "email": "anna@example.ru",
                   "birth_date": "1992-03-14", "licence": {"number": "7700000001",
                   "issued_on": "2014-05-20", "expires_on": "2034-05-20"}}),
        )
        .await;
    let customer_id = customer["customer_id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/v1/customers/{customer_id}/verification"),
            Some((Role::Support, "agent")),
            json!({"decision": "approved"}),
        )
        .await;
    let car = server
        .post(
            "/v1/vehicles",
            Some((Role::Fleet, "fleet")),
            json!({"plate": "А001ВС77", "vin": "XW8ZZZ61Z00000001", "model": "Kia Rio",
                   "lat": 55.76, "lon": 37.62, "fuel_percent": 80, "odometer_km": 12000.0}),
        )
        .await;
    let vehicle_id = car["vehicle_id"].as_str().unwrap().to_owned();
    let reserved = server
        .post(
            "/v1/reservations",
            Some((Role::Customer, &customer_id)),
            json!({"vehicle_id": vehicle_id}),
        )
        .await;
    let reservation_id = reserved["reservation_id"].as_str().unwrap().to_owned();

    // The read models catch up (as they would after a restart: rebuilt from the log).
    let shutdown = projectors::Shutdown::new();
    let projections = projectors::start(store.clone(), shutdown.clone());
    let catch_up = || projections.wait_caught_up(&store, std::time::Duration::from_secs(10));
    catch_up().await.unwrap();

    // Not yet due: a fresh worker leaves it alone.
    let mut worker = ExpiryWorker::new(context.clone());
    assert_eq!(worker.pass().await.unwrap(), Pass::default());

    // Past the limit, another fresh worker expires it through the command pipeline.
    clock.advance(Duration::minutes(35));
    let mut fresh = ExpiryWorker::new(context.clone());
    assert_eq!(
        fresh.pass().await.unwrap(),
        Pass {
            expired: 1,
            refused: 0
        }
    );
    let events = store
        .read_stream(&format!("reservation-{reservation_id}"), 0)
        .await
        .unwrap();
    let expired = events.last().unwrap();
    assert_eq!(expired.event_type, "ReservationExpired");
    assert_eq!(expired.metadata.actor, "service:reservation-expiry");
    assert_eq!(expired.data["paid_minutes"], json!(20));
    assert_eq!(expired.data["paid_waiting_kopecks"], json!(20 * 300));
    let car_events = store
        .read_stream(&format!("vehicle-{vehicle_id}"), 0)
        .await
        .unwrap();
    assert_eq!(
        car_events.last().unwrap().event_type,
        "VehicleReservationReleased"
    );

    // Once the read model has seen the expiry, a third worker finds nothing; and expiring the
    // ended reservation again is refused and appends nothing.
    catch_up().await.unwrap();
    let count = store.count().await.unwrap();
    assert_eq!(
        ExpiryWorker::new(context.clone()).pass().await.unwrap(),
        Pass::default()
    );
    let again = command_api::expiry::expire_now(
        &context,
        domain::ids::ReservationId(reservation_id.parse().unwrap()),
    )
    .await;
    assert_eq!(again.status(), axum::http::StatusCode::CONFLICT);
    assert_eq!(store.count().await.unwrap(), count);

    shutdown.trigger();
    projections.stopped().await;
}
