//! The sealer: extends the hash chain over every committed event, in delivery order, after
//! commit.
//!
//! It follows the log like a projector ([`EventStore::subscribe`] from its checkpoint in
//! `audit_chain_checkpoints`) and, per batch, in one transaction: reads the batch's events back
//! with the columns the chain covers ([`crate::chain::EVENT_COLUMNS`]), links one entry per
//! event into `event_chain`, and moves its checkpoint (compare-and-set on the entry count), so
//! entries and checkpoint always agree and a crash neither skips nor repeats an event. A
//! failure is logged and retried from the checkpoint with a doubling backoff; the sealer never
//! skips an event.
//!
//! Appends never wait for it: an event is *covered* once sealed, which under normal load is
//! within milliseconds of its commit (the sealer wakes on every local append). Until then,
//! nothing proves it was not changed; `velka audit verify` reports how many events are not yet
//! sealed.
//!
//! Every `head_every_events` sealed events, or `head_interval` after the first unpublished one,
//! it appends `ChainHeadSealed` to `audit-chain` and publishes the same JSON on NATS
//! (`<prefix>.audit.chain-head`, a core publish) when it has a client. The head event is an event
//! like any other and is sealed in turn; it does not count towards the next head, so an idle
//! system publishes nothing.

use crate::chain::{self, ChainEvent, EVENT_COLUMNS, Hash};
use crate::error::AuditError;
use crate::record::{self, CHAIN_STREAM, ChainHeadSealed};
use event_store::clock::Clock;
use event_store::{EventStore, LogPosition, RecordedEvent, Subscription};
use sqlx::Row;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How the sealer runs. [`SealerConfig::default`] gives the production values.
#[derive(Clone, Debug)]
pub struct SealerConfig {
    /// The checkpoint's name in `audit_chain_checkpoints`.
    pub name: String,
    /// At most this many events per batch (one transaction).
    pub batch_size: u32,
    /// How often to look for events appended by other processes.
    pub idle_poll: Duration,
    /// Publish the head after this many newly sealed events (0: never by count).
    pub head_every_events: u64,
    /// Publish the head this long after the first newly sealed event (zero: never by time).
    pub head_interval: Duration,
    /// Subject prefix on NATS: heads go to `<prefix>.audit.chain-head`.
    pub nats_prefix: String,
    /// The first wait after a failure.
    pub retry_initial: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
}

impl Default for SealerConfig {
    fn default() -> Self {
        Self {
            name: "chain".to_owned(),
            batch_size: 1000,
            idle_poll: Duration::from_millis(100),
            head_every_events: 100_000,
            head_interval: Duration::from_secs(60),
            nats_prefix: "velka".to_owned(),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// The chain's head as the sealer left it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The last sealed event, in delivery order.
    pub log_position: LogPosition,
    /// Entries in the chain.
    pub seq: i64,
    /// The last entry's hash ([`chain::GENESIS`] when empty).
    pub hash: Hash,
}

/// What the sealer has done, for metrics and tests. Cheap to clone; clones share it.
#[derive(Clone, Debug, Default)]
pub struct SealerStatus(Arc<Mutex<SealerSnapshot>>);

/// A copy of the sealer's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealerSnapshot {
    /// Entries in the chain, as last committed.
    pub sealed: i64,
    /// Heads published since start.
    pub heads_published: u64,
    /// Failures in a row (0 when the last attempt succeeded).
    pub consecutive_failures: u32,
    /// The last failure, as one line.
    pub last_error: Option<String>,
}

impl SealerStatus {
    /// The current status.
    pub fn snapshot(&self) -> SealerSnapshot {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut SealerSnapshot)) {
        if let Ok(mut snapshot) = self.0.lock() {
            f(&mut snapshot);
        }
    }
}

/// Seals the log. Create it, take its [`status`](Self::status), then [`run`](Self::run) it.
pub struct Sealer {
    store: EventStore,
    clock: Arc<dyn Clock>,
    nats: Option<async_nats::Client>,
    config: SealerConfig,
    status: SealerStatus,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("config", &self.config)
            .field("nats", &self.nats.is_some())
            .finish_non_exhaustive()
    }
}

/// The loop's state between steps; dropped back to the checkpoint on a failure.
struct Following {
    subscription: Subscription,
    head: ChainHead,
}

/// Events sealed since the last published head, and since when.
struct Unpublished {
    events: u64,
    since: Option<Instant>,
}

type Shutdown<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

