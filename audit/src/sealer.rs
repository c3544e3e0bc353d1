//! The sealer: extends the hash chain over every committed event, in delivery order, after
//! commit.
//!
//! It is a follower of the log ([`event_store::follower`], checkpoint `sealer:<name>`) whose
//! effect is in the transaction that moves its checkpoint: per batch, it reads the batch's
//! events back with the columns the chain covers ([`crate::chain::EVENT_COLUMNS`]) and links one
//! entry per event into `event_chain`; the chain's head there (entries and last hash) is kept
//! with the checkpoint as its state. Entries and checkpoint always agree, and a crash neither
//! skips nor repeats an event. A failure is logged and retried from the checkpoint with a
//! doubling backoff; the sealer never skips an event.
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
use event_store::follower::{
    Applied, Batch, Categories, Checkpoint, EffectError, Follower, FollowerId, FollowerStatus,
    InTransaction, MetricNames, Runner, RunnerConfig, checkpoint, commit_in_transaction,
};
use event_store::{EventStore, LogPosition, RecordedEvent};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The kind of follower the sealer is: its checkpoint is `sealer:<name>`.
const KIND: &str = "sealer";

/// The follower a sealer named `name` runs as: whose checkpoint holds the chain's head.
pub fn follower_id(name: &str) -> FollowerId {
    FollowerId::new(KIND, name)
}

/// The `/metrics` series the loop reports for the sealer, as they have always been named (the
/// sealer reports `velka_audit_chain_sealed` and `velka_audit_chain_heads_total` itself).
const METRICS: MetricNames = MetricNames {
    label: None,
    position: Some("velka_audit_chain_position"),
    applied_total: None,
    duplicates_total: None,
    batch_seconds: None,
    failures_total: Some("velka_audit_chain_failures_total"),
    lag_events: None,
    lag_ms: None,
};

/// How the sealer runs. [`SealerConfig::default`] gives the production values.
#[derive(Clone, Debug)]
pub struct SealerConfig {
    /// The sealer's name: its checkpoint is `sealer:<name>`.
    pub name: String,
    /// Publish the head after this many newly sealed events (0: never by count).
    pub head_every_events: u64,
    /// Publish the head this long after the first newly sealed event (zero: never by time).
    pub head_interval: Duration,
    /// Subject prefix on NATS: heads go to `<prefix>.audit.chain-head`.
    pub nats_prefix: String,
    /// How it follows the log: batch size (one transaction each), polling, retries.
    pub runner: RunnerConfig,
}

impl Default for SealerConfig {
    fn default() -> Self {
        Self {
            name: "chain".to_owned(),
            head_every_events: 100_000,
            head_interval: Duration::from_secs(60),
            nats_prefix: "velka".to_owned(),
            runner: RunnerConfig {
                batch_size: 1000,
                ..RunnerConfig::default()
            },
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

/// The head as kept with the checkpoint: `{"seq": entries, "hash": hex}`.
#[derive(Serialize, Deserialize)]
struct StoredHead {
    seq: i64,
    hash: String,
}

impl ChainHead {
    /// The head a checkpoint of the sealer stands for (an empty chain before its first batch).
    pub fn of(name: &str, checkpoint: &Checkpoint) -> Result<Self, AuditError> {
        let corrupt = |what: &str| AuditError::Corrupt(format!("checkpoint {name}: {what}"));
        let Some(state) = &checkpoint.state else {
            if checkpoint.position != LogPosition::START {
                return Err(corrupt("no chain head past the start"));
            }
            return Ok(ChainHead {
                log_position: LogPosition::START,
                seq: 0,
                hash: chain::GENESIS,
            });
        };
        let stored: StoredHead =
            serde_json::from_value(state.clone()).map_err(|_| corrupt("chain head"))?;
        Ok(ChainHead {
            log_position: checkpoint.position,
            seq: stored.seq,
            hash: chain::parse_hex(&stored.hash).ok_or_else(|| corrupt("hash"))?,
        })
    }

    /// This head as a checkpoint.
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            position: self.log_position,
            state: Some(self.state()),
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!(StoredHead {
            seq: self.seq,
            hash: chain::hex(&self.hash),
        })
    }
}

/// What the sealer has done, for metrics and tests. Cheap to clone; clones share it.
#[derive(Clone, Debug)]
pub struct SealerStatus {
    follower: FollowerStatus,
    chain: Arc<Mutex<Figures>>,
}

/// The sealer's own figures, beside its follower status.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    sealed: i64,
    heads_published: u64,
}

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
        let figures = self.chain.lock().map(|f| *f).unwrap_or_default();
        let follower = self.follower.snapshot();
        SealerSnapshot {
            sealed: figures.sealed,
            heads_published: figures.heads_published,
            consecutive_failures: follower.consecutive_failures,
            last_error: follower.last_error.map(|failure| failure.error),
        }
    }

    /// The follower's status: state, position, lag, failures.
    pub fn follower(&self) -> &FollowerStatus {
        &self.follower
    }
}

