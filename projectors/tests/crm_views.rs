//! The support and CRM read models against a real PostgreSQL: who had a car when
//! (`vehicle_possessions`, ranges that open at a trip's start and close at its end), plates
//! normalised for lookup, and `customers_view` following a customer's stream.

#![allow(clippy::unwrap_used)]

mod support;

use chrono::{DateTime, NaiveDate, Utc};
use domain::customer::{BlockReason, CustomerEvent, CustomerProfile};
use domain::ids::{CompanyId, CustomerId, TripId, VehicleId};
use domain::value::{Email, Licence, PersonName, Phone, Plate};
use event_store::EventStore;
use event_store::testing::TestDatabase;
use projectors::testing::*;
use projectors::{Projections, Shutdown};
use sqlx::{PgPool, Row};
use support::{DEADLINE, fast};
use uuid::Uuid;

const ODOMETER_M: u64 = 10_000_000;

/// Who had `car` at `t`, the way query-api asks: the trip and its customer.
async fn holder(pool: &PgPool, car: VehicleId, t: &str) -> Option<(Uuid, Uuid)> {
    let rows = sqlx::query(
        "SELECT trip_id, customer_id FROM vehicle_possessions
         WHERE vehicle_id = $1 AND during @> $2::timestamptz",
    )
    .bind(car.0)
    .bind(at(t))
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(rows.len() <= 1, "two holders of one car at {t}");
    rows.first()
        .map(|row| (row.get("trip_id"), row.get("customer_id")))
}

async fn during(pool: &PgPool, trip: TripId) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let row = sqlx::query(
        "SELECT lower(during) AS l, upper(during) AS u FROM vehicle_possessions WHERE trip_id = $1",
    )
    .bind(trip.0)
    .fetch_one(pool)
    .await
    .unwrap();
    (row.get("l"), row.get("u"))
}

async fn start(store: &EventStore, trip: TripId, who: CustomerId, car: VehicleId, t: &str) {
    let t = at(t);
    Append::at(t)
        .events(
            &trip.stream_id(),
            &[trip_started(trip, who, car, RED_SQUARE, ODOMETER_M, t)],
        )
        .events(&car.stream_id(), &[vehicle_rented(car, trip, who, t)])
        .commit(store)
        .await;
}

async fn end(store: &EventStore, trip: TripId, who: CustomerId, car: VehicleId, t: &str) {
    let t = at(t);
    let end = TripEnd {
        position: RED_SQUARE,
        start_odometer_m: ODOMETER_M,
        end_odometer_m: ODOMETER_M + 1_000,
        ended_at: t,
        driving_s: 600,
        parking_s: 0,
    };
    Append::at(t)
        .events(&trip.stream_id(), &[trip_ended(trip, who, car, end)])
        .events(&car.stream_id(), &[vehicle_returned(car, trip, t)])
        .commit(store)
        .await;
}

#[tokio::test]
async fn two_successive_trips_of_one_car_hold_it_in_two_ranges_that_never_overlap() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let car = VehicleId(Uuid::now_v7());
    let (ivan, olga) = (CustomerId(Uuid::now_v7()), CustomerId(Uuid::now_v7()));
    let (first, second) = (TripId(Uuid::now_v7()), TripId(Uuid::now_v7()));
    let added = at("2026-11-25T09:00:00Z");
    Append::at(added)
        .events(
            &car.stream_id(),
            &[vehicle_added(car, 7, RED_SQUARE, ODOMETER_M, added)],
        )
        .commit(&store)
        .await;

    // A running trip holds the car from its start, open-ended.
    start(&store, first, ivan, car, "2026-11-25T10:00:00Z").await;
    Append::at(at("2026-11-25T10:05:00Z"))
        .events(
            &first.stream_id(),
            &[trip_parked(first, at("2026-11-25T10:05:00Z"))],
        )
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_eq!(
        during(db.pool(), first).await,
        (Some(at("2026-11-25T10:00:00Z")), None)
    );
    assert_eq!(
        holder(db.pool(), car, "2026-11-25T23:59:00Z").await,
        Some((first.0, ivan.0))
    );
    assert_eq!(holder(db.pool(), car, "2026-11-25T09:59:59Z").await, None);

    // Ending it closes the range; the next trip opens its own.
    end(&store, first, ivan, car, "2026-11-25T10:20:00Z").await;
    start(&store, second, olga, car, "2026-11-25T11:00:00Z").await;
    end(&store, second, olga, car, "2026-11-25T11:30:00Z").await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_eq!(
        during(db.pool(), first).await,
        (
            Some(at("2026-11-25T10:00:00Z")),
            Some(at("2026-11-25T10:20:00Z"))
        )
    );
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vehicle_possessions a JOIN vehicle_possessions b
           ON a.vehicle_id = b.vehicle_id AND a.trip_id < b.trip_id AND a.during && b.during",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(overlapping, 0);

    let ivans = Some((first.0, ivan.0));
    let olgas = Some((second.0, olga.0));
    assert_eq!(holder(db.pool(), car, "2026-11-25T10:00:00Z").await, ivans);
    assert_eq!(holder(db.pool(), car, "2026-11-25T10:10:00Z").await, ivans);
    // The end instant is no longer the trip's: ranges are half-open.
    assert_eq!(holder(db.pool(), car, "2026-11-25T10:20:00Z").await, None);
    assert_eq!(holder(db.pool(), car, "2026-11-25T10:40:00Z").await, None);
    assert_eq!(holder(db.pool(), car, "2026-11-25T11:00:00Z").await, olgas);
    assert_eq!(holder(db.pool(), car, "2026-11-25T11:29:59Z").await, olgas);
    assert_eq!(holder(db.pool(), car, "2026-11-25T12:00:00Z").await, None);

    // The payer is known from the start: the customer, without a company.
    let payer: String =
        sqlx::query_scalar("SELECT payer_account_id FROM vehicle_possessions WHERE trip_id = $1")
            .bind(second.0)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(payer, format!("customer:{}", olga.0));

    // The plate is stored normalised: typed in Latin, it finds the car.
    let latin = Plate::parse("plate", "a007bc777").unwrap();
    let found: Uuid = sqlx::query_scalar("SELECT vehicle_id FROM vehicle_plates WHERE plate = $1")
        .bind(latin.as_str())
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(found, car.0);
    shutdown.trigger();
}

