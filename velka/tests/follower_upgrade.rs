//! Upgrading a database whose followers stand mid-log to the one checkpoint table.
//!
//! Before migration `20261207100000_event_store_follower_checkpoints`, each kind of follower
//! kept its checkpoint in a table of its own (`projector_checkpoints`, `saga_checkpoints`,
//! `relay_checkpoints`, `audit_chain_checkpoints`). This test builds that schema, appends a log,
//! and leaves a projector, a saga, the relay and the sealer each at a different place in it, the
//! way their old runners left them (effects and checkpoint agreeing). Then it migrates, appends
//! more, runs today's runners over the real PostgreSQL and NATS, and checks every event had each
//! follower's effect exactly once: a counting projector's rows, a saga's per-instance record of
//! what it reacted to, the JetStream stream a consumer reads, one chain entry per event. A
//! checkpoint lost in the migration would show as repeats (rows twice, duplicate acks, seen
//! events, a chain entry refused), one carried to the wrong place as gaps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_nats::jetstream;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::message::PublishMessage;
use audit::chain::{self, ChainEvent, EVENT_COLUMNS};
use audit::sealer::{Sealer, SealerConfig};
use audit::verify::{Verdict, VerifyOptions};
use chrono::Utc;
use event_store::clock::SystemClock;
use event_store::follower::{
    FollowerId, FollowerStatus, RunnerConfig, Shutdown, StoredCheckpoint, checkpoint,
};
use event_store::testing::TestDatabase;
use event_store::{
    AppendRequest, Claims, EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent,
    RecordedEvent, StreamWrite,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use projectors::{ProjectionError, Projector, ProjectorRunner};
use relay::{EventMessage, Relay, RelayConfig};
use sagas::{FiredTimer, Reaction, ReactionError, Saga, SagaRunner};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The migration that gave every follower's checkpoint one table.
const FOLLOWER_CHECKPOINTS: i64 = 20261207100000;
/// How long a follower may take to reach the head.
const DEADLINE: Duration = Duration::from_secs(60);
/// Events in the log before the upgrade, and appended after it.
const BEFORE: usize = 160;
const AFTER: usize = 90;

/// Counts each `probe` event it applies as a row of `probe_applied`, which has no unique key: an
/// event applied twice leaves two rows.
#[derive(Debug)]
struct CountingProjector;

impl Projector for CountingProjector {
    fn name(&self) -> &'static str {
        "probe_count"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["probe_applied"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &["probe"]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let positions: Vec<i64> = events.iter().map(|event| event.position).collect();
            sqlx::query("INSERT INTO probe_applied (position) SELECT unnest($1::bigint[])")
                .bind(positions)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

/// Keeps, per `probe` stream, the position of every event it reacted to.
#[derive(Debug)]
struct RecordingSaga;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    positions: Vec<i64>,
}

impl Saga for RecordingSaga {
    type State = Seen;

    fn name(&self) -> &'static str {
        "probe-recorder"
    }

    fn categories(&self) -> &'static [&'static str] {
        &["probe"]
    }

    fn instance_of(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.clone())
    }

    fn react(
        &self,
        state: Option<Seen>,
        event: &RecordedEvent,
    ) -> Result<Reaction<Seen>, ReactionError> {
        let mut state = state.unwrap_or_default();
        state.positions.push(event.position);
        Ok(Reaction::new(state))
    }

    fn on_timer(&self, state: Seen, _timer: &FiredTimer) -> Result<Reaction<Seen>, ReactionError> {
        Ok(Reaction::new(state))
    }
}

/// Appends `count` events, one append each, spread over three `probe` streams and two of
/// another category.
async fn append(store: &EventStore, count: usize, offset: usize) {
    for n in offset..offset + count {
        let stream = if n % 5 < 3 {
            format!("probe-{}", n % 3)
        } else {
            format!("other-{}", n % 2)
        };
        let at = Utc::now();
        store
            .append(&AppendRequest {
                writes: vec![StreamWrite {
                    stream_id: stream,
                    expected: ExpectedVersion::Any,
                    events: vec![NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: "Happened".to_owned(),
                        schema_version: 1,
                        data: serde_json::json!({ "n": n }),
                        occurred_at: at,
                    }],
                }],
                metadata: Metadata {
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    actor: "service:test".to_owned(),
                    command_id: None,
                },
                recorded_at: at,
                claims: Claims::default(),
                result: None,
            })
            .await
            .unwrap();
    }
}