/// The chain as a follower: each batch linked into `event_chain`, the head kept with the
/// checkpoint. [`Sealer`] runs it with the head's publication; [`seal`] drives it by hand.
#[derive(Debug)]
struct Chain {
    id: FollowerId,
    /// The head as the last applied batch left it. After a failure it may be ahead of the
    /// stored checkpoint; [`Follower::resume`] puts it back.
    head: Mutex<ChainHead>,
}

impl Chain {
    fn head(&self) -> Result<ChainHead, AuditError> {
        self.head
            .lock()
            .map(|head| *head)
            .map_err(|_| AuditError::Corrupt("the chain head's lock is poisoned".to_owned()))
    }

    fn set_head(&self, head: ChainHead) {
        if let Ok(mut held) = self.head.lock() {
            *held = head;
        }
    }
}

impl Follower for Chain {
    fn id(&self) -> &FollowerId {
        &self.id
    }

    fn categories(&self) -> Categories {
        Categories::All
    }

    fn resume<'a>(&'a self, checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), EffectError>> {
        Box::pin(async move {
            let head = ChainHead::of(&self.id.name, checkpoint).map_err(EffectError::new)?;
            self.set_head(head);
            Ok(())
        })
    }
}

impl InTransaction for Chain {
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>> {
        Box::pin(async move {
            let head = self.head().map_err(EffectError::new)?;
            let head = link(tx, head, batch.page())
                .await
                .map_err(EffectError::new)?;
            self.set_head(head);
            Ok(Applied {
                events: batch.page().len() as u64,
                duplicates: 0,
                state: Some(head.state()),
            })
        })
    }
}

/// The sealer as the runner sees it: the chain, and publishing its head now and then.
struct Publishing {
    chain: Chain,
    store: EventStore,
    clock: Arc<dyn Clock>,
    nats: Option<async_nats::Client>,
    config: SealerConfig,
    /// Sealed events since the last published head, and since when.
    unpublished: Mutex<Unpublished>,
    figures: Arc<Mutex<Figures>>,
}

/// Events sealed since the last published head, and since when.
#[derive(Clone, Copy, Debug, Default)]
struct Unpublished {
    events: u64,
    since: Option<Instant>,
}

impl Follower for Publishing {
    fn id(&self) -> &FollowerId {
        self.chain.id()
    }

    fn categories(&self) -> Categories {
        self.chain.categories()
    }

    fn metrics(&self) -> MetricNames {
        METRICS
    }

    fn resume<'a>(&'a self, checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), EffectError>> {
        Box::pin(async move {
            self.chain.resume(checkpoint).await?;
            let sealed = self.chain.head().map_err(EffectError::new)?.seq;
            if let Ok(mut figures) = self.figures.lock() {
                figures.sealed = sealed;
            }
            Ok(())
        })
    }

    fn tick_at(&self) -> Option<Instant> {
        let unpublished = self.unpublished.lock().map(|u| *u).unwrap_or_default();
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

    fn tick(&self) -> BoxFuture<'_, Result<(), EffectError>> {
        Box::pin(async move {
            let head = self.chain.head().map_err(EffectError::new)?;
            self.publish_head(head).await.map_err(EffectError::new)?;
            if let Ok(mut unpublished) = self.unpublished.lock() {
                *unpublished = Unpublished::default();
            }
            Ok(())
        })
    }

    fn committed(&self, batch: &Batch<'_>, _applied: &Applied) {
        let counted = batch
            .page()
            .iter()
            .filter(|event| event.stream_id != CHAIN_STREAM)
            .count() as u64;
        if counted > 0
            && let Ok(mut unpublished) = self.unpublished.lock()
        {
            unpublished.events += counted;
            unpublished.since.get_or_insert_with(Instant::now);
        }
        if let Ok(head) = self.chain.head() {
            if let Ok(mut figures) = self.figures.lock() {
                figures.sealed = head.seq;
            }
            metrics::gauge!("velka_audit_chain_sealed").set(head.seq as f64);
        }
    }
}

