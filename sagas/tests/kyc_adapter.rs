//! The KYC adapter against the provider simulator over real HTTP: `kyc.submit` reads the
//! documents from the customer's stream, starts one check per command id however often it is
//! sent, and sorts failures into transient (retry) and permanent (give up).

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use event_store::testing::TestDatabase;
use event_store::{AppendRequest, Claims, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use fixtures::kyc_provider::{KycBehaviour, KycProviderConfig, start};
use sagas::kyc::{KYC_SUBMIT, KycProviderClient, reference_of};
use sagas::{OutboxCommand, SinkError};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn a_submission_starts_one_check_per_command_and_failures_are_sorted() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let customer_id = Uuid::now_v7();
    let submission_id = Uuid::now_v7();
    store
        .append(&AppendRequest {
            writes: vec![StreamWrite {
                stream_id: format!("customer-{customer_id}"),
                expected: ExpectedVersion::NoStream,
                events: vec![NewEvent {
                    event_id: submission_id,
                    event_type: "KycDocumentsSubmitted".to_owned(),
                    schema_version: 1,
                    data: json!({
                        "customer_id": customer_id,
                        "passport": {"series": "4510", "number": "123456"},
                        "birth_date": "1990-05-17",
                        "submitted_at": Utc::now(),
                    }),
                    occurred_at: Utc::now(),
                }],
            }],
            metadata: Metadata {
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "customer:test".to_owned(),
                command_id: None,
            },
            recorded_at: Utc::now(),
            claims: Claims::default(),
            result: None,
        })
        .await
        .unwrap();
    let provider = start(
        "127.0.0.1:0".parse().unwrap(),
        KycProviderConfig {
            secret: "s".to_owned(),
            seed: Some(1),
            // Long enough that no callback is attempted during the test.
            behaviour: KycBehaviour {
                delay_ms: 60_000,
                ..KycBehaviour::default()
            },
        },
    )
    .await
    .unwrap();
    let client = KycProviderClient::new(
        &provider.url(),
        "http://127.0.0.1:9/v1/webhooks/kyc",
        store.clone(),
        Duration::from_secs(5),
    )
    .unwrap();
    let command = OutboxCommand {
        command_id: Uuid::now_v7(),
        saga: "kyc".to_owned(),
        instance_id: customer_id.to_string(),
        name: KYC_SUBMIT.to_owned(),
        payload: json!({
            "customer_id": customer_id,
            "submission_id": submission_id,
            "reference": reference_of(domain::ids::CustomerId(customer_id), submission_id),
        }),
        attempt: 1,
    };

    let first = client.submit(&command).await.unwrap();
    let again = client.submit(&command).await.unwrap();
    assert_eq!(first, again, "the command id is the idempotence key");
    let ledger = provider.ledger();
    assert_eq!(ledger["checks"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["keys"][0]["key"], command.command_id.to_string());
    assert_eq!(ledger["keys"][0]["creations"], 1);

    // No submission with that id: retrying cannot help.
    let mut unknown = command.clone();
    unknown.command_id = Uuid::now_v7();
    unknown.payload["submission_id"] = json!(Uuid::now_v7());
    assert!(matches!(
        client.submit(&unknown).await,
        Err(SinkError::Permanent(_))
    ));

    // The provider failing: try again later.
    provider.set_behaviour(KycBehaviour {
        error_5xx_rate: 1.0,
        ..KycBehaviour::default()
    });
    let mut fresh = command.clone();
    fresh.command_id = Uuid::now_v7();
    assert!(matches!(
        client.submit(&fresh).await,
        Err(SinkError::Transient(_))
    ));

    // The provider unreachable: try again later.
    provider.shutdown().await.unwrap();
    assert!(matches!(
        client.submit(&fresh).await,
        Err(SinkError::Transient(_))
    ));
}
