//! Appending and reading streams against a real PostgreSQL, a fresh database per test.

#![allow(clippy::unwrap_used)]

mod support;

use event_store::testing::TestDatabase;
use event_store::{AppendError, Claims, CommandResult, ExpectedVersion, LogPosition};
use serde_json::json;
use support::{event, request, write};

#[tokio::test]
async fn appends_and_reads_a_stream_with_metadata() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut req = request(vec![write(
        "trip-1",
        ExpectedVersion::NoStream,
        vec![event("TripStarted", 1), event("TripParked", 2)],
    )]);
    req.metadata.causation_id = Some(uuid::Uuid::now_v7());
    let outcome = store.append(&req).await.unwrap();
    assert_eq!(outcome.events.len(), 2);
    assert_eq!(outcome.events[1].2, 2);

    let events = store.read_stream("trip-1", 0).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, "TripStarted");
    assert_eq!(events[0].stream_version, 1);
    assert_eq!(events[1].stream_version, 2);
    assert_eq!(events[1].data, json!({"n": 2}));
    assert_eq!(events[0].metadata, req.metadata);
    assert_eq!(events[0].event_id, req.writes[0].events[0].event_id);
    assert_eq!(events[0].category(), "trip");
    assert_eq!(events[0].recorded_at, req.recorded_at);

    let after_first = store.read_stream("trip-1", 1).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].event_type, "TripParked");
}

