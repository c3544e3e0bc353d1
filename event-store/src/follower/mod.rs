//! The one log follower: what every reader of the log that must not skip an event shares.
//!
//! Four things follow the log in delivery order from a checkpoint of their own: each read-model
//! projector, each saga, the NATS relay and the audit chain sealer. They differ only in their
//! *effect*; everything else lives here, once:
//!
//! - **The checkpoint** ([`checkpoint`]): one table, `follower_checkpoints`, keyed by
//!   [`FollowerId`] (kind, name, segment), and one set of statements — create if absent, read,
//!   lock, and [`checkpoint::write`], the compare-and-set through which *every* checkpoint write
//!   goes. Nothing outside this module reads or writes that table.
//! - **The batch loop** ([`Runner`]): the gap-free [`Subscription`](crate::Subscription) from the
//!   checkpoint (served from the process's shared tail, or the database when further behind),
//!   a [`Batch`] at a time.
//! - **The skip delay**: a batch with nothing of the follower's [`Categories`] opens no
//!   transaction; the checkpoint follows at most `checkpoint_delay` later by one compare-and-set
//!   (`delay`).
//! - **Retry**: any failure (reading the log, the effect, the commit, a checkpoint moved by
//!   someone else) is logged once, recorded in the [`FollowerStatus`] and in the checkpoint row's
//!   `last_error`, and the loop starts again from the stored checkpoint after a backoff that
//!   doubles up to `retry_max`. Nothing is ever skipped.
//! - **Status and lag** ([`FollowerStatus`]): state, position, counts, the last failure, lag;
//!   the `/metrics` series each kind has always reported under ([`MetricNames`]).
//! - **Stopping** ([`Shutdown`], or any future): only waits are interrupted; a batch in hand is
//!   finished and its checkpoint committed first.
//!
//! # Two kinds of effect
//!
//! - [`InTransaction`]: the effect is rows in the same database (projectors' read models, a
//!   saga's states, timers and outbox, the chain's entries). The runner opens a transaction,
//!   moves the checkpoint in it from where it left it (a compare-and-set, which also locks the
//!   row until the commit), hands the transaction to [`InTransaction::apply`] and commits:
//!   exactly-once effects, however often the process dies.
//! - [`AfterEffect`]: the effect is outside PostgreSQL (the relay publishes to NATS and awaits
//!   every ack), so effect and checkpoint cannot commit together. [`AfterEffect::apply`] runs
//!   first; then the checkpoint moves by compare-and-set. A crash in between repeats the batch,
//!   which the effect must tolerate (JetStream drops repeats by message id).
//!
//! A follower may keep a little state with its checkpoint ([`Checkpoint::state`]; the sealer
//! keeps the chain's head there), handed back on [`Follower::resume`] and moved with every write.
//!
//! # Ownership, the fence and segments
//!
//! - **Exclusive ownership with a fencing token**: with the store's [`Leases`](crate::lease),
//!   [`Runner`] runs a follower only while its process holds the follower's lease, first
//!   [`checkpoint::claim`]ing the row with the lease's token (waiting for a batch the former
//!   owner still has open on it); every checkpoint write then names that token
//!   ([`checkpoint::write_fenced`]), so a paused former owner's late write (in-transaction or
//!   after-effect) matches no row and its transaction rolls back ([`FollowerError::Fenced`]).
//!   Without leases (tools, tests, one process) the runner runs unowned, checked by position
//!   only.
//! - **Partitioned followers**: a follower split into K segments ([`checkpoint::resegment`]) is
//!   run as K [`FollowerId`]s, each acting only on the events whose
//!   [`Follower::partition_key`] hashes to its [`Segment`] (the page's last position still
//!   moves each segment's checkpoint); each has its own row and lease.
//! - **Page-at-a-time application**: [`InTransaction::apply`] receives the whole page as a
//!   [`Batch`]; a projector that folds it in memory and writes each row once changes only its
//!   own `apply`, not the loop.

pub mod checkpoint;
mod delay;
mod error;
mod metrics;
mod runner;
mod shutdown;
mod status;

pub use checkpoint::{Checkpoint, FollowerId, Segment, StoredCheckpoint};
pub use error::{EffectError, FollowerError, error_chain};
pub use metrics::MetricNames;
pub use runner::{Runner, RunnerConfig, commit_in_transaction};
pub use shutdown::Shutdown;
pub use status::{
    FailedEvent, Failure, FollowerStatus, Lag, RunnerState, StatusSnapshot, lag_between,
};

use crate::model::{LogPosition, RecordedEvent};
use futures::future::BoxFuture;
use sqlx::PgConnection;

/// The stream categories a follower acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Categories {
    /// Every event (the relay, the sealer): a batch is never skipped.
    All,
    /// Only these (`trip` of `trip-…`); a batch with none of them is skipped without a
    /// transaction.
    Only(&'static [&'static str]),
}

impl Categories {
    /// Whether an event of `category` is the follower's.
    pub fn contains(&self, category: &str) -> bool {
        match self {
            Categories::All => true,
            Categories::Only(categories) => categories.contains(&category),
        }
    }
}

