//! The accounts and fines read models built from real domain events against a real PostgreSQL:
//! a charge, a refund and a waiver become rows whose sums add up; replaying an account's events
//! counts nothing twice; a fine becomes an open row.

#![allow(clippy::unwrap_used)]

mod support;

use domain::account::{AccountEvent, AccountId, ChargeId, ChargeReason, ChargeSource, RefundId};
use domain::fine::{FineDetails, FineEvent, ResolutionNumber};
use domain::ids::{CustomerId, FineId, PenaltyId};
use domain::money::Kopecks;
use domain::value::Plate;
use event_store::testing::TestDatabase;
use projectors::testing::*;
use projectors::{AccountsProjector, FinesProjector, Projections, Projector, Shutdown};
use sqlx::PgPool;
use support::{DEADLINE, fast};
use uuid::Uuid;

async fn row(pool: &PgPool, table: &str, key: &str, id: &str) -> serde_json::Value {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t) - 'updated_at' FROM {table} t WHERE {key}::text = $1"
    ))
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn charges_refunds_and_waivers_add_up_and_a_replay_counts_nothing_twice() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let ivan = CustomerId(Uuid::now_v7());
    let account = AccountId::Customer(ivan);
    let charge_id = ChargeId(Uuid::now_v7());
    let refund_id = RefundId(Uuid::now_v7());
    let t = at("2026-11-25T10:00:00Z");
    let events = [
        AccountEvent::ChargeAdded {
            account_id: account,
            charge_id,
            reason: ChargeReason::Penalty,
            source: ChargeSource::Penalty {
                penalty_id: PenaltyId(Uuid::now_v7()),
            },
            amount_kopecks: Kopecks(500_000),
            customer_id: ivan,
            added_at: t,
        },
        AccountEvent::ChargeRefunded {
            charge_id,
            refund_id,
            amount_kopecks: Kopecks(100_000),
            reason: "Smoke from the trip before".to_owned(),
            refunded_at: t,
        },
        AccountEvent::ChargeWaived {
            charge_id,
            amount_kopecks: Kopecks(400_000),
            reason: "Goodwill".to_owned(),
            waived_at: t,
        },
    ];
    for event in &events {
        Append::at(t)
            .events(&account.stream_id(), std::slice::from_ref(event))
            .commit(&store)
            .await;
    }
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    shutdown.trigger();
    running.stopped().await;

    let totals = row(
        db.pool(),
        "accounts_view",
        "account_id",
        &account.to_string(),
    )
    .await;
    assert_eq!(totals["charged_kopecks"], 500_000);
    assert_eq!(totals["refunded_kopecks"], 100_000);
    assert_eq!(totals["waived_kopecks"], 400_000);
    assert_eq!(totals["open_kopecks"], 0);
    assert_eq!(totals["stream_version"], 3);
    let charge = row(
        db.pool(),
        "account_charges_view",
        "charge_id",
        &charge_id.to_string(),
    )
    .await;
    assert_eq!(charge["refunded_kopecks"], 100_000);
    assert_eq!(charge["waived_kopecks"], 400_000);
    assert_eq!(charge["source_kind"], "penalty");
    let adjustments: i64 =
        sqlx::query_scalar("SELECT count(*) FROM account_adjustments_view WHERE charge_id = $1")
            .bind(charge_id.0)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(adjustments, 2);

    // Every event again, as a rebuild over existing rows would: nothing changes.
    let mut conn = db.pool().acquire().await.unwrap();
    for event in store.read_stream(&account.stream_id(), 0).await.unwrap() {
        AccountsProjector.apply(&mut conn, &[&event]).await.unwrap();
    }
    assert_eq!(
        row(
            db.pool(),
            "accounts_view",
            "account_id",
            &account.to_string()
        )
        .await,
        totals
    );
    assert_eq!(
        row(
            db.pool(),
            "account_charges_view",
            "charge_id",
            &charge_id.to_string()
        )
        .await,
        charge
    );
}

#[tokio::test]
async fn a_received_fine_is_an_open_row_and_a_replay_changes_nothing() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let shutdown = Shutdown::new();
    let running = Projections::spawn(store.clone(), projectors::read_models(), fast(), &shutdown);
    let fine_id = FineId(Uuid::now_v7());
    let t = at("2026-11-25T10:00:00Z");
    let received = FineEvent::FineReceived {
        fine_id,
        details: FineDetails {
            resolution_number: ResolutionNumber::parse("n", "18810177231125000017").unwrap(),
            plate: Plate::parse("plate", "А123ВС777").unwrap(),
            occurred_at: at("2026-11-20T21:15:00Z"),
            place: RED_SQUARE,
            amount_kopecks: Kopecks(50_000),
            issued_on: "2026-11-22".parse().unwrap(),
        },
        received_at: t,
    };
    Append::at(t)
        .events(&fine_id.stream_id(), &[received])
        .commit(&store)
        .await;
    running.wait_caught_up(&store, DEADLINE).await.unwrap();
    shutdown.trigger();
    running.stopped().await;
    let fine = row(db.pool(), "fines_view", "fine_id", &fine_id.to_string()).await;
    assert_eq!(fine["status"], "open");
    assert_eq!(fine["resolution_number"], "18810177231125000017");
    assert_eq!(fine["amount_kopecks"], 50_000);

    let mut conn = db.pool().acquire().await.unwrap();
    for event in store.read_stream(&fine_id.stream_id(), 0).await.unwrap() {
        FinesProjector.apply(&mut conn, &[&event]).await.unwrap();
    }
    assert_eq!(
        row(db.pool(), "fines_view", "fine_id", &fine_id.to_string()).await,
        fine
    );
}