#[tokio::test]
async fn wrong_expected_version_is_a_typed_conflict_and_writes_nothing() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(&request(vec![write(
            "vehicle-1",
            ExpectedVersion::NoStream,
            vec![event("A", 1)],
        )]))
        .await
        .unwrap();

    let stale = request(vec![write(
        "vehicle-1",
        ExpectedVersion::NoStream,
        vec![event("B", 2)],
    )]);
    match store.append(&stale).await {
        Err(AppendError::WrongExpectedVersion {
            stream_id,
            expected,
            actual,
        }) => {
            assert_eq!(stream_id, "vehicle-1");
            assert_eq!(expected, 0);
            assert_eq!(actual, 1);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let ahead = request(vec![write(
        "vehicle-1",
        ExpectedVersion::Exactly(5),
        vec![event("B", 2)],
    )]);
    assert!(matches!(
        store.append(&ahead).await,
        Err(AppendError::WrongExpectedVersion { actual: 1, .. })
    ));
    assert_eq!(store.count().await.unwrap(), 1);

    let right = request(vec![write(
        "vehicle-1",
        ExpectedVersion::Exactly(1),
        vec![event("B", 2)],
    )]);
    store.append(&right).await.unwrap();
    let any = request(vec![write(
        "vehicle-1",
        ExpectedVersion::Any,
        vec![event("C", 3)],
    )]);
    let outcome = store.append(&any).await.unwrap();
    assert_eq!(outcome.events[0].2, 3);
}

#[tokio::test]
async fn a_multi_stream_append_is_all_or_nothing() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(&request(vec![write(
            "vehicle-1",
            ExpectedVersion::NoStream,
            vec![event("A", 1)],
        )]))
        .await
        .unwrap();
    // The trip stream is fine, the vehicle stream is stale: neither may be written.
    let req = request(vec![
        write(
            "trip-1",
            ExpectedVersion::NoStream,
            vec![event("TripStarted", 1)],
        ),
        write(
            "vehicle-1",
            ExpectedVersion::NoStream,
            vec![event("VehicleRented", 1)],
        ),
    ]);
    assert!(store.append(&req).await.is_err());
    assert!(store.read_stream("trip-1", 0).await.unwrap().is_empty());
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_creators_of_one_stream_get_one_winner() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(&request(vec![write(
                    "customer-1",
                    ExpectedVersion::NoStream,
                    vec![event("CustomerRegistered", n)],
                )]))
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(AppendError::WrongExpectedVersion { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.read_stream("customer-1", 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn claims_are_exclusive_until_released() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let claim = "active-trip:vehicle:7".to_owned();
    let mut first = request(vec![write(
        "trip-1",
        ExpectedVersion::NoStream,
        vec![event("S", 1)],
    )]);
    first.claims = Claims {
        acquire: vec![claim.clone()],
        holder: Some("trip-1".into()),
        release: vec![],
    };
    store.append(&first).await.unwrap();
    assert_eq!(
        store.claim_holder(&claim).await.unwrap().as_deref(),
        Some("trip-1")
    );

    let mut second = request(vec![write(
        "trip-2",
        ExpectedVersion::NoStream,
        vec![event("S", 1)],
    )]);
    second.claims = Claims {
        acquire: vec![claim.clone()],
        holder: Some("trip-2".into()),
        release: vec![],
    };
    match store.append(&second).await {
        Err(AppendError::ClaimHeld { claim: held }) => assert_eq!(held, claim),
        other => panic!("expected ClaimHeld, got {other:?}"),
    }
    assert!(store.read_stream("trip-2", 0).await.unwrap().is_empty());

    let mut end = request(vec![write(
        "trip-1",
        ExpectedVersion::Exactly(1),
        vec![event("E", 2)],
    )]);
    end.claims.release = vec![claim.clone()];
    store.append(&end).await.unwrap();
    assert_eq!(store.claim_holder(&claim).await.unwrap(), None);
    store.append(&second).await.unwrap();
    assert_eq!(
        store.claim_holder(&claim).await.unwrap().as_deref(),
        Some("trip-2")
    );
}

#[tokio::test]
async fn a_command_result_is_stored_once_with_its_events() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let result = CommandResult {
        scope: "customer:1".into(),
        key: "key-1".into(),
        request_hash: "h1".into(),
        status: 201,
        body: json!({"trip_id": "t"}),
    };
    let mut req = request(vec![write(
        "trip-1",
        ExpectedVersion::NoStream,
        vec![event("S", 1)],
    )]);
    req.result = Some(result.clone());
    store.append(&req).await.unwrap();

    let mut retry = request(vec![write(
        "trip-2",
        ExpectedVersion::NoStream,
        vec![event("S", 1)],
    )]);
    retry.result = Some(result.clone());
    assert!(matches!(
        store.append(&retry).await,
        Err(AppendError::DuplicateCommand { key }) if key == "key-1"
    ));
    assert!(store.read_stream("trip-2", 0).await.unwrap().is_empty());

    let stored = store
        .find_result("customer:1", "key-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, 201);
    assert_eq!(stored.body, json!({"trip_id": "t"}));
    assert!(
        store
            .find_result("customer:2", "key-1")
            .await
            .unwrap()
            .is_none()
    );

    // Recording a rejection under a taken key returns the first result and keeps it.
    let mut rejection = result.clone();
    rejection.status = 409;
    let kept = store
        .record_result(&rejection, support::at())
        .await
        .unwrap();
    assert_eq!(kept.status, 201);
}

#[tokio::test]
async fn malformed_stream_ids_are_refused_before_the_database() {
    let db = TestDatabase::new().await;
    let store = db.store();
    for bad in ["trip", "Trip-1", "-1", "trip-1 2"] {
        let req = request(vec![write(bad, ExpectedVersion::Any, vec![event("S", 1)])]);
        assert!(
            matches!(store.append(&req).await, Err(AppendError::Invalid(_))),
            "{bad}"
        );
    }
    let twice = request(vec![
        write("trip-1", ExpectedVersion::Any, vec![event("S", 1)]),
        write("trip-1", ExpectedVersion::Any, vec![event("S", 2)]),
    ]);
    assert!(matches!(
        store.append(&twice).await,
        Err(AppendError::Invalid(_))
    ));
    assert_eq!(store.head().await.unwrap(), LogPosition::START);
}

#[tokio::test]
async fn read_streams_loads_several_streams_in_one_call() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(&request(vec![
            write(
                "customer-1",
                ExpectedVersion::NoStream,
                vec![event("A", 1), event("B", 2)],
            ),
            write("vehicle-1", ExpectedVersion::NoStream, vec![event("C", 3)]),
        ]))
        .await
        .unwrap();
    let events = store
        .read_streams(&["customer-1".into(), "vehicle-1".into(), "trip-9".into()])
        .await
        .unwrap();
    let summary: Vec<(String, u64)> = events
        .iter()
        .map(|e| (e.stream_id.clone(), e.stream_version))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("customer-1".into(), 1),
            ("customer-1".into(), 2),
            ("vehicle-1".into(), 1)
        ]
    );
}

