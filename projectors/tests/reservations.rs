//! `reservations_view`, `demand_activity` and reserved cars in `vehicles_view`, built from real
//! domain events against a real PostgreSQL.

#![allow(clippy::unwrap_used)]

mod support;

use chrono::Duration;
use domain::ids::{CustomerId, QuoteId, ReservationId, VehicleId};
use domain::money::Kopecks;
use domain::pricing::{DemandObservation, PricingZone, RentalTerms, WaitingTariff};
use domain::quote::{QuoteDetails, QuoteEvent};
use domain::reservation::{ReservationDetails, ReservationEvent, waiting_charge};
use domain::vehicle::VehicleEvent;
use event_store::testing::TestDatabase;
use projectors::testing::*;
use projectors::{Projections, Shutdown};
use sqlx::Row;
use support::{DEADLINE, fast};
use uuid::Uuid;

fn terms() -> RentalTerms {
    RentalTerms {
        tariff: tariff(),
        waiting: WaitingTariff {
            free_minutes: 15,
            kopecks_per_minute: Kopecks(300),
            max_minutes: 35,
        },
    }
}

#[tokio::test]
async fn a_reservation_its_car_and_the_demand_it_adds_are_projected_until_it_expires() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let car = VehicleId(Uuid::now_v7());
    let ivan = CustomerId(Uuid::now_v7());
    let reservation_id = ReservationId(Uuid::now_v7());
    let quote_id = QuoteId(Uuid::now_v7());
    let made_at = at("2026-11-25T10:00:00Z");

    let t_added = at("2026-11-25T09:00:00Z");
    Append::at(t_added)
        .events(
            &car.stream_id(),
            &[vehicle_added(car, 1, RED_SQUARE, 10_000_000, t_added)],
        )
        .commit(&store)
        .await;
    let quote = QuoteEvent::QuoteIssued {
        details: QuoteDetails {
            quote_id,
            customer_id: ivan,
            vehicle_id: car,
            position: RED_SQUARE,
            zone: PricingZone {
                row: 2787,
                col: 1254,
            },
            observed: DemandObservation {
                free_cars: 1,
                recent_customers: 0,
                window_s: 900,
            },
            multiplier_permille: 1000,
            base: terms(),
            terms: terms(),
            expires_at: made_at + Duration::minutes(5),
        },
        issued_at: made_at - Duration::minutes(1),
    };
    Append::at(made_at - Duration::minutes(1))
        .events(&quote_id.stream_id(), &[quote])
        .commit(&store)
        .await;
    let details = ReservationDetails {
        reservation_id,
        customer_id: ivan,
        vehicle_id: car,
        position: RED_SQUARE,
        quote_id: Some(quote_id),
        terms: terms(),
        made_at,
        free_until: made_at + Duration::minutes(15),
        expires_at: made_at + Duration::minutes(35),
    };
    Append::at(made_at)
        .events(
            &reservation_id.stream_id(),
            &[ReservationEvent::ReservationMade {
                details: details.clone(),
            }],
        )
        .events(
            &car.stream_id(),
            &[VehicleEvent::VehicleReserved {
                vehicle_id: car,
                reservation_id,
                customer_id: ivan,
                reserved_at: made_at,
            }],
        )
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();

    let row = sqlx::query("SELECT * FROM reservations_view WHERE reservation_id = $1")
        .bind(reservation_id.0)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("status"), "active");
    assert_eq!(row.get::<Option<Uuid>, _>("quote_id"), Some(quote_id.0));
    assert_eq!(
        row.get::<chrono::DateTime<chrono::Utc>, _>("expires_at"),
        details.expires_at
    );
    assert_eq!(row.get::<Option<i64>, _>("paid_waiting_kopecks"), None);
    let vehicle = sqlx::query("SELECT * FROM vehicles_view WHERE vehicle_id = $1")
        .bind(car.0)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(vehicle.get::<String, _>("status"), "reserved");
    assert_eq!(
        vehicle.get::<Option<Uuid>, _>("current_reservation_id"),
        Some(reservation_id.0)
    );
    let demand: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT kind, customer_id FROM demand_activity ORDER BY occurred_at")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        demand,
        [
            ("quote".to_owned(), ivan.0),
            ("reservation".to_owned(), ivan.0)
        ]
    );

    let expired_at = made_at + Duration::minutes(36);
    let waiting = waiting_charge(&details, expired_at);
    Append::at(expired_at)
        .events(
            &reservation_id.stream_id(),
            &[ReservationEvent::ReservationExpired {
                reservation_id,
                customer_id: ivan,
                vehicle_id: car,
                expired_at,
                waiting,
            }],
        )
        .events(
            &car.stream_id(),
            &[VehicleEvent::VehicleReservationReleased {
                vehicle_id: car,
                reservation_id,
                released_at: expired_at,
            }],
        )
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    let row = sqlx::query("SELECT * FROM reservations_view WHERE reservation_id = $1")
        .bind(reservation_id.0)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("status"), "expired");
    assert_eq!(row.get::<Option<i64>, _>("paid_minutes"), Some(20));
    assert_eq!(
        row.get::<Option<i64>, _>("paid_waiting_kopecks"),
        Some(6_000)
    );
    let vehicle = sqlx::query("SELECT status, current_reservation_id FROM vehicles_view")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(vehicle.get::<String, _>("status"), "available");
    assert_eq!(
        vehicle.get::<Option<Uuid>, _>("current_reservation_id"),
        None
    );
    // How a reservation ends adds no demand.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM demand_activity")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 2);

    shutdown.trigger();
    running.stopped().await;
}
