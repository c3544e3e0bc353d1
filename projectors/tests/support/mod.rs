//! What the projector tests share: fast runner settings, a probe projector that records every
//! event it applies (so a double application shows as a duplicate row), and waiting on a
//! runner's status with a deadline.
#![allow(dead_code, clippy::unwrap_used)]

use event_store::{
    AppendRequest, Claims, EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent,
    RecordedEvent, StreamWrite,
};
use futures::future::BoxFuture;
use projectors::{FollowerStatus, ProjectionError, Projector, RunnerConfig, StatusSnapshot};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// How long a test waits for a projector before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Small retries so that failure tests run in milliseconds.
pub fn fast() -> RunnerConfig {
    RunnerConfig {
        batch_size: 500,
        idle_poll: Duration::from_millis(20),
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        checkpoint_delay: Duration::from_millis(50),
    }
}

/// Records each `probe` event it applies as a row of `probe_applied`, which has no unique key:
/// an event applied twice leaves two rows.
#[derive(Debug)]
pub struct ProbeProjector;

impl Projector for ProbeProjector {
    fn name(&self) -> &'static str {
        "probe"
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
            for event in events {
                sqlx::query(
                    "INSERT INTO probe_applied (position, stream_id, event_type)
                     VALUES ($1, $2, $3)",
                )
                .bind(event.position)
                .bind(&event.stream_id)
                .bind(&event.event_type)
                .execute(&mut *conn)
                .await
                .map_err(|error| ProjectionError::from(error).at(event))?;
            }
            Ok(())
        })
    }
}

pub async fn create_probe_table(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE probe_applied (position bigint NOT NULL, stream_id text NOT NULL,
                                     event_type text NOT NULL)",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Positions in `probe_applied`, in the order they were applied (one entry per row).
pub async fn probe_rows(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM probe_applied ORDER BY ctid")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Appends one event of type `event_type` to `stream_id` in its own transaction.
pub async fn append_raw(store: &EventStore, stream_id: &str, event_type: &str) {
    let at = chrono::Utc::now();
    store
        .append(&AppendRequest {
            writes: vec![StreamWrite {
                stream_id: stream_id.to_owned(),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version: 1,
                    data: serde_json::json!({}),
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

/// The whole log, in delivery order.
pub async fn log(store: &EventStore) -> Vec<RecordedEvent> {
    // `read_log` holds back events behind any transaction still in flight anywhere in the
    // cluster (other tests' databases too), so wait until it shows everything committed.
    let committed = store.count().await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let events = store.read_log(LogPosition::START, 10_000).await.unwrap();
        if events.len() as i64 >= committed {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never showed all {committed} committed events"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Waits until the runner's status satisfies `condition`, or fails the test at the deadline.
pub async fn wait_for_status(
    status: &FollowerStatus,
    what: &str,
    condition: impl FnMut(&StatusSnapshot) -> bool,
) -> StatusSnapshot {
    let mut watch = status.watch();
    match tokio::time::timeout(DEADLINE, watch.wait_for(condition)).await {
        Ok(Ok(snapshot)) => snapshot.clone(),
        _ => panic!(
            "status never reached: {what}; last status: {:?}",
            status.snapshot()
        ),
    }
}