#[tokio::test]
async fn a_stream_read_again_has_what_was_appended_since_by_any_writer() {
    let db = TestDatabase::new().await;
    let store = db.store();
    // Another process appending: a second store with its own cache on the same database.
    let other = event_store::EventStore::new(store.pool().clone());
    let uncached = event_store::EventStore::with_stream_cache(store.pool().clone(), 0);
    store
        .append(&request(vec![write(
            "vehicle-1",
            ExpectedVersion::NoStream,
            vec![event("A", 1), event("B", 2)],
        )]))
        .await
        .unwrap();
    assert_eq!(store.read_stream("vehicle-1", 0).await.unwrap().len(), 2);
    other
        .append(&request(vec![
            write(
                "vehicle-1",
                ExpectedVersion::Exactly(2),
                vec![event("C", 3)],
            ),
            write("trip-1", ExpectedVersion::NoStream, vec![event("D", 4)]),
        ]))
        .await
        .unwrap();
    for reader in [&store, &other, &uncached] {
        let events = reader
            .read_streams(&["vehicle-1".into(), "trip-1".into()])
            .await
            .unwrap();
        let summary: Vec<(String, u64, String)> = events
            .iter()
            .map(|e| (e.stream_id.clone(), e.stream_version, e.event_type.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("trip-1".into(), 1, "D".into()),
                ("vehicle-1".into(), 1, "A".into()),
                ("vehicle-1".into(), 2, "B".into()),
                ("vehicle-1".into(), 3, "C".into()),
            ]
        );
        let after_two = reader.read_stream("vehicle-1", 2).await.unwrap();
        assert_eq!(after_two.len(), 1);
        assert_eq!(after_two[0].event_type, "C");
    }
}

#[tokio::test]
async fn streams_read_after_a_version_give_exactly_the_events_that_follow_it() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let uncached = event_store::EventStore::with_stream_cache(store.pool().clone(), 0);
    store
        .append(&request(vec![
            write(
                "vehicle-1",
                ExpectedVersion::NoStream,
                vec![event("A", 1), event("B", 2), event("C", 3)],
            ),
            write("trip-1", ExpectedVersion::NoStream, vec![event("D", 4)]),
        ]))
        .await
        .unwrap();
    // The cache now holds vehicle-1 up to 3 and trip-1 up to 1.
    assert_eq!(store.read_stream("vehicle-1", 0).await.unwrap().len(), 3);
    assert_eq!(store.read_stream("trip-1", 0).await.unwrap().len(), 1);
    store
        .append(&request(vec![write(
            "vehicle-1",
            ExpectedVersion::Exactly(3),
            vec![event("E", 5)],
        )]))
        .await
        .unwrap();
    let summary = |events: Vec<event_store::RecordedEvent>| -> Vec<(String, u64)> {
        events
            .into_iter()
            .map(|e| (e.stream_id, e.stream_version))
            .collect()
    };
    for reader in [&store, &uncached] {
        // From inside what the cache holds, from past it, and from the start.
        let events = reader
            .read_streams_after(&[
                ("vehicle-1".into(), 1),
                ("trip-1".into(), 1),
                ("trip-2".into(), 0),
            ])
            .await
            .unwrap();
        assert_eq!(
            summary(events),
            vec![
                ("vehicle-1".into(), 2),
                ("vehicle-1".into(), 3),
                ("vehicle-1".into(), 4)
            ]
        );
        let events = reader
            .read_streams_after(&[("vehicle-1".into(), 4), ("trip-1".into(), 0)])
            .await
            .unwrap();
        assert_eq!(summary(events), vec![("trip-1".into(), 1)]);
    }
    // A read from past the start does not leave a gap in the cache: a whole read still has
    // every event.
    let fresh = event_store::EventStore::new(store.pool().clone());
    assert_eq!(fresh.read_stream("vehicle-1", 3).await.unwrap().len(), 1);
    let whole = fresh.read_stream("vehicle-1", 0).await.unwrap();
    assert_eq!(
        whole
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["A", "B", "C", "E"]
    );
}
