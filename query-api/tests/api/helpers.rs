//! `spawn_app()`: the query router on 127.0.0.1:0 over a fresh database, with the projectors
//! running, a manual clock and tokens for any role; and shortcuts to append a fleet's history.

use chrono::{DateTime, Duration, Utc};
use domain::geo::GeoPoint;
use domain::ids::{CustomerId, TripId, VehicleId};
use event_store::EventStore;
use event_store::clock::ManualClock;
use event_store::testing::TestDatabase;
use http_edge::{Problem, Role, TokenKeys};
use projectors::testing::*;
use projectors::{Projections, RunnerConfig, Shutdown};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// When every test's story begins; the manual clock starts here.
pub const T0: &str = "2026-11-25T10:00:00Z";
/// Odometer of every test car when it joins the fleet.
pub const ODOMETER_M: u64 = 10_000_000;

/// A running query API and what a test needs around it.
pub struct TestApp {
    pub address: String,
    pub store: EventStore,
    pub clock: Arc<ManualClock>,
    pub keys: TokenKeys,
    pub client: reqwest::Client,
    pub projections: Projections,
    /// Kept only to keep the test's database alive (it is dropped with the app).
    _db: TestDatabase,
    projectors_shutdown: Shutdown,
    server_shutdown: CancellationToken,
}

/// The GBFS feed's configuration for Moscow, with a test key.
pub fn gbfs_config() -> query_api::gbfs::GbfsConfig {
    let city = fixtures::moscow().unwrap();
    let terms = city.standard_terms().unwrap();
    query_api::gbfs::GbfsConfig {
        system_id: city.system_id,
        name: "Velka Москва".to_owned(),
        operator: "Velka".to_owned(),
        timezone: city.timezone,
        feed_contact_email: "gbfs@velka.dev".to_owned(),
        public_url: None,
        area: city.operating_area,
        tariff: terms.tariff,
        waiting: terms.waiting,
        vehicle_ids: query_api::gbfs::VehicleIdKey::new(b"test").unwrap(),
        published_at: at(T0),
    }
}

pub async fn spawn_app() -> TestApp {
    let db = TestDatabase::new().await;
    let store = db.store();
    let clock = Arc::new(ManualClock::starting_at(at(T0)));
    let keys = TokenKeys::from_secret(b"test");
    let projectors_shutdown = Shutdown::new();
    let projections = Projections::spawn(
        store.clone(),
        projectors::read_models(),
        RunnerConfig {
            idle_poll: std::time::Duration::from_millis(20),
            ..RunnerConfig::default()
        },
        &projectors_shutdown,
    );
    let (router, _document) = query_api::router(query_api::QueryContext {
        pool: db.pool().clone(),
        store: store.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        pricing: Arc::new(fixtures::moscow().unwrap().pricing.clone()),
        gbfs: Arc::new(gbfs_config()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server_shutdown = CancellationToken::new();
    let stop = server_shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    TestApp {
        address,
        store,
        clock,
        keys,
        client: reqwest::Client::new(),
        projections,
        _db: db,
        projectors_shutdown,
        server_shutdown,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server_shutdown.cancel();
        self.projectors_shutdown.trigger();
    }
}

impl TestApp {
    /// A bearer token for `subject` in `role`, valid for an hour of real time.
    pub fn token(&self, role: Role, subject: &str) -> String {
        self.keys
            .issue(role, subject, Duration::hours(1), Utc::now())
            .unwrap()
    }

    /// A token of the customer `customer`.
    pub fn customer_token(&self, customer: CustomerId) -> String {
        self.token(Role::Customer, &customer.to_string())
    }

    /// GET `path` with `token` as bearer, if any.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// GET `path` expecting 200, as JSON.
    pub async fn get_ok(&self, path: &str, token: &str) -> serde_json::Value {
        let response = self.get(path, Some(token)).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// GET `path` expecting a problem with `status`.
    pub async fn get_problem(&self, path: &str, token: Option<&str>, status: u16) -> Problem {
        let response = self.get(path, token).await;
        assert_eq!(response.status(), status, "GET {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "GET {path}"
        );
        let problem: Problem = response.json().await.unwrap();
        assert_eq!(problem.status, status);
        problem
    }

    /// Waits, with a deadline, until the read models hold everything appended so far.
    pub async fn caught_up(&self) {
        self.projections
            .wait_caught_up(&self.store, std::time::Duration::from_secs(20))
            .await
            .unwrap();
    }

    /// A car joining the fleet at `position` at T0.
    pub async fn add_car(&self, number: u32, position: GeoPoint) -> VehicleId {
        let car = VehicleId(Uuid::now_v7());
        let t = at(T0);
        Append::at(t)
            .events(
                &car.stream_id(),
                &[vehicle_added(car, number, position, ODOMETER_M, t)],
            )
            .commit(&self.store)
            .await;
        car
    }

    /// `customer` starting a trip in `car`, standing at `position`, at `started_at`.
    pub async fn start_trip(
        &self,
        customer: CustomerId,
        car: VehicleId,
        position: GeoPoint,
        started_at: DateTime<Utc>,
    ) -> TripId {
        let trip = TripId(Uuid::now_v7());
        Append::at(started_at)
            .events(
                &trip.stream_id(),
                &[trip_started(
                    trip, customer, car, position, ODOMETER_M, started_at,
                )],
            )
            .events(
                &car.stream_id(),
                &[vehicle_rented(car, trip, customer, started_at)],
            )
            .commit(&self.store)
            .await;
        trip
    }

    /// The trip parking at `parked_at`.
    pub async fn park(&self, trip: TripId, parked_at: DateTime<Utc>) {
        Append::at(parked_at)
            .events(&trip.stream_id(), &[trip_parked(trip, parked_at)])
            .commit(&self.store)
            .await;
    }

    /// The trip ending as `end` says, and the car returned.
    pub async fn end_trip(
        &self,
        trip: TripId,
        customer: CustomerId,
        car: VehicleId,
        end: TripEnd,
    ) -> domain::trip::PriceBreakdown {
        let ended = trip_ended(trip, customer, car, end);
        let domain::trip::TripEvent::TripEnded { price, .. } = &ended else {
            unreachable!("trip_ended builds TripEnded")
        };
        let price = price.clone();
        Append::at(end.ended_at)
            .events(&trip.stream_id(), &[ended])
            .events(
                &car.stream_id(),
                &[vehicle_returned(car, trip, end.ended_at)],
            )
            .commit(&self.store)
            .await;
        price
    }
}

/// A new customer id.
pub fn customer() -> CustomerId {
    CustomerId(Uuid::now_v7())
}
