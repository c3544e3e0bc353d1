//! The relay: every committed event, published once and in log order, to NATS JetStream.
//!
//! [`Relay`] is a follower of the log ([`event_store::follower`]) whose effect is outside
//! PostgreSQL: from its checkpoint (`relay:<name>` in the one checkpoint table) it reads the
//! store's gap-free log a batch at a time and publishes each event to
//! `<prefix>.events.<category>.<stream_id>` in a JetStream stream it makes sure exists
//! (`VELKA_EVENTS` by default, file storage, subjects `<prefix>.events.>`). The payload is the
//! event as JSON ([`EventMessage`]); the headers are `Nats-Msg-Id` (the event id) and the
//! `Velka-*` headers of the [`message`] module.
//!
//! # Guarantees
//!
//! - **In log order.** A batch is published on one connection in delivery order, and its acks
//!   are awaited before the next batch starts. Inside a batch every message but the first also
//!   carries `Nats-Expected-Last-Msg-Id` = its predecessor's id, so if one publish is lost while a
//!   later one reaches the server (a reconnect between them), JetStream refuses the later one
//!   instead of storing it out of order, and the retry publishes both in order.
//! - **Nothing lost.** The checkpoint moves only after every publish of the batch has been
//!   acknowledged by JetStream (an [`AfterEffect`] follower); on any failure the relay backs off
//!   and starts again from the checkpoint. It never skips an event.
//! - **Exactly once in the stream, after deduplication.** A crash between the acks and the
//!   checkpoint commit repeats the batch. JetStream drops the repeats because their
//!   `Nats-Msg-Id` was seen within the stream's duplicate window (ten minutes by default, far
//!   longer than a restart takes); the relay counts them as `duplicates` in its status (and
//!   `events_applied` counts the publishes stored as new).
//! - **One relay at a time per name.** The checkpoint moves by compare-and-set, so a second relay
//!   of the same name (another process) notices and starts again from the stored checkpoint;
//!   both publish the same messages in the same order, and deduplication keeps one of each.
//!
//! Architecture invariant: the relay only reads the log and moves its own checkpoint (through
//! the follower module); it never decides anything and never changes an event.

mod error;
pub mod message;

pub use error::RelayError;
pub use message::EventMessage;

use async_nats::jetstream;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use event_store::follower::{
    AfterEffect, Applied, Batch, Categories, Checkpoint, EffectError, Follower, FollowerId,
    FollowerStatus, MetricNames, Runner, RunnerConfig,
};
use event_store::{EventStore, LogPosition, RecordedEvent};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The kind of follower the relay is: its checkpoint is `relay:<name>`.
const KIND: &str = "relay";

/// The `/metrics` series of the relay, as they have always been named (one relay per process).
const METRICS: MetricNames = MetricNames {
    label: None,
    position: Some("velka_relay_position"),
    applied_total: Some("velka_relay_events_published_total"),
    duplicates_total: Some("velka_relay_duplicates_total"),
    batch_seconds: Some("velka_relay_batch_seconds"),
    failures_total: Some("velka_relay_failures_total"),
    lag_events: Some("velka_relay_lag_events"),
    lag_ms: None,
};

/// Where and how the relay publishes. [`RelayConfig::new`] gives the production defaults.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The relay's name: its checkpoint is `relay:<name>`.
    pub name: String,
    /// Subject prefix (one token): events go to `<prefix>.events.<category>.<stream_id>`.
    pub prefix: String,
    /// The JetStream stream, created if missing.
    pub stream_name: String,
    /// How long JetStream remembers a `Nats-Msg-Id`: a batch repeated within it is dropped.
    pub duplicate_window: Duration,
    /// How long the stream keeps messages; zero keeps them until removed by hand.
    pub max_age: Duration,
    /// On how many JetStream servers the stream keeps each message when the relay creates it:
    /// 3 in a three-node cluster, so that losing a node loses nothing acknowledged; 1 on a
    /// single server. An existing stream is used as it is.
    pub replicas: usize,
    /// How it follows the log: batch size (publishes in flight at once), polling, retries.
    pub runner: RunnerConfig,
}