enum Step {
    Sealed,
    Published,
    ShutDown,
}

impl Sealer {
    /// A sealer of `store`; `clock` stamps the head events, `nats` (if any) hears the heads.
    pub fn new(
        store: EventStore,
        clock: Arc<dyn Clock>,
        nats: Option<async_nats::Client>,
        config: SealerConfig,
    ) -> Self {
        Self {
            store,
            clock,
            nats,
            config,
            status: SealerStatus::default(),
        }
    }

    /// The status handle; clones stay valid after the sealer stops.
    pub fn status(&self) -> SealerStatus {
        self.status.clone()
    }

    /// Seals the log until `shutdown` resolves. Failures are logged and retried from the
    /// checkpoint with backoff; they never end the sealer.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown: Shutdown<'_> = Box::pin(shutdown);
        tracing::info!(name = %self.config.name, "chain sealer starting");
        let mut backoff = self.config.retry_initial;
        let mut following: Option<Following> = None;
        let mut unpublished = Unpublished {
            events: 0,
            since: None,
        };
        loop {
            match self
                .step(&mut following, &mut unpublished, &mut shutdown)
                .await
            {
                Ok(Step::Sealed | Step::Published) => backoff = self.config.retry_initial,
                Ok(Step::ShutDown) => break,
                Err(error) => {
                    following = None;
                    self.record_failure(&error, backoff);
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.retry_max);
                }
            }
        }
        tracing::info!(
            sealed = self.status.snapshot().sealed,
            "chain sealer stopped"
        );
    }

    fn head_due(&self, unpublished: &Unpublished) -> Option<Instant> {
        let since = unpublished.since?;
        if self.config.head_every_events > 0 && unpublished.events >= self.config.head_every_events
        {
            return Some(since);
        }
        if self.config.head_interval.is_zero() {
            return None;
        }
        Some(since + self.config.head_interval)
    }

    async fn step(
        &self,
        following: &mut Option<Following>,
        unpublished: &mut Unpublished,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<Step, AuditError> {
        let state = match following {
            Some(state) => state,
            None => {
                let head = load_checkpoint(self.store.pool(), &self.config.name).await?;
                self.status.update(|s| s.sealed = head.seq);
                following.insert(Following {
                    subscription: self
                        .store
                        .subscribe(head.log_position)
                        .with_batch_size(self.config.batch_size)
                        .with_idle_poll(self.config.idle_poll),
                    head,
                })
            }
        };
        let due = self.head_due(unpublished);
        if due.is_some_and(|due| due <= Instant::now()) {
            self.publish_head(state.head).await?;
            *unpublished = Unpublished {
                events: 0,
                since: None,
            };
            return Ok(Step::Published);
        }
        let batch = tokio::select! {
            biased;
            () = &mut *shutdown => return Ok(Step::ShutDown),
            batch = state.subscription.next_batch() => batch?,
            () = sleep_until(due) => return Ok(Step::Sealed),
        };
        state.head = seal(self.store.pool(), &self.config.name, state.head, &batch).await?;
        let counted = batch
            .iter()
            .filter(|event| event.stream_id != CHAIN_STREAM)
            .count() as u64;
        if counted > 0 {
            unpublished.events += counted;
            unpublished.since.get_or_insert_with(Instant::now);
        }
        let sealed = state.head.seq;
        self.status.update(|s| {
            s.sealed = sealed;
            s.consecutive_failures = 0;
        });
        metrics::gauge!("velka_audit_chain_sealed").set(sealed as f64);
        metrics::gauge!("velka_audit_chain_position").set(state.head.log_position.position as f64);
        Ok(Step::Sealed)
    }

    /// Appends `ChainHeadSealed` for `head`, then tells NATS (best effort: the event is the
    /// durable statement).
    async fn publish_head(&self, head: ChainHead) -> Result<(), AuditError> {
        let statement = ChainHeadSealed {
            events: head.seq,
            position: head.log_position.position,
            hash: chain::hex(&head.hash),
        };
        let data = serde_json::to_value(&statement)?;
        record::append(
            &self.store,
            CHAIN_STREAM,
            ChainHeadSealed::TYPE,
            data,
            "service:audit-sealer",
            self.clock.now(),
        )
        .await?;
        if let Some(client) = &self.nats {
            let subject = format!("{}.audit.chain-head", self.config.nats_prefix);
            let payload = serde_json::to_vec(&statement)?;
            if let Err(error) = client.publish(subject.clone(), payload.into()).await {
                tracing::warn!(%error, subject, "publishing the chain head on NATS failed");
            }
        }
        self.status.update(|s| s.heads_published += 1);
        metrics::counter!("velka_audit_chain_heads_total").increment(1);
        tracing::info!(
            events = head.seq,
            position = head.log_position.position,
            hash = %statement.hash,
            "chain head published"
        );
        Ok(())
    }

    fn record_failure(&self, error: &AuditError, backoff: Duration) {
        let text = error.to_string();
        tracing::error!(
            error = %text,
            retry_in_ms = backoff.as_millis() as u64,
            "chain sealer failed; it will seal again from its checkpoint"
        );
        metrics::counter!("velka_audit_chain_failures_total").increment(1);
        self.status.update(|s| {
            s.consecutive_failures += 1;
            s.last_error = Some(text);
        });
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The checkpoint named `name`, created empty the first time.
pub async fn load_checkpoint(pool: &sqlx::PgPool, name: &str) -> Result<ChainHead, AuditError> {
    sqlx::query(
        "INSERT INTO audit_chain_checkpoints (name, transaction_id, position, seq, hash, updated_at)
         VALUES ($1, '0', 0, 0, $2, now())
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(chain::GENESIS.as_slice())
    .execute(pool)
    .await?;
    let row = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, position, seq, hash
         FROM audit_chain_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    let transaction_id: i64 = row.try_get("transaction_id")?;
    let hash: Vec<u8> = row.try_get("hash")?;
    Ok(ChainHead {
        log_position: LogPosition {
            transaction_id: u64::try_from(transaction_id)
                .map_err(|_| AuditError::Corrupt(format!("checkpoint {name}: transaction id")))?,
            position: row.try_get("position")?,
        },
        seq: row.try_get("seq")?,
        hash: chain::from_bytes(&hash)
            .ok_or_else(|| AuditError::Corrupt(format!("checkpoint {name}: hash")))?,
    })
}

/// Seals `batch` (in delivery order, right after `head`) in one transaction and returns the new
/// head.
pub async fn seal(
    pool: &sqlx::PgPool,
    name: &str,
    head: ChainHead,
    batch: &[RecordedEvent],
) -> Result<ChainHead, AuditError> {
    let Some(last) = batch.last() else {
        return Ok(head);
    };
    let positions: Vec<i64> = batch.iter().map(|event| event.position).collect();
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.position = ANY($1)"
    ))
    .bind(&positions)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_position = HashMap::with_capacity(rows.len());
    for row in &rows {
        let event = ChainEvent::from_row(row, 0)?;
        by_position.insert(event.position, event);
    }
    let mut seqs = Vec::with_capacity(batch.len());
    let mut event_ids = Vec::with_capacity(batch.len());
    let mut hashes: Vec<Vec<u8>> = Vec::with_capacity(batch.len());
    let mut previous_hashes: Vec<Vec<u8>> = Vec::with_capacity(batch.len());
    let mut hash = head.hash;
    let mut seq = head.seq;
    for event in batch {
        let stored = by_position
            .get(&event.position)
            .ok_or(AuditError::Vanished(event.log_position))?;
        let next = chain::link(&hash, &stored.digest());
        seq += 1;
        seqs.push(seq);
        event_ids.push(stored.event_id);
        previous_hashes.push(hash.to_vec());
        hashes.push(next.to_vec());
        hash = next;
    }
    sqlx::query(
        "INSERT INTO event_chain (seq, position, event_id, hash, prev_hash, sealed_at)
         SELECT s, p, e, h, ph, now()
         FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bytea[], $5::bytea[])
              AS t(s, p, e, h, ph)",
    )
    .bind(&seqs)
    .bind(&positions)
    .bind(&event_ids)
    .bind(&hashes)
    .bind(&previous_hashes)
    .execute(&mut *tx)
    .await?;
    let moved = sqlx::query(
        "UPDATE audit_chain_checkpoints
         SET transaction_id = $3::text::xid8, position = $4, seq = $5, hash = $6, updated_at = now()
         WHERE name = $1 AND seq = $2",
    )
    .bind(name)
    .bind(head.seq)
    .bind(last.log_position.transaction_id.to_string())
    .bind(last.log_position.position)
    .bind(seq)
    .bind(hash.as_slice())
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(AuditError::CheckpointMoved {
            name: name.to_owned(),
            expected: head.seq,
        });
    }
    tx.commit().await?;
    Ok(ChainHead {
        log_position: last.log_position,
        seq,
        hash,
    })
}