impl InTransaction for Publishing {
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>> {
        self.chain.apply(tx, batch)
    }
}

impl Publishing {
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
        if let Ok(mut figures) = self.figures.lock() {
            figures.heads_published += 1;
        }
        metrics::counter!("velka_audit_chain_heads_total").increment(1);
        tracing::info!(
            events = head.seq,
            position = head.log_position.position,
            hash = %statement.hash,
            "chain head published"
        );
        Ok(())
    }
}

/// Seals the log. Create it, take its [`status`](Self::status), then [`run`](Self::run) it.
pub struct Sealer {
    runner: Runner<Publishing>,
    status: SealerStatus,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let publishing = self.runner.follower();
        f.debug_struct("Sealer")
            .field("config", &publishing.config)
            .field("nats", &publishing.nats.is_some())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer of `store`; `clock` stamps the head events, `nats` (if any) hears the heads.
    pub fn new(
        store: EventStore,
        clock: Arc<dyn Clock>,
        nats: Option<async_nats::Client>,
        config: SealerConfig,
    ) -> Self {
        let figures = Arc::new(Mutex::new(Figures::default()));
        let runner_config = config.runner.clone();
        let publishing = Publishing {
            chain: Chain {
                id: follower_id(&config.name),
                head: Mutex::new(ChainHead {
                    log_position: LogPosition::START,
                    seq: 0,
                    hash: chain::GENESIS,
                }),
            },
            store: store.clone(),
            clock,
            nats,
            config,
            unpublished: Mutex::new(Unpublished::default()),
            figures: figures.clone(),
        };
        let runner = Runner::new(store, publishing, runner_config);
        let status = SealerStatus {
            follower: runner.status(),
            chain: figures,
        };
        Self { runner, status }
    }

    /// The status handle; clones stay valid after the sealer stops.
    pub fn status(&self) -> SealerStatus {
        self.status.clone()
    }

    /// Seals the log until `shutdown` resolves. Failures are logged and retried from the
    /// checkpoint with backoff; they never end the sealer.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        self.runner.run_in_transaction(shutdown).await;
    }
}

/// The chain's head at the checkpoint of the sealer named `name`, created empty the first time.
pub async fn load_checkpoint(pool: &sqlx::PgPool, name: &str) -> Result<ChainHead, AuditError> {
    let stored = checkpoint::load(pool, &follower_id(name)).await?;
    ChainHead::of(name, &stored)
}

/// Seals `batch` (in delivery order, right after `head`) in one transaction with the checkpoint
/// of the sealer named `name`, and returns the new head: one step of the sealer, by hand.
pub async fn seal(
    pool: &sqlx::PgPool,
    name: &str,
    head: ChainHead,
    batch: &[RecordedEvent],
) -> Result<ChainHead, AuditError> {
    let Some(batch) = Batch::new(batch, Categories::All) else {
        return Ok(head);
    };
    let chain = Chain {
        id: follower_id(name),
        head: Mutex::new(head),
    };
    let (sealed, _) = commit_in_transaction(pool, &chain, &head.checkpoint(), &batch).await?;
    ChainHead::of(name, &sealed)
}

/// Links one entry per event of `batch` (in delivery order, right after `head`) into
/// `event_chain` through `tx`, from the events as stored; returns the new head.
async fn link(
    tx: &mut PgConnection,
    head: ChainHead,
    batch: &[RecordedEvent],
) -> Result<ChainHead, AuditError> {
    let Some(last) = batch.last() else {
        return Ok(head);
    };
    let positions: Vec<i64> = batch.iter().map(|event| event.position).collect();
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
    Ok(ChainHead {
        log_position: last.log_position,
        seq,
        hash,
    })
}