impl RelayConfig {
    /// Production defaults for subjects under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            name: "nats".to_owned(),
            prefix: prefix.into(),
            stream_name: "VELKA_EVENTS".to_owned(),
            duplicate_window: Duration::from_secs(10 * 60),
            max_age: Duration::ZERO,
            replicas: 1,
            runner: RunnerConfig::default(),
        }
    }

    fn validate(&self) -> Result<(), RelayError> {
        let token = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !token(&self.prefix) {
            return Err(RelayError::Config(format!(
                "subject prefix {:?} must be letters, digits, '_' or '-'",
                self.prefix
            )));
        }
        if !token(&self.stream_name) {
            return Err(RelayError::Config(format!(
                "stream name {:?} must be letters, digits, '_' or '-'",
                self.stream_name
            )));
        }
        if self.name.is_empty() {
            return Err(RelayError::Config("checkpoint name is empty".to_owned()));
        }
        Ok(())
    }

    fn stream_subjects(&self) -> String {
        format!("{}.events.>", self.prefix)
    }
}

/// A batch that has been published and acknowledged but whose checkpoint is not committed yet:
/// what [`Relay::with_before_commit`] hooks are told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PublishedBatch {
    /// Batches this relay had committed before this one.
    pub index: u64,
    /// Events in the batch.
    pub events: usize,
    /// The batch's first event.
    pub first: LogPosition,
    /// The batch's last event (the checkpoint to be).
    pub last: LogPosition,
    /// How many of its publishes JetStream answered as duplicates.
    pub duplicates: u64,
}

/// Called between a batch's acks and its checkpoint commit; its future is awaited first.
pub type BeforeCommit = Arc<dyn Fn(PublishedBatch) -> BoxFuture<'static, ()> + Send + Sync>;

/// Publishes the log to JetStream. Create it, take its [`status`](Self::status), then
/// [`run`](Self::run) it (usually in a spawned task).
pub struct Relay {
    runner: Runner<Publisher>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let publisher = self.runner.follower();
        f.debug_struct("Relay")
            .field("config", &publisher.config)
            .field("status", &self.runner.status().snapshot())
            .field("message_ids", &publisher.message_ids)
            .field("before_commit", &publisher.before_commit.is_some())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay of `store` through `client` (connected, or connecting in the background).
    pub fn new(store: EventStore, client: async_nats::Client, config: RelayConfig) -> Self {
        let runner_config = config.runner.clone();
        let publisher = Publisher {
            id: FollowerId::new(KIND, config.name.clone()),
            jetstream: jetstream::new(client),
            config,
            message_ids: true,
            before_commit: None,
            committed: AtomicU64::new(0),
        };
        Self {
            runner: Runner::new(store, publisher, runner_config),
        }
    }

    /// Runs `hook` after each batch's acks and before its checkpoint commit: the window in which
    /// a crash makes the batch be published again. For crash tests.
    pub fn with_before_commit(mut self, hook: BeforeCommit) -> Self {
        self.runner.follower_mut().before_commit = Some(hook);
        self
    }

    /// Publishes without `Nats-Msg-Id` (and so without deduplication) when `false`. Only for
    /// tests that show what deduplication prevents: a repeated batch is then stored twice.
    pub fn with_message_ids(mut self, message_ids: bool) -> Self {
        self.runner.follower_mut().message_ids = message_ids;
        self
    }

    /// The status handle (`events_applied`: publishes stored as new; `duplicates`: publishes
    /// JetStream dropped as repeats); clones stay valid after the relay stops.
    pub fn status(&self) -> FollowerStatus {
        self.runner.status()
    }

    /// Publishes the log until `shutdown` resolves. Failures (NATS down, the database away) are
    /// logged, put in the status and retried from the checkpoint with a backoff that doubles up
    /// to `retry_max`; they never end the relay. A batch being published when `shutdown`
    /// resolves is finished (acks awaited, checkpoint committed) first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let config = &self.runner.follower().config;
        if let Err(error) = config.validate() {
            tracing::error!(%error, "NATS relay not started");
            self.runner.status().not_started(&error);
            return;
        }
        tracing::info!(
            stream = %config.stream_name,
            subjects = %config.stream_subjects(),
            "NATS relay starting"
        );
        self.runner.run_after_effect(shutdown).await;
    }
}

