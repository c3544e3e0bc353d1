//! `rebuild_all`: several read models rebuilt from one read of the log give the same rows as the
//! live projection and as rebuilding each alone; every one of them is switched over (new tables,
//! checkpoint at the head, nothing left behind), and the live runners carry on in the new tables.
//! A rebuild also finishes while events keep being appended: its switch holds a transaction id,
//! which holds back every later append, and must not wait for them.

#![allow(clippy::unwrap_used)]

mod support;

use domain::ids::{CustomerId, TripId, VehicleId};
use event_store::EventStore;
use event_store::testing::TestDatabase;
use projectors::rebuild::{RebuildError, rebuild, rebuild_all};
use projectors::testing::*;
use projectors::{
    PossessionsProjector, Projections, Projector, Shutdown, TripsProjector, VehiclesProjector,
};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{DEADLINE, fast};
use uuid::Uuid;

/// The read models rebuilt together: three projectors over two categories, five tables.
fn chosen() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(TripsProjector),
        Arc::new(VehiclesProjector),
        Arc::new(PossessionsProjector),
    ]
}

/// Car `number` joins the fleet and makes a whole trip, in five appends.
async fn car_and_trip(store: &EventStore, number: u32) -> VehicleId {
    let (car, trip, who) = (
        VehicleId(Uuid::now_v7()),
        TripId(Uuid::now_v7()),
        CustomerId(Uuid::now_v7()),
    );
    let (car_stream, trip_stream) = (car.stream_id(), trip.stream_id());
    let odometer_m = 10_000_000 + u64::from(number) * 1_000;
    let here = offset(RED_SQUARE, f64::from(number) * 100.0, 0.0);
    let added = at("2026-11-25T09:00:00Z");
    Append::at(added)
        .events(
            &car_stream,
            &[vehicle_added(car, number, here, odometer_m, added)],
        )
        .commit(store)
        .await;
    let started = at("2026-11-25T10:00:00Z");
    Append::at(started)
        .events(
            &trip_stream,
            &[trip_started(trip, who, car, here, odometer_m, started)],
        )
        .events(&car_stream, &[vehicle_rented(car, trip, who, started)])
        .commit(store)
        .await;
    let parked = at("2026-11-25T10:07:00Z");
    Append::at(parked)
        .events(&trip_stream, &[trip_parked(trip, parked)])
        .commit(store)
        .await;
    let resumed = at("2026-11-25T10:12:00Z");
    Append::at(resumed)
        .events(&trip_stream, &[trip_resumed(trip, resumed)])
        .commit(store)
        .await;
    let end = TripEnd {
        position: offset(here, 2_000.0, 1_500.0),
        start_odometer_m: odometer_m,
        end_odometer_m: odometer_m + 8_400,
        ended_at: at("2026-11-25T10:17:30Z"),
        driving_s: 750,
        parking_s: 300,
    };
    Append::at(end.ended_at)
        .events(
            &car_stream,
            &[
                telemetry_recorded(
                    car,
                    end.position,
                    71,
                    end.end_odometer_m,
                    true,
                    end.ended_at,
                ),
                vehicle_returned(car, trip, end.ended_at),
            ],
        )
        .events(&trip_stream, &[trip_ended(trip, who, car, end)])
        .commit(store)
        .await;
    car
}

/// Every row of every table of `projectors`, as JSON text in a stable order.
async fn rows(pool: &PgPool, projectors: &[Arc<dyn Projector>]) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    for table in projectors.iter().flat_map(|p| p.tables()) {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t)::text FROM public.{table} t ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        all.push(((*table).to_owned(), rows));
    }
    all
}

/// The table's identity: a switched table is a new one.
async fn oids(pool: &PgPool, projectors: &[Arc<dyn Projector>]) -> Vec<i64> {
    let mut oids = Vec::new();
    for table in projectors.iter().flat_map(|p| p.tables()) {
        oids.push(
            sqlx::query_scalar(&format!("SELECT 'public.{table}'::regclass::oid::bigint"))
                .fetch_one(pool)
                .await
                .unwrap(),
        );
    }
    oids
}

