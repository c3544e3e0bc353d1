//! `trips_view` and `vehicles_view` built from real domain events of a whole trip, against a
//! real PostgreSQL; and the version guard that keeps a replay from moving a row backwards.

#![allow(clippy::unwrap_used)]

mod support;

use chrono::{DateTime, Utc};
use domain::ids::{CustomerId, TripId, VehicleId};
use event_store::testing::TestDatabase;
use projectors::testing::*;
use projectors::{
    ProjectionError, Projections, Projector, Shutdown, TripsProjector, VehiclesProjector,
};
use sqlx::{PgPool, Row};
use support::{DEADLINE, fast};
use uuid::Uuid;

struct Ids {
    car: VehicleId,
    trip: TripId,
    ivan: CustomerId,
}

fn ids() -> Ids {
    Ids {
        car: VehicleId(Uuid::now_v7()),
        trip: TripId(Uuid::now_v7()),
        ivan: CustomerId(Uuid::now_v7()),
    }
}

const ODOMETER_M: u64 = 10_000_000;

async fn trip_row(pool: &PgPool, trip: TripId) -> sqlx::postgres::PgRow {
    sqlx::query("SELECT * FROM trips_view WHERE trip_id = $1")
        .bind(trip.0)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn vehicle_row(pool: &PgPool, car: VehicleId) -> sqlx::postgres::PgRow {
    sqlx::query("SELECT * FROM vehicles_view WHERE vehicle_id = $1")
        .bind(car.0)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A whole row as JSON, to compare every column at once.
async fn row_json(pool: &PgPool, table: &str, key: &str, id: Uuid) -> serde_json::Value {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t) FROM {table} t WHERE {key} = $1"
    ))
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Appends a car joining the fleet, one reading, a trip that starts at 10:00, parks at 10:07 and
/// drives on at 10:12.
async fn start_park_and_resume(store: &event_store::EventStore, ids: &Ids) {
    let (car, trip, ivan) = (ids.car, ids.trip, ids.ivan);
    let car_stream = car.stream_id();
    let trip_stream = trip.stream_id();
    let t_added = at("2026-11-25T09:00:00Z");
    Append::at(t_added)
        .events(
            &car_stream,
            &[vehicle_added(car, 1, RED_SQUARE, ODOMETER_M, t_added)],
        )
        .commit(store)
        .await;
    let t_read = at("2026-11-25T09:30:00Z");
    Append::at(t_read)
        .events(
            &car_stream,
            &[telemetry_recorded(
                car,
                offset(RED_SQUARE, 40.0, 0.0),
                79,
                ODOMETER_M + 500,
                true,
                t_read,
            )],
        )
        .commit(store)
        .await;
    let t_start = at("2026-11-25T10:00:00Z");
    Append::at(t_start)
        .events(
            &trip_stream,
            &[trip_started(
                trip,
                ivan,
                car,
                offset(RED_SQUARE, 40.0, 0.0),
                ODOMETER_M + 500,
                t_start,
            )],
        )
        .events(&car_stream, &[vehicle_rented(car, trip, ivan, t_start)])
        .commit(store)
        .await;
    let t_park = at("2026-11-25T10:07:00Z");
    Append::at(t_park)
        .events(&trip_stream, &[trip_parked(trip, t_park)])
        .commit(store)
        .await;
    let t_resume = at("2026-11-25T10:12:00Z");
    Append::at(t_resume)
        .events(&trip_stream, &[trip_resumed(trip, t_resume)])
        .commit(store)
        .await;
}

/// Where the trip of [`start_park_and_resume`] ends, and its end: 10:17:30, 750 s driven
/// (7 min + 5.5 min), 300 s parked, 8.4 km.
fn the_end() -> TripEnd {
    TripEnd {
        position: offset(RED_SQUARE, 2_000.0, 1_500.0),
        start_odometer_m: ODOMETER_M + 500,
        end_odometer_m: ODOMETER_M + 8_900,
        ended_at: at("2026-11-25T10:17:30Z"),
        driving_s: 750,
        parking_s: 300,
    }
}