/// One page of the log as a follower gets it: every event in delivery order, and the ones that
/// are the follower's (of its categories and, for a follower split into segments, of its
/// segment). The checkpoint moves past the whole page.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    page: &'a [RecordedEvent],
    categories: Categories,
    /// Which events of the page are in the follower's segment (`None`: all of them).
    segment: Option<&'a [bool]>,
    last: LogPosition,
}

impl<'a> Batch<'a> {
    /// The page `page` for a follower of `categories`; `None` when the page is empty.
    pub fn new(page: &'a [RecordedEvent], categories: Categories) -> Option<Self> {
        let last = page.last()?.log_position;
        Some(Self {
            page,
            categories,
            segment: None,
            last,
        })
    }

    /// The page for a follower of one segment: only the events `in_segment` marks are its
    /// (one flag per event of the page).
    pub fn within(self, in_segment: &'a [bool]) -> Self {
        Self {
            segment: Some(in_segment),
            ..self
        }
    }

    /// Every event of the page, the follower's or not, in delivery order.
    pub fn page(&self) -> &'a [RecordedEvent] {
        self.page
    }

    /// The follower's events, in delivery order.
    pub fn events(&self) -> impl Iterator<Item = &'a RecordedEvent> + use<'a> {
        let categories = self.categories;
        let segment = self.segment;
        self.page
            .iter()
            .enumerate()
            .filter(move |(at, event)| {
                categories.contains(event.category())
                    && segment.is_none_or(|marks| marks.get(*at).copied().unwrap_or(false))
            })
            .map(|(_, event)| event)
    }

    /// Whether the page holds nothing of the follower's (it is skipped without a transaction).
    pub fn is_empty(&self) -> bool {
        self.events().next().is_none()
    }

    /// The last event's position: where the checkpoint goes once the page is applied.
    pub fn last(&self) -> LogPosition {
        self.last
    }
}

/// What applying a batch did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Events whose effect was made (rows written, reactions stored, messages stored).
    pub events: u64,
    /// Events whose effect was already there (a repeat after a crash: messages JetStream
    /// dropped by id, events a saga instance had already reacted to).
    pub duplicates: u64,
    /// What to keep with the checkpoint from now on (`None`: nothing).
    pub state: Option<serde_json::Value>,
}

/// What the runner needs to know of every follower, whatever its effect.
pub trait Follower: Send + Sync {
    /// Its identity: the key of its checkpoint.
    fn id(&self) -> &FollowerId;

    /// The categories it acts on.
    fn categories(&self) -> Categories;

    /// The key that places an event in one of the follower's segments (see [`Segment`]): its
    /// stream id, so each stream's events stay in order in one segment. A saga answers its
    /// instance, whose events come from several streams. `None`: in no segment (only asked of
    /// a follower split into more than one).
    fn partition_key<'e>(&self, event: &'e RecordedEvent) -> Option<std::borrow::Cow<'e, str>> {
        Some(std::borrow::Cow::Borrowed(&event.stream_id))
    }

    /// The `/metrics` series it reports under.
    fn metrics(&self) -> MetricNames {
        MetricNames::NONE
    }

    /// Called each time the runner (re)starts from the stored checkpoint, before the first
    /// batch: after a failure anything the follower holds in memory may be ahead of it. A
    /// failure is retried like a failed batch.
    fn resume<'a>(&'a self, _checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), EffectError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// When the follower next wants [`tick`](Self::tick) called, between batches.
    fn tick_at(&self) -> Option<tokio::time::Instant> {
        None
    }

    /// Work of the follower's own at times it names (the sealer publishes the chain's head). A
    /// failure is retried like a failed batch.
    fn tick(&self) -> BoxFuture<'_, Result<(), EffectError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Called after a batch's checkpoint committed.
    fn committed(&self, _batch: &Batch<'_>, _applied: &Applied) {}
}

/// A follower whose effect is rows in the same database, committed with its checkpoint.
pub trait InTransaction: Follower {
    /// Applies `batch` through `tx`, the transaction that also moves the checkpoint past it. An
    /// error rolls everything back; the runner retries from the checkpoint. Never commits, never
    /// calls out of the database.
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        batch: &'a Batch<'a>,
    ) -> BoxFuture<'a, Result<Applied, EffectError>>;

    /// Whether a batch's commit waits for the disk (the default). A follower whose whole effect
    /// is in the transaction — rows and checkpoint, which a crash rewinds together, to be
    /// applied again — may say no, and commit sooner (`synchronous_commit = off`); nothing that
    /// left the database can then depend on a commit the crash took back.
    fn commits_durably(&self) -> bool {
        true
    }
}

/// A follower whose effect is outside PostgreSQL; the checkpoint moves after it.
pub trait AfterEffect: Follower {
    /// Makes the effect of `batch`, returning only once it is durable (every ack received). The
    /// checkpoint then moves past the batch by compare-and-set; a crash in between repeats it.
    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BoxFuture<'a, Result<Applied, EffectError>>;
}