/// Every index and constraint of the tables of `projectors`: name and definition.
async fn indexes(pool: &PgPool, projectors: &[Arc<dyn Projector>]) -> Vec<(String, String)> {
    let tables: Vec<String> = projectors
        .iter()
        .flat_map(|p| p.tables())
        .map(|t| (*t).to_owned())
        .collect();
    sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes
         WHERE schemaname = 'public' AND tablename = ANY ($1)
         UNION ALL
         SELECT conname::text, pg_get_constraintdef(c.oid) FROM pg_constraint c
         WHERE c.conrelid = ANY (SELECT ('public.' || t)::regclass FROM unnest($1::text[]) t)
         ORDER BY 1, 2",
    )
    .bind(&tables)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn leftover_schemas(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%' OR nspname LIKE 'retired\\_%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn rebuilding_several_read_models_at_once_equals_the_live_ones_and_each_alone() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    for number in 1..=5 {
        car_and_trip(&store, number).await;
    }
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let live = rows(db.pool(), &chosen()).await;
    assert!(live.iter().all(|(_, rows)| !rows.is_empty()), "{live:?}");
    let oids_before = oids(db.pool(), &chosen()).await;
    let indexes_before = indexes(db.pool(), &chosen()).await;
    assert!(
        indexes_before
            .iter()
            .any(|(_, def)| !def.contains("UNIQUE") && def.starts_with("CREATE INDEX")),
        "the chosen tables have no secondary index to rebuild: {indexes_before:?}"
    );
    let head = store.head().await.unwrap();

    // A small batch so the log takes several pages.
    let mut pages = 0;
    let reports = rebuild_all(&store, chosen(), 4, |_| pages += 1)
        .await
        .unwrap();
    assert!(pages > 1, "{pages} pages");
    let names: Vec<&str> = reports.iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        ["trips_view", "vehicles_view", "vehicle_possessions"]
    );
    for report in &reports {
        assert!(report.events_applied > 0, "{report:?}");
        assert_eq!(report.applied_in_switch, 0, "{report:?}");
        assert_eq!(report.position, head, "{report:?}");
        assert_eq!(
            projectors::checkpoint(db.pool(), report.name)
                .await
                .unwrap(),
            head,
            "{report:?}"
        );
    }
    // Trips see only the trip stream, cars only the car stream: four events each per car.
    assert_eq!(reports[0].events_applied, 5 * 4);
    assert_eq!(reports[1].events_applied, 5 * 4);

    // Every table was switched: new tables, the same rows, nothing left behind.
    let oids_after = oids(db.pool(), &chosen()).await;
    for (before, after) in oids_before.iter().zip(&oids_after) {
        assert_ne!(before, after);
    }
    assert_eq!(rows(db.pool(), &chosen()).await, live);
    assert_eq!(leftover_schemas(db.pool()).await, 0);
    // The same indexes and constraints, under the same names (the secondary ones built after
    // the load).
    assert_eq!(indexes(db.pool(), &chosen()).await, indexes_before);

    // Each alone gives the same rows again.
    for projector in chosen() {
        let report = rebuild(&store, projector, 3, |_| {}).await.unwrap();
        assert_eq!(report.position, head);
    }
    assert_eq!(rows(db.pool(), &chosen()).await, live);
    assert_eq!(leftover_schemas(db.pool()).await, 0);

    // The live runners carry on in the new tables.
    car_and_trip(&store, 6).await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let cars: i64 = sqlx::query_scalar("SELECT count(*) FROM vehicles_view")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let trips: i64 = sqlx::query_scalar("SELECT count(*) FROM trips_view")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!((cars, trips), (6, 6));
    shutdown.trigger();
    running.stopped().await;
}