async fn end_and_return(store: &event_store::EventStore, ids: &Ids) -> domain::trip::TripEvent {
    let end = the_end();
    let ended = trip_ended(ids.trip, ids.ivan, ids.car, end);
    Append::at(end.ended_at)
        .events(
            &ids.car.stream_id(),
            &[
                telemetry_recorded(
                    ids.car,
                    end.position,
                    71,
                    end.end_odometer_m,
                    true,
                    end.ended_at,
                ),
                vehicle_returned(ids.car, ids.trip, end.ended_at),
            ],
        )
        .events(&ids.trip.stream_id(), std::slice::from_ref(&ended))
        .commit(store)
        .await;
    ended
}

#[tokio::test]
async fn a_whole_trip_is_projected_into_trips_view_and_vehicles_view() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let ids = ids();

    // During the trip.
    start_park_and_resume(&store, &ids).await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let trip = trip_row(db.pool(), ids.trip).await;
    assert_eq!(trip.get::<Uuid, _>("customer_id"), ids.ivan.0);
    assert_eq!(trip.get::<Uuid, _>("vehicle_id"), ids.car.0);
    assert_eq!(trip.get::<String, _>("status"), "driving");
    assert_eq!(
        trip.get::<DateTime<Utc>, _>("started_at"),
        at("2026-11-25T10:00:00Z")
    );
    assert_eq!(
        trip.get::<DateTime<Utc>, _>("phase_since"),
        at("2026-11-25T10:12:00Z")
    );
    assert_eq!(trip.get::<i64, _>("driving_s"), 420);
    assert_eq!(trip.get::<i64, _>("parking_s"), 300);
    assert_eq!(
        trip.get::<serde_json::Value, _>("tariff"),
        serde_json::to_value(tariff()).unwrap()
    );
    assert_eq!(trip.get::<i64, _>("start_odometer_m"), 10_000_500);
    assert_eq!(
        trip.get::<f64, _>("start_lat"),
        offset(RED_SQUARE, 40.0, 0.0).lat
    );
    assert_eq!(trip.get::<Option<serde_json::Value>, _>("price"), None);
    assert_eq!(trip.get::<Option<DateTime<Utc>>, _>("ended_at"), None);
    assert_eq!(trip.get::<i64, _>("stream_version"), 3);

    let car = vehicle_row(db.pool(), ids.car).await;
    assert_eq!(car.get::<String, _>("status"), "in_trip");
    assert_eq!(
        car.get::<Option<Uuid>, _>("current_trip_id"),
        Some(ids.trip.0)
    );
    assert_eq!(car.get::<String, _>("plate"), "А001ВС777");
    assert_eq!(car.get::<String, _>("model"), "Kia Rio");
    assert_eq!(car.get::<i16, _>("fuel_percent"), 79);
    assert_eq!(car.get::<i64, _>("odometer_m"), 10_000_500);
    assert_eq!(car.get::<i64, _>("stream_version"), 3);

    // After it.
    let ended = end_and_return(&store, &ids).await;
    let domain::trip::TripEvent::TripEnded { price, .. } = ended else {
        unreachable!()
    };
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let end = the_end();
    let trip = trip_row(db.pool(), ids.trip).await;
    assert_eq!(trip.get::<String, _>("status"), "ended");
    assert_eq!(
        trip.get::<Option<DateTime<Utc>>, _>("ended_at"),
        Some(end.ended_at)
    );
    assert_eq!(trip.get::<DateTime<Utc>, _>("phase_since"), end.ended_at);
    assert_eq!(trip.get::<i64, _>("driving_s"), 750);
    assert_eq!(trip.get::<i64, _>("parking_s"), 300);
    assert_eq!(
        trip.get::<Option<f64>, _>("end_lat"),
        Some(end.position.lat)
    );
    assert_eq!(
        trip.get::<Option<f64>, _>("end_lon"),
        Some(end.position.lon)
    );
    assert_eq!(
        trip.get::<Option<i64>, _>("end_odometer_m"),
        Some(10_008_900)
    );
    assert_eq!(
        trip.get::<Option<serde_json::Value>, _>("price"),
        Some(serde_json::to_value(&price).unwrap())
    );
    // 13 started minutes driving, 5 parked, 8.4 km within the 70 included.
    assert_eq!(price.total_kopecks.get(), 13 * 1_200 + 5 * 300);
    assert_eq!(
        trip.get::<Option<i64>, _>("total_kopecks"),
        Some(price.total_kopecks.get())
    );
    assert_eq!(trip.get::<DateTime<Utc>, _>("updated_at"), end.ended_at);
    assert_eq!(trip.get::<i64, _>("stream_version"), 4);

    let car = vehicle_row(db.pool(), ids.car).await;
    assert_eq!(car.get::<String, _>("status"), "available");
    assert_eq!(car.get::<Option<Uuid>, _>("current_trip_id"), None);
    assert_eq!(car.get::<f64, _>("lat"), end.position.lat);
    assert_eq!(car.get::<f64, _>("lon"), end.position.lon);
    assert_eq!(car.get::<i16, _>("fuel_percent"), 71);
    assert_eq!(car.get::<i64, _>("odometer_m"), 10_008_900);
    assert!(car.get::<bool, _>("doors_locked"));
    assert_eq!(car.get::<i64, _>("stream_version"), 5);

    let statuses = running.snapshots();
    assert_eq!(&*statuses[0].name, "trips_view");
    assert_eq!(statuses[0].events_applied, 4, "{statuses:?}");
    assert_eq!(statuses[1].events_applied, 5, "{statuses:?}");
    shutdown.trigger();
    running.stopped().await;
}

