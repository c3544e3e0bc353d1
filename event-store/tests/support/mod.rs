//! Builders shared by the event store's tests.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use event_store::follower::{
    Applied, Batch, Categories, EffectError, Follower, FollowerId, InTransaction,
};
use event_store::{AppendRequest, Claims, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

pub fn at() -> DateTime<Utc> {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

pub fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data: json!({ "n": n }),
        occurred_at: at(),
    }
}

pub fn metadata(actor: &str) -> Metadata {
    Metadata {
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: actor.to_owned(),
        command_id: Some(Uuid::now_v7()),
    }
}

pub fn write(stream_id: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamWrite {
    StreamWrite {
        stream_id: stream_id.to_owned(),
        expected,
        events,
    }
}

pub fn request(writes: Vec<StreamWrite>) -> AppendRequest {
    AppendRequest {
        writes,
        metadata: metadata("test"),
        recorded_at: at(),
        claims: Claims::default(),
        result: None,
    }
}

/// A probe in-transaction follower of the `probe` category: each event it applies is a row of
/// `probe_applied (position)`, which the test creates (with a unique key, a second application
/// fails; without, it shows as two rows).
pub struct Counter {
    pub id: FollowerId,
}

impl Follower for Counter {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::Only(&["probe"])
    }
}

impl InTransaction for Counter {
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(async move {
            let mut applied = Applied::default();
            for event in batch.events() {
                sqlx::query("INSERT INTO probe_applied (position) VALUES ($1)")
                    .bind(event.position)
                    .execute(&mut *tx)
                    .await
                    .map_err(|error| EffectError::on(event, error))?;
                applied.events += 1;
            }
            Ok(applied)
        })
    }
}
