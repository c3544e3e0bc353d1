//! A start retried at the very moment the sweeper lets its hold go: exactly one of them wins.
//! Either the trip's `PaymentHeld` is on the account and the hold stays held at the gateway, or
//! the hold is abandoned on the account, cancelled at the gateway, and the start is refused —
//! never a trip on a cancelled hold, never a hold nobody settles. Against a real PostgreSQL and
//! the gateway simulator over HTTP.

#![allow(clippy::unwrap_used)]

use chrono::Duration as TimeDelta;
use domain::Decider;
use domain::account::{Account, AccountEvent, AccountId, AccountState};
use domain::ids::{CustomerId, TripId};
use domain::money::Kopecks;
use event_store::clock::{Clock, ManualClock};
use event_store::testing::TestDatabase;
use event_store::{
    AppendError, AppendRequest, Claims, EventStore, ExpectedVersion, Metadata, NewEvent,
    StreamWrite,
};
use fixtures::gateway::GatewayConfig;
use payments::{GatewayClient, HoldRefused, HoldSweeper, Payments, PaymentsConfig};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

async fn account(store: &EventStore, customer: CustomerId) -> (AccountState, u64) {
    let events = store
        .read_stream(&AccountId::Customer(customer).stream_id(), 0)
        .await
        .unwrap();
    let mut state = AccountState::default();
    let mut version = 0;
    for event in &events {
        let decoded: AccountEvent =
            domain::decider::decode_ref(&event.event_type, event.schema_version, &event.data)
                .unwrap();
        state = Account::evolve(state, &decoded);
        version = event.stream_version;
    }
    (state, version)
}

/// What the trip-start route does with its hold: take it on the account as read, append at
/// that version, and decide again on a conflict.
async fn start(
    store: &EventStore,
    payments: &Payments,
    customer: CustomerId,
    clock: &dyn Clock,
) -> Result<(), HoldRefused> {
    let hold = payments.start_hold(
        customer,
        TripId(Uuid::now_v7()),
        &format!("customer:{customer}"),
        Some("k"),
    );
    for _ in 0..20 {
        let (state, version) = account(store, customer).await;
        let events = hold.take(&state, clock.now()).await?;
        let request = AppendRequest {
            writes: vec![StreamWrite {
                stream_id: AccountId::Customer(customer).stream_id(),
                expected: ExpectedVersion::after(version),
                events: events
                    .iter()
                    .map(|event| {
                        let encoded = domain::decider::encode(event).unwrap();
                        NewEvent {
                            event_id: Uuid::now_v7(),
                            event_type: encoded.event_type,
                            schema_version: encoded.schema_version,
                            data: encoded.data,
                            occurred_at: clock.now(),
                        }
                    })
                    .collect(),
            }],
            metadata: Metadata {
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "customer:test".into(),
                command_id: None,
            },
            recorded_at: clock.now(),
            claims: Claims::default(),
            result: None,
        };
        match store.append(&request).await {
            Ok(_) => {
                hold.settle(true).await;
                return Ok(());
            }
            Err(AppendError::WrongExpectedVersion { .. }) => continue,
            Err(other) => panic!("append failed: {other}"),
        }
    }
    panic!("the start never got through")
}

#[tokio::test]
async fn a_retried_start_and_the_release_of_its_hold_never_both_win() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let gateway =
        fixtures::gateway::start("127.0.0.1:0".parse().unwrap(), GatewayConfig::default())
            .await
            .unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let payments = Payments::new(
        GatewayClient::new(&gateway.url(), Duration::from_secs(5)).unwrap(),
        store.clone(),
        clock.clone(),
        PaymentsConfig {
            hold_kopecks: Kopecks(5_000),
            // Due at once: every noted hold is fair game for the sweeper.
            grace: TimeDelta::zero(),
        },
    );
    let sweeper = HoldSweeper::new(payments.clone());
    let (mut taken, mut released) = (0, 0);
    for _ in 0..40 {
        let customer = CustomerId(Uuid::now_v7());
        // The first try: the hold is noted and made, the trip is never appended.
        let first = payments.start_hold(
            customer,
            TripId(Uuid::now_v7()),
            &format!("customer:{customer}"),
            Some("k"),
        );
        let (state, _) = account(&store, customer).await;
        first.take(&state, clock.now()).await.unwrap();
        // The retry and the sweeper at once.
        let (started, swept) = tokio::join!(
            start(&store, &payments, customer, clock.as_ref()),
            sweeper.pass()
        );
        swept.unwrap();
        // Whatever the sweeper did not finish (it found the intent taken or lost a race), a
        // second pass settles.
        sweeper.pass().await.unwrap();
        let (state, _) = account(&store, customer).await;
        let statuses: Vec<String> = gateway.ledger()["payments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["customer_ref"] == customer.to_string())
            .map(|p| p["status"].as_str().unwrap().to_owned())
            .collect();
        let trip_has_it = !state.holds.is_empty();
        let abandoned = !state.abandoned_holds.is_empty();
        match started {
            Ok(()) => {
                assert!(trip_has_it && !abandoned, "{state:?}");
                assert_eq!(statuses, ["waiting_for_capture"]);
                taken += 1;
            }
            Err(HoldRefused::Released) => {
                assert!(!trip_has_it && abandoned, "{state:?}");
                assert_eq!(statuses, ["canceled"]);
                released += 1;
            }
            Err(other) => panic!("the start failed otherwise: {other}"),
        }
    }
    // Both outcomes happen: the race is real.
    println!("{taken} taken by the retried start, {released} released by the sweeper");
    assert_eq!(taken + released, 40);
}