#[tokio::test]
async fn replaying_old_events_never_moves_a_row_backwards() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let ids = ids();
    start_park_and_resume(&store, &ids).await;
    end_and_return(&store, &ids).await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    shutdown.trigger();
    running.stopped().await;

    let trip_before = row_json(db.pool(), "trips_view", "trip_id", ids.trip.0).await;
    let car_before = row_json(db.pool(), "vehicles_view", "vehicle_id", ids.car.0).await;

    // Every event of both streams again, through the projectors directly, as a rebuild over
    // existing rows would.
    let mut conn = db.pool().acquire().await.unwrap();
    for event in store.read_stream(&ids.trip.stream_id(), 0).await.unwrap() {
        TripsProjector.apply(&mut conn, &[&event]).await.unwrap();
    }
    for event in store.read_stream(&ids.car.stream_id(), 0).await.unwrap() {
        VehiclesProjector.apply(&mut conn, &[&event]).await.unwrap();
    }
    assert_eq!(
        row_json(db.pool(), "trips_view", "trip_id", ids.trip.0).await,
        trip_before
    );
    assert_eq!(
        row_json(db.pool(), "vehicles_view", "vehicle_id", ids.car.0).await,
        car_before
    );
}

#[tokio::test]
async fn an_event_for_a_trip_the_view_never_saw_is_an_inconsistency_not_a_silent_skip() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let trip = TripId(Uuid::now_v7());
    let t = at("2026-11-25T10:07:00Z");
    Append::at(t)
        .events(&trip.stream_id(), &[trip_parked(trip, t)])
        .commit(&store)
        .await;
    let event = store
        .read_stream(&trip.stream_id(), 0)
        .await
        .unwrap()
        .remove(0);
    let mut conn = db.pool().acquire().await.unwrap();
    let error = TripsProjector
        .apply(&mut conn, &[&event])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ProjectionError::At { source, .. }
            if matches!(source.as_ref(), ProjectionError::Inconsistent(message) if message.contains("TripParked"))),
        "{error}"
    );
}

#[tokio::test]
async fn events_of_other_categories_are_skipped_without_decoding() {
    let db = TestDatabase::new().await;
    let store = db.store();
    // Not a domain event at all: decoding it would fail, so the runner must not try.
    // (`company` streams: no read model follows them.)
    support::append_raw(&store, "company-1", "SomethingElse").await;
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    for status in running.snapshots() {
        assert_eq!(status.events_applied, 0);
        assert_eq!(status.consecutive_failures, 0);
        assert!(status.last_error.is_none());
    }
    shutdown.trigger();
    running.stopped().await;
}