/// The whole log in delivery order, once every committed event can be delivered (the horizon
/// is cluster-wide: another test's transaction can hold it back for a moment).
async fn whole_log(store: &EventStore) -> Vec<RecordedEvent> {
    let committed = usize::try_from(store.count().await.unwrap()).unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut events = Vec::new();
        let mut after = LogPosition::START;
        loop {
            let page = store.read_log(after, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.log_position;
            events.extend(page);
        }
        if events.len() == committed {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never showed every event"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the migrations older than the one checkpoint table.
async fn migrate_to_the_old_schema(pool: &PgPool) {
    let before = std::env::temp_dir().join(format!("velka-migrations-{}", Uuid::new_v4()));
    std::fs::create_dir(&before).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for file in std::fs::read_dir(&all).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < FOLLOWER_CHECKPOINTS {
            std::fs::copy(file.path(), before.join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(pool)
        .await
        .unwrap();
    std::fs::remove_dir_all(&before).unwrap();
}

/// Binds a position's transaction id as the `xid8` the old tables hold.
fn xid(position: LogPosition) -> String {
    position.transaction_id.to_string()
}

/// The counting projector as its old runner left it after `log[..=at]`.
async fn old_projector(pool: &PgPool, log: &[RecordedEvent], at: usize) {
    for event in log[..=at].iter().filter(|e| e.category() == "probe") {
        sqlx::query("INSERT INTO probe_applied (position) VALUES ($1)")
            .bind(event.position)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, transaction_id, position, updated_at)
         VALUES ('probe_count', $1::xid8, $2, now())",
    )
    .bind(xid(log[at].log_position))
    .bind(log[at].position)
    .execute(pool)
    .await
    .unwrap();
}

/// The recording saga as its old runner left it after `log[..=at]`: each instance's state and
/// the last event it reacted to, and the checkpoint.
async fn old_saga(pool: &PgPool, log: &[RecordedEvent], at: usize) {
    let mut instances: BTreeMap<String, (Seen, LogPosition)> = BTreeMap::new();
    for event in log[..=at].iter().filter(|e| e.category() == "probe") {
        let entry = instances
            .entry(event.stream_id.clone())
            .or_insert_with(|| (Seen::default(), event.log_position));
        entry.0.positions.push(event.position);
        entry.1 = event.log_position;
    }
    for (instance, (seen, last)) in &instances {
        sqlx::query(
            "INSERT INTO saga_instances (saga, instance_id, state, status, version,
                                         last_transaction_id, last_position, updated_at)
             VALUES ('probe-recorder', $1, $2, 'active', $3, $4::xid8, $5, now())",
        )
        .bind(instance)
        .bind(serde_json::to_value(seen).unwrap())
        .bind(i64::try_from(seen.positions.len()).unwrap())
        .bind(xid(*last))
        .bind(last.position)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO saga_checkpoints (saga, transaction_id, position, updated_at)
         VALUES ('probe-recorder', $1::xid8, $2, now())",
    )
    .bind(xid(log[at].log_position))
    .bind(log[at].position)
    .execute(pool)
    .await
    .unwrap();
}

/// The relay as its old self left it after `log[..=at]`: those events in its JetStream stream,
/// by message id, and the checkpoint.
async fn old_relay(
    pool: &PgPool,
    client: &async_nats::Client,
    config: &RelayConfig,
    log: &[RecordedEvent],
    at: usize,
) {
    let jetstream = jetstream::new(client.clone());
    jetstream
        .create_stream(jetstream::stream::Config {
            name: config.stream_name.clone(),
            subjects: vec![format!("{}.events.>", config.prefix)],
            duplicate_window: config.duplicate_window,
            max_age: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .unwrap();
    for event in &log[..=at] {
        let publish = PublishMessage::build()
            .payload(serde_json::to_vec(&EventMessage::of(event)).unwrap().into())
            .headers(relay::message::headers(event))
            .message_id(event.event_id.to_string());
        jetstream
            .send_publish(relay::message::subject(&config.prefix, event), publish)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO relay_checkpoints (name, transaction_id, position, updated_at)
         VALUES ($1, $2::xid8, $3, now())",
    )
    .bind(&config.name)
    .bind(xid(log[at].log_position))
    .bind(log[at].position)
    .execute(pool)
    .await
    .unwrap();
}

/// The sealer as its old self left it after `log[..=at]`: one chain entry per event, and the
/// checkpoint with the chain's head.
async fn old_sealer(pool: &PgPool, name: &str, log: &[RecordedEvent], at: usize) {
    let mut hash = chain::GENESIS;
    for (index, event) in log[..=at].iter().enumerate() {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.position = $1"
        ))
        .bind(event.position)
        .fetch_one(pool)
        .await
        .unwrap();
        let stored = ChainEvent::from_row(&row, 0).unwrap();
        let next = chain::link(&hash, &stored.digest());
        sqlx::query(
            "INSERT INTO event_chain (seq, position, event_id, hash, prev_hash, sealed_at)
             VALUES ($1, $2, $3, $4, $5, now())",
        )
        .bind(i64::try_from(index + 1).unwrap())
        .bind(event.position)
        .bind(event.event_id)
        .bind(next.as_slice())
        .bind(hash.as_slice())
        .execute(pool)
        .await
        .unwrap();
        hash = next;
    }
    sqlx::query(
        "INSERT INTO audit_chain_checkpoints (name, transaction_id, position, seq, hash, updated_at)
         VALUES ($1, $2::xid8, $3, $4, $5, now())",
    )
    .bind(name)
    .bind(xid(log[at].log_position))
    .bind(log[at].position)
    .bind(i64::try_from(at + 1).unwrap())
    .bind(hash.as_slice())
    .execute(pool)
    .await
    .unwrap();
}

/// What the follower module holds for `kind`:`name` after the migration.
async fn carried(pool: &PgPool, kind: &'static str, name: &str) -> StoredCheckpoint {
    checkpoint::read(pool, &FollowerId::new(kind, name))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no checkpoint for {kind}:{name} after the migration"))
}

/// Waits until `status` has reached `head`.
async fn reached(what: &str, status: &FollowerStatus, head: LogPosition) {
    assert!(
        status.wait_for_position(head, DEADLINE).await,
        "{what} never reached the head: {:?}",
        status.snapshot()
    );
}

fn count_of(log: &[RecordedEvent], category: &str) -> u64 {
    log.iter().filter(|e| e.category() == category).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_standing_mid_log_carry_on_after_the_migration_without_repeats_or_gaps() {
    let db = TestDatabase::unmigrated().await;
    let pool = db.pool();
    migrate_to_the_old_schema(pool).await;
    sqlx::query("CREATE TABLE probe_applied (position bigint NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    let store = db.store();
    append(&store, BEFORE, 0).await;
    let before = whole_log(&store).await;
    assert_eq!(before.len(), BEFORE);

    // Each follower somewhere else in the log (the saga's and the projector's on an event of
    // another category, so the first batch after the upgrade starts mid-way through skipping).
    let client = async_nats::connect(
        std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned()),
    )
    .await
    .expect("NATS with JetStream at NATS_URL (default 127.0.0.1:4222)");
    let id = Uuid::new_v4().simple().to_string();
    let mut relay_config = RelayConfig::new(format!("upgrade{id}"));
    relay_config.stream_name = format!("VELKA_UPGRADE_{id}");
    relay_config.name = "upgrade".to_owned();
    relay_config.runner.batch_size = 40;
    relay_config.runner.idle_poll = Duration::from_millis(20);
    let at_projector = 43;
    let at_saga = 78;
    let at_relay = 117;
    let at_sealer = 133;
    assert_ne!(before[at_projector].category(), "probe");
    assert_ne!(before[at_saga].category(), "probe");
    old_projector(pool, &before, at_projector).await;
    old_saga(pool, &before, at_saga).await;
    old_relay(pool, &client, &relay_config, &before, at_relay).await;
    old_sealer(pool, "chain", &before, at_sealer).await;

    // The upgrade.
    event_store::MIGRATOR.run(pool).await.unwrap();
    for (kind, name, at) in [
        ("projector", "probe_count", at_projector),
        ("saga", "probe-recorder", at_saga),
        ("relay", "upgrade", at_relay),
        ("sealer", "chain", at_sealer),
    ] {
        let stored = carried(pool, kind, name).await;
        assert_eq!(
            stored.checkpoint.position, before[at].log_position,
            "{kind}:{name}"
        );
    }
    let head = audit::sealer::load_checkpoint(pool, "chain").await.unwrap();
    assert_eq!(head.seq, i64::try_from(at_sealer + 1).unwrap());
    let old_tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN
         ('projector_checkpoints', 'saga_checkpoints', 'relay_checkpoints',
          'audit_chain_checkpoints')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(old_tables, 0, "the old checkpoint tables are gone");

    // More of the log, then today's runners.
    append(&store, AFTER, BEFORE).await;
    let log = whole_log(&store).await;
    let last = log.last().unwrap().log_position;
    let runner = RunnerConfig {
        batch_size: 25,
        idle_poll: Duration::from_millis(20),
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(200),
        checkpoint_delay: Duration::from_millis(20),
    };
    let shutdown = Shutdown::new();
    let projector =
        ProjectorRunner::new(store.clone(), Arc::new(CountingProjector), runner.clone());
    let saga = SagaRunner::new(store.clone(), Arc::new(RecordingSaga), runner.clone());
    let relay = Relay::new(store.clone(), client.clone(), relay_config.clone());
    let sealer = Sealer::new(
        store.clone(),
        Arc::new(SystemClock),
        None,
        SealerConfig {
            name: "chain".to_owned(),
            head_every_events: 0,
            head_interval: Duration::ZERO,
            runner: runner.clone(),
            ..SealerConfig::default()
        },
    );
    let statuses = [
        ("projector", projector.status()),
        ("saga", saga.status()),
        ("relay", relay.status()),
        ("sealer", sealer.status().follower().clone()),
    ];
    let stopping = |shutdown: &Shutdown| {
        let shutdown = shutdown.clone();
        async move { shutdown.triggered().await }
    };
    let tasks = [
        tokio::spawn(projector.run(shutdown.clone())),
        tokio::spawn(saga.run(stopping(&shutdown))),
        tokio::spawn(relay.run(stopping(&shutdown))),
        tokio::spawn(sealer.run(stopping(&shutdown))),
    ];
    for (what, status) in &statuses {
        reached(what, status, last).await;
    }
    shutdown.trigger();
    for task in tasks {
        task.await.unwrap();
    }

    // The projector: every probe event's row once, the ones after its checkpoint applied now.
    let rows: Vec<i64> = sqlx::query_scalar("SELECT position FROM probe_applied ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut probes: Vec<i64> = log
        .iter()
        .filter(|e| e.category() == "probe")
        .map(|e| e.position)
        .collect();
    probes.sort_unstable();
    assert_eq!(
        rows, probes,
        "each probe event applied once by the projector"
    );
    let projector = statuses[0].1.snapshot();
    assert_eq!(
        projector.events_applied,
        count_of(&log[at_projector + 1..], "probe")
    );

    // The saga: each instance reacted to each of its events once, in order; nothing already
    // seen came its way again.
    let states: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT instance_id, state FROM saga_instances WHERE saga = 'probe-recorder'
         ORDER BY instance_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for event in log.iter().filter(|e| e.category() == "probe") {
        expected
            .entry(event.stream_id.clone())
            .or_default()
            .push(event.position);
    }
    let recorded: BTreeMap<String, Vec<i64>> = states
        .into_iter()
        .map(|(instance, state)| {
            let seen: Seen = serde_json::from_value(state).unwrap();
            (instance, seen.positions)
        })
        .collect();
    assert_eq!(
        recorded, expected,
        "each probe event reacted to once by the saga"
    );
    let saga = statuses[1].1.snapshot();
    assert_eq!(
        saga.duplicates, 0,
        "the saga was handed no event it had seen"
    );
    assert_eq!(saga.events_applied, count_of(&log[at_saga + 1..], "probe"));

    // The relay: the stream holds the whole log once, in order; nothing was published twice.
    let relay = statuses[2].1.snapshot();
    assert_eq!(relay.duplicates, 0, "the relay repeated nothing");
    assert_eq!(relay.events_applied, (log.len() - at_relay - 1) as u64);
    let jetstream = jetstream::new(client.clone());
    let mut stream = jetstream
        .get_stream(&relay_config.stream_name)
        .await
        .unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    assert_eq!(stored, log.len() as u64);
    let mut messages = stream
        .create_consumer(OrderedConfig::default())
        .await
        .unwrap()
        .messages()
        .await
        .unwrap();
    for event in &log {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the consumer delivers every stored message")
            .unwrap()
            .unwrap();
        let received: EventMessage = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(
            received.event_id, event.event_id,
            "the stream is the log, in order"
        );
    }
    jetstream
        .delete_stream(&relay_config.stream_name)
        .await
        .unwrap();

    // The sealer: one entry per event in delivery order, the chain intact.
    let sealer = statuses[3].1.snapshot();
    assert_eq!(sealer.events_applied, (log.len() - at_sealer - 1) as u64);
    let chained: Vec<i64> = sqlx::query_scalar("SELECT position FROM event_chain ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap();
    let in_order: Vec<i64> = log.iter().map(|e| e.position).collect();
    assert_eq!(
        chained, in_order,
        "one chain entry per event, in delivery order"
    );
    let verdict = audit::verify::verify(pool, "chain", &[], VerifyOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(
        matches!(verdict, Verdict::Intact { events, unsealed: 0, .. } if events == log.len() as i64),
        "{verdict:?}"
    );
}