#[tokio::test]
async fn a_read_model_named_twice_is_refused_before_anything_is_built() {
    let db = TestDatabase::new().await;
    let store = db.store();
    car_and_trip(&store, 1).await;
    let twice: Vec<Arc<dyn Projector>> = vec![Arc::new(TripsProjector), Arc::new(TripsProjector)];
    let error = rebuild_all(&store, twice, 100, |_| {}).await.unwrap_err();
    assert!(
        matches!(
            error,
            RebuildError::NotRebuildable {
                name: "trips_view",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(leftover_schemas(db.pool()).await, 0);
}

#[tokio::test]
async fn a_rebuild_finishes_while_events_keep_being_appended() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), chosen(), fast(), &shutdown);
    car_and_trip(&store, 1).await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();

    // Appends go on until the rebuild has finished (at most 900 cars, so plates stay unique).
    let stop = Arc::new(AtomicBool::new(false));
    let appender = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut cars = 1;
            while !stop.load(Ordering::Relaxed) && cars < 900 {
                cars += 1;
                car_and_trip(&store, cars).await;
            }
            cars
        }
    });
    let rebuilt = tokio::time::timeout(DEADLINE, rebuild_all(&store, chosen(), 4, |_| {})).await;
    stop.store(true, Ordering::Relaxed);
    let cars = appender.await.unwrap();
    let reports = rebuilt.expect("the rebuild finished").unwrap();
    assert_eq!(reports.len(), 3);

    // Whatever the switch left to the live runners, they applied to the new tables.
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let live = rows(db.pool(), &chosen()).await;
    let count = |table: &str| {
        live.iter()
            .find(|(name, _)| name == table)
            .map_or(0, |(_, rows)| rows.len())
    };
    assert_eq!(count("vehicles_view"), cars as usize);
    assert_eq!(count("trips_view"), cars as usize);
    // And equal what a rebuild now, with nothing appended, makes.
    rebuild_all(&store, chosen(), 50, |_| {}).await.unwrap();
    assert_eq!(rows(db.pool(), &chosen()).await, live);
    shutdown.trigger();
    running.stopped().await;
}

/// The cars' read model, failing on the event that adds car number `.0` (its plate).
#[derive(Debug)]
struct FailingOnCar(u32);

impl Projector for FailingOnCar {
    fn name(&self) -> &'static str {
        VehiclesProjector.name()
    }
    fn tables(&self) -> &'static [&'static str] {
        VehiclesProjector.tables()
    }
    fn categories(&self) -> &'static [&'static str] {
        VehiclesProjector.categories()
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::PgConnection,
        events: &'a [&'a event_store::RecordedEvent],
    ) -> futures::future::BoxFuture<'a, Result<(), projectors::ProjectionError>> {
        let bad = events
            .iter()
            .find(|e| e.data.to_string().contains(&format!("{:03}ВС777", self.0)));
        match bad {
            Some(event) => Box::pin(async move {
                Err(projectors::ProjectionError::Other("planted".to_owned()).at(event))
            }),
            None => VehiclesProjector.apply(conn, events),
        }
    }
}

#[tokio::test]
async fn a_projector_that_fails_stops_the_rebuild_and_switches_nothing() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), chosen(), fast(), &shutdown);
    for number in 1..=12 {
        car_and_trip(&store, number).await;
    }
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let live = rows(db.pool(), &chosen()).await;
    let oids_before = oids(db.pool(), &chosen()).await;

    let failing: Vec<Arc<dyn Projector>> =
        vec![Arc::new(TripsProjector), Arc::new(FailingOnCar(9))];
    let error = tokio::time::timeout(DEADLINE, rebuild_all(&store, failing, 3, |_| {}))
        .await
        .expect("the rebuild stopped")
        .unwrap_err();
    assert!(
        matches!(
            error,
            RebuildError::Apply {
                name: "vehicles_view",
                ..
            }
        ),
        "{error}"
    );
    // Nothing switched: the same tables, the same rows.
    assert_eq!(oids(db.pool(), &chosen()).await, oids_before);
    assert_eq!(rows(db.pool(), &chosen()).await, live);
    shutdown.trigger();
    running.stopped().await;
}