/// The relay's effect: a batch published in order, every ack awaited.
struct Publisher {
    id: FollowerId,
    jetstream: jetstream::Context,
    config: RelayConfig,
    message_ids: bool,
    before_commit: Option<BeforeCommit>,
    /// Batches whose checkpoint this relay committed.
    committed: AtomicU64,
}

impl Follower for Publisher {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::All
    }

    fn metrics(&self) -> MetricNames {
        METRICS
    }

    /// Makes sure the stream exists each time the relay (re)starts from its checkpoint: it may
    /// have been deleted, or NATS restarted without it.
    fn resume<'a>(&'a self, _checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), EffectError>> {
        Box::pin(async move { self.ensure_stream().await.map_err(EffectError::new) })
    }

    fn committed(&self, _batch: &Batch<'_>, _applied: &Applied) {
        self.committed.fetch_add(1, Ordering::Relaxed);
    }
}

impl AfterEffect for Publisher {
    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(async move { self.publish(batch.page()).await.map_err(EffectError::new) })
    }
}

impl Publisher {
    /// Creates the stream if it does not exist; an existing one is used as it is.
    async fn ensure_stream(&self) -> Result<(), RelayError> {
        let config = StreamConfig {
            name: self.config.stream_name.clone(),
            subjects: vec![self.config.stream_subjects()],
            storage: StorageType::File,
            duplicate_window: self.config.duplicate_window,
            max_age: self.config.max_age,
            num_replicas: self.config.replicas,
            ..Default::default()
        };
        let stream = self
            .jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|source| RelayError::Stream {
                stream: self.config.stream_name.clone(),
                source,
            })?;
        let replicas = stream.cached_info().config.num_replicas;
        if replicas < self.config.replicas {
            tracing::warn!(
                stream = %self.config.stream_name,
                replicas,
                wanted = self.config.replicas,
                "the JetStream stream keeps fewer replicas than configured: losing a server may \
                 lose published events"
            );
        }
        let window = stream.cached_info().config.duplicate_window;
        if window < self.config.duplicate_window {
            tracing::warn!(
                stream = %self.config.stream_name,
                window_s = window.as_secs_f64(),
                wanted_s = self.config.duplicate_window.as_secs_f64(),
                "the JetStream stream's duplicate window is shorter than configured: a batch \
                 repeated after a longer outage may be stored twice"
            );
        }
        Ok(())
    }

    /// Publishes `batch` in order and awaits every ack; then (before the checkpoint moves) runs
    /// the before-commit hook.
    async fn publish(&self, batch: &[RecordedEvent]) -> Result<Applied, RelayError> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(Applied::default());
        };
        // All publishes first, on one connection and in order; then the acks, in order. The
        // pipelining is what makes the relay fast; the order of the sends is what keeps the
        // stream in log order.
        let mut acks = Vec::with_capacity(batch.len());
        let mut previous: Option<&RecordedEvent> = None;
        for event in batch {
            let payload = serde_json::to_vec(&EventMessage::of(event)).map_err(|source| {
                RelayError::Encode {
                    position: event.position,
                    source,
                }
            })?;
            let mut publish = PublishMessage::build()
                .payload(payload.into())
                .headers(message::headers(event));
            if self.message_ids {
                publish = publish.message_id(event.event_id.to_string());
                if let Some(previous) = previous {
                    publish = publish.expected_last_message_id(previous.event_id.to_string());
                }
            }
            let ack = self
                .jetstream
                .send_publish(message::subject(&self.config.prefix, event), publish)
                .await
                .map_err(|source| RelayError::Publish {
                    position: event.position,
                    source,
                })?;
            acks.push((event.position, ack));
            previous = Some(event);
        }
        let mut duplicates: u64 = 0;
        for (position, ack) in acks {
            let ack = ack
                .await
                .map_err(|source| RelayError::Publish { position, source })?;
            if ack.duplicate {
                duplicates += 1;
            }
        }
        if let Some(hook) = &self.before_commit {
            hook(PublishedBatch {
                index: self.committed.load(Ordering::Relaxed),
                events: batch.len(),
                first: first.log_position,
                last: last.log_position,
                duplicates,
            })
            .await;
        }
        Ok(Applied {
            events: batch.len() as u64 - duplicates,
            duplicates,
            state: None,
        })
    }
}