#[tokio::test]
async fn a_trip_ended_the_instant_it_started_holds_the_car_for_that_instant() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let car = VehicleId(Uuid::now_v7());
    let ivan = CustomerId(Uuid::now_v7());
    let trip = TripId(Uuid::now_v7());
    let added = at("2026-11-25T09:00:00Z");
    Append::at(added)
        .events(
            &car.stream_id(),
            &[vehicle_added(car, 8, RED_SQUARE, ODOMETER_M, added)],
        )
        .commit(&store)
        .await;
    start(&store, trip, ivan, car, "2026-11-25T10:00:00Z").await;
    end(&store, trip, ivan, car, "2026-11-25T10:00:00Z").await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    assert_eq!(
        holder(db.pool(), car, "2026-11-25T10:00:00Z").await,
        Some((trip.0, ivan.0))
    );
    assert_eq!(holder(db.pool(), car, "2026-11-25T10:00:01Z").await, None);
    shutdown.trigger();
}

#[tokio::test]
async fn the_holder_query_is_answered_by_the_gist_index() {
    let db = TestDatabase::new().await;
    let mut conn = db.pool().acquire().await.unwrap();
    // A tiny table is cheaper to scan; forbid that so the plan shows whether the index fits.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT trip_id FROM vehicle_possessions
         WHERE vehicle_id = $1 AND during @> $2::timestamptz",
    )
    .bind(Uuid::now_v7())
    .bind(at("2026-11-25T10:00:00Z"))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(
        plan.contains("vehicle_possessions_vehicle_during_idx"),
        "{plan}"
    );
}

fn profile(customer: CustomerId) -> CustomerProfile {
    CustomerProfile {
        customer_id: customer,
        name: PersonName::parse("name", "Анна Иванова").unwrap(),
        phone: Phone::parse("phone", "8 (916) 123-45-67").unwrap(),
        email: Email::parse("email", "Anna@Example.ru").unwrap(),
        birth_date: NaiveDate::from_ymd_opt(1992, 3, 14).unwrap(),
        licence: Licence::parse(
            "licence",
            "77 12 345678",
            NaiveDate::from_ymd_opt(2014, 5, 20).unwrap(),
            NaiveDate::from_ymd_opt(2034, 5, 20).unwrap(),
        )
        .unwrap(),
    }
}

#[tokio::test]
async fn customers_view_follows_verification_blocks_and_company() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let anna = CustomerId(Uuid::now_v7());
    let company = CompanyId(Uuid::now_v7());
    let t = at("2026-11-25T09:00:00Z");
    let events = [
        CustomerEvent::CustomerRegistered {
            profile: profile(anna),
            registered_at: t,
        },
        CustomerEvent::CustomerVerified {
            customer_id: anna,
            verified_at: at("2026-11-25T09:10:00Z"),
        },
        CustomerEvent::CustomerBlocked {
            customer_id: anna,
            reason: BlockReason::Fraud,
            note: "card".to_owned(),
            blocked_at: at("2026-11-25T09:20:00Z"),
        },
        CustomerEvent::CustomerBlocked {
            customer_id: anna,
            reason: BlockReason::Debt,
            note: "unpaid".to_owned(),
            blocked_at: at("2026-11-25T09:21:00Z"),
        },
        CustomerEvent::CustomerUnblocked {
            customer_id: anna,
            reason: BlockReason::Fraud,
            note: "cleared".to_owned(),
            unblocked_at: at("2026-11-25T09:30:00Z"),
        },
        CustomerEvent::CustomerJoinedCompany {
            customer_id: anna,
            company_id: company,
            joined_at: at("2026-11-25T09:40:00Z"),
        },
    ];
    Append::at(t)
        .events(&anna.stream_id(), &events)
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let row = sqlx::query("SELECT * FROM customers_view WHERE customer_id = $1")
        .bind(anna.0)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("phone"), "+79161234567");
    assert_eq!(row.get::<String, _>("email"), "anna@example.ru");
    assert_eq!(row.get::<String, _>("licence_number"), "7712345678");
    assert_eq!(row.get::<String, _>("verification"), "verified");
    assert_eq!(row.get::<Vec<String>, _>("blocks"), ["debt"]);
    assert_eq!(row.get::<Option<Uuid>, _>("company_id"), Some(company.0));
    assert_eq!(row.get::<DateTime<Utc>, _>("registered_at"), t);
    assert_eq!(
        row.get::<DateTime<Utc>, _>("updated_at"),
        at("2026-11-25T09:40:00Z")
    );
    assert_eq!(row.get::<i64, _>("stream_version"), 6);
    shutdown.trigger();
}
