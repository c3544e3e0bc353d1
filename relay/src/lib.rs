//! The relay: every committed event, published once and in log order, to NATS JetStream.
//!
//! [`Relay`] follows the event log from a checkpoint of its own (`relay_checkpoints`, created in
//! `migrations/*_relay.sql`) with the store's gap-free [`Subscription`], and publishes each event
//! to `<prefix>.events.<category>.<stream_id>` in a JetStream stream it makes sure exists
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
//!   acknowledged by JetStream; on any failure the relay backs off and starts again from the
//!   checkpoint. It never skips an event.
//! - **Exactly once in the stream, after deduplication.** A crash between the acks and the
//!   checkpoint commit repeats the batch. JetStream drops the repeats because their
//!   `Nats-Msg-Id` was seen within the stream's duplicate window (ten minutes by default, far
//!   longer than a restart takes); the relay counts them as `duplicates` in its status.
//! - **One relay at a time per name.** The checkpoint moves by compare-and-set, so a second relay
//!   of the same name (another process) notices and starts again from the stored checkpoint;
//!   both publish the same messages in the same order, and deduplication keeps one of each.
//!
//! Architecture invariant: the relay only reads the log and writes its own checkpoint; it never
//! decides anything and never changes an event.

mod checkpoint;
mod error;
pub mod message;
mod status;

pub use checkpoint::load as load_checkpoint;
pub use error::RelayError;
pub use message::EventMessage;
pub use status::{RelayFailure, RelaySnapshot, RelayState, RelayStatus};

use async_nats::jetstream;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use chrono::Utc;
use event_store::{EventStore, LogPosition, RecordedEvent, Subscription};
use futures::future::BoxFuture;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where and how the relay publishes. [`RelayConfig::new`] gives the production defaults.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The checkpoint's name in `relay_checkpoints`.
    pub name: String,
    /// Subject prefix (one token): events go to `<prefix>.events.<category>.<stream_id>`.
    pub prefix: String,
    /// The JetStream stream, created if missing.
    pub stream_name: String,
    /// How long JetStream remembers a `Nats-Msg-Id`: a batch repeated within it is dropped.
    pub duplicate_window: Duration,
    /// How long the stream keeps messages; zero keeps them until removed by hand.
    pub max_age: Duration,
    /// At most this many events per batch (publishes in flight at once).
    pub batch_size: u32,
    /// How often to look for events appended by other processes.
    pub idle_poll: Duration,
    /// The first wait after a failure.
    pub retry_initial: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
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
            batch_size: 500,
            idle_poll: Duration::from_millis(100),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
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
    store: EventStore,
    jetstream: jetstream::Context,
    config: RelayConfig,
    status: RelayStatus,
    message_ids: bool,
    before_commit: Option<BeforeCommit>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .field("status", &self.status.snapshot())
            .field("message_ids", &self.message_ids)
            .field("before_commit", &self.before_commit.is_some())
            .finish_non_exhaustive()
    }
}

/// What one step of the loop did.
enum Step {
    Published,
    ShutDown,
}

type Shutdown<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

impl Relay {
    /// A relay of `store` through `client` (connected, or connecting in the background).
    pub fn new(store: EventStore, client: async_nats::Client, config: RelayConfig) -> Self {
        Self {
            store,
            jetstream: jetstream::new(client),
            config,
            status: RelayStatus::new(),
            message_ids: true,
            before_commit: None,
        }
    }

    /// Runs `hook` after each batch's acks and before its checkpoint commit: the window in which
    /// a crash makes the batch be published again. For crash tests.
    pub fn with_before_commit(mut self, hook: BeforeCommit) -> Self {
        self.before_commit = Some(hook);
        self
    }

    /// Publishes without `Nats-Msg-Id` (and so without deduplication) when `false`. Only for
    /// tests that show what deduplication prevents: a repeated batch is then stored twice.
    pub fn with_message_ids(mut self, message_ids: bool) -> Self {
        self.message_ids = message_ids;
        self
    }

    /// The status handle; clones stay valid after the relay stops.
    pub fn status(&self) -> RelayStatus {
        self.status.clone()
    }

    /// Publishes the log until `shutdown` resolves. Failures (NATS down, the database away) are
    /// logged, put in the status and retried from the checkpoint with a backoff that doubles up
    /// to `retry_max`; they never end the relay. A batch being published when `shutdown`
    /// resolves is finished (acks awaited, checkpoint committed) first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown: Shutdown<'_> = Box::pin(shutdown);
        let _stopped = StoppedOnDrop(self.status.clone());
        if let Err(error) = self.config.validate() {
            tracing::error!(%error, "NATS relay not started");
            self.record_failure(&error, Duration::ZERO);
            return;
        }
        tracing::info!(
            stream = %self.config.stream_name,
            subjects = %self.stream_subjects(),
            "NATS relay starting"
        );
        let mut backoff = self.config.retry_initial;
        let mut ready = false;
        let mut subscription: Option<Subscription> = None;
        loop {
            match self
                .step(&mut ready, &mut subscription, &mut shutdown)
                .await
            {
                Ok(Step::Published) => backoff = self.config.retry_initial,
                Ok(Step::ShutDown) => break,
                Err(error) => {
                    // Start again from the checkpoint, and look at the stream again: it may
                    // have been deleted, or NATS restarted without it.
                    ready = false;
                    subscription = None;
                    self.record_failure(&error, backoff);
                    // Keep the lag honest while failing: the log grows, the relay does not.
                    self.record_lag().await;
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.retry_max);
                }
            }
        }
        tracing::info!(position = ?self.status.position(), "NATS relay stopped");
    }

    fn stream_subjects(&self) -> String {
        format!("{}.events.>", self.config.prefix)
    }

    /// Waits for the next batch and publishes it.
    async fn step(
        &self,
        ready: &mut bool,
        subscription: &mut Option<Subscription>,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<Step, RelayError> {
        if !*ready {
            self.ensure_stream().await?;
            *ready = true;
        }
        let subscription = match subscription {
            Some(subscription) => subscription,
            None => {
                let position = checkpoint::load(self.store.pool(), &self.config.name).await?;
                self.status.update(|s| s.position = position);
                metrics::gauge!("velka_relay_position").set(position.position as f64);
                subscription.insert(
                    self.store
                        .subscribe(position)
                        .with_batch_size(self.config.batch_size)
                        .with_idle_poll(self.config.idle_poll),
                )
            }
        };
        self.status.update(|s| {
            if s.state == RelayState::Starting {
                s.state = RelayState::Running;
            }
        });
        let batch = tokio::select! {
            biased;
            () = &mut *shutdown => return Ok(Step::ShutDown),
            batch = subscription.next_batch() => batch?,
        };
        self.publish_batch(&batch).await?;
        Ok(Step::Published)
    }

    /// Creates the stream if it does not exist; an existing one is used as it is.
    async fn ensure_stream(&self) -> Result<(), RelayError> {
        let config = StreamConfig {
            name: self.config.stream_name.clone(),
            subjects: vec![self.stream_subjects()],
            storage: StorageType::File,
            duplicate_window: self.config.duplicate_window,
            max_age: self.config.max_age,
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

    /// Publishes `batch` in order, awaits every ack, then moves the checkpoint past it.
    async fn publish_batch(&self, batch: &[RecordedEvent]) -> Result<(), RelayError> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let started = Instant::now();
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
        let published = batch.len() as u64 - duplicates;
        let expected = self.status.position();
        if let Some(hook) = &self.before_commit {
            hook(PublishedBatch {
                index: self.status.snapshot().batches_committed,
                events: batch.len(),
                first: first.log_position,
                last: last.log_position,
                duplicates,
            })
            .await;
        }
        checkpoint::advance(
            self.store.pool(),
            &self.config.name,
            expected,
            last.log_position,
        )
        .await?;

        self.status.update(|s| {
            s.state = RelayState::Running;
            s.position = last.log_position;
            s.events_published += published;
            s.duplicates += duplicates;
            s.batches_committed += 1;
            s.consecutive_failures = 0;
        });
        metrics::gauge!("velka_relay_position").set(last.log_position.position as f64);
        metrics::counter!("velka_relay_events_published_total").increment(published);
        metrics::counter!("velka_relay_duplicates_total").increment(duplicates);
        metrics::histogram!("velka_relay_batch_seconds").record(started.elapsed().as_secs_f64());
        self.record_lag().await;
        Ok(())
    }

    /// How far behind the log the relay is after a batch. A failure to measure is only logged.
    async fn record_lag(&self) {
        match self.store.recent_head().await {
            Ok(head) => {
                let lag = status::lag_between(self.status.position(), head);
                self.status.update(|s| s.lag_events = lag);
                metrics::gauge!("velka_relay_lag_events").set(lag as f64);
            }
            Err(error) => tracing::warn!(%error, "cannot measure the NATS relay's lag"),
        }
    }

    fn record_failure(&self, error: &RelayError, backoff: Duration) {
        let text = error_chain(error);
        let attempt = self.status.snapshot().consecutive_failures + 1;
        tracing::error!(
            checkpoint = ?self.status.position(),
            error = %text,
            attempt,
            retry_in_ms = backoff.as_millis() as u64,
            "NATS relay failed; it will publish again from its checkpoint"
        );
        metrics::counter!("velka_relay_failures_total").increment(1);
        self.status.update(|s| {
            s.state = RelayState::Retrying;
            s.consecutive_failures += 1;
            s.last_error = Some(RelayFailure {
                error: text,
                failed_at: Utc::now(),
            });
        });
    }
}

/// Sets the relay's state to stopped however `run` ends (a panic or an aborted task included).
struct StoppedOnDrop(RelayStatus);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.update(|s| s.state = RelayState::Stopped);
    }
}

/// The error and its sources, `: `-separated, as one line for the status.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
