//! The event store: Velka's single source of truth, on PostgreSQL.
//!
//! - [`EventStore::append`] writes events to one or more streams in one transaction, checking each
//!   stream's expected version, taking and releasing exclusive claims, and recording the command's
//!   result for idempotency — one round trip, one PL/pgSQL call (`append_events`); appends
//!   made while others are in flight share one transaction (group commit, `group`).
//! - [`EventStore::read_stream`], [`EventStore::read_streams`] and
//!   [`EventStore::read_streams_after`] load aggregates; [`EventStore::snapshot`] and
//!   [`EventStore::remember`] keep the states folded from them, so a load folds only what is new.
//! - [`EventStore::read_log`] reads the whole log in *delivery order*, never skipping an event
//!   that commits late (see the `log` module), and [`Subscription`] follows it live.
//! - [`follower`]: the one log follower that projectors, sagas, the NATS relay and the audit
//!   sealer run — checkpoints (one table), the batch loop, the skip delay, retry, status and
//!   stopping; each of them supplies only its effect.
//!
//! Architecture invariant: knows nothing of the domain; events are `(type, version, JSON)`.

mod announce;
mod append;
mod bulk;
mod cache;
pub mod clock;
pub mod codec;
pub mod copy;
pub mod crash;
pub mod database;
mod error;
pub mod follower;
mod group;
mod idempotency;
pub mod lease;
mod log;
mod model;
mod quiet;
pub mod retry;
mod states;
mod subscription;
mod tail;
#[cfg(feature = "testing")]
pub mod testing;

pub use append::AppendOutcome;
pub use bulk::BulkPages;
pub use cache::DEFAULT_CAPACITY as DEFAULT_STREAM_CACHE_EVENTS;
pub use codec::EventCodec;
pub use error::{AppendError, StoreError};
pub use group::{
    DEFAULT_MAX_GROUP as DEFAULT_APPEND_GROUP, DEFAULT_WRITERS as DEFAULT_APPEND_WRITERS,
};
pub use idempotency::StoredResult;
pub use log::{EventHeader, LogPage};
pub use model::{
    AppendRequest, Claims, CommandResult, ExpectedVersion, LogPosition, Metadata, NewEvent,
    RecordedEvent, StreamWrite,
};
pub use quiet::Quiet;
pub use states::{DEFAULT_CAPACITY as DEFAULT_STATE_CACHE_STREAMS, Snapshot};
pub use subscription::Subscription;

use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::watch;

/// The migrations of every crate, in one history (sqlx keeps one per database).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A handle on the event store. Cheap to clone; all clones share the pool and the wake-up signal.
#[derive(Clone, Debug)]
pub struct EventStore {
    pool: PgPool,
    /// Bumped after every successful append in this process, so local subscribers wake at once
    /// instead of waiting for their next poll.
    appended: Arc<watch::Sender<u64>>,
    /// Tells other processes about this process's appends (see `announce`).
    announcer: Arc<announce::Announcer>,
    /// Streams already read, so a load reads only what was appended since (see `cache`).
    cache: Arc<cache::StreamCache>,
    /// States folded from streams, so a load folds only what was appended since (see
    /// `states`).
    states: Arc<states::StateCache>,
    /// The live end of the log, read once and shared by every subscription (see `tail`). It
    /// holds events as stored; each subscription decodes them with its own store's codec.
    tail: Arc<tail::Tail>,
    /// This process's quiet transactions in flight, which its log readers need not wait for
    /// (see `quiet`).
    quiet: Arc<quiet::QuietSet>,
    /// The leases of this process, when it shares the followers with others: each follower
    /// of this store then runs only while this process holds its lease (see `lease`).
    leases: Option<lease::Leases>,
    /// Transforms data on append and read (personal data encryption), if installed.
    codec: Option<Arc<dyn EventCodec>>,
    /// Appends made while others are in flight share a transaction (see `group`); `None`:
    /// each append is its own transaction.
    group: Option<Arc<group::GroupCommit>>,
    /// How often readers look for new events when nothing woke them: a local append wakes them
    /// at once, another process's append through `LISTEN` (see `tail`); the poll is the net
    /// under both.
    idle_poll: std::time::Duration,
}

impl EventStore {
    /// A store over an already migrated database.
    pub fn new(pool: PgPool) -> Self {
        Self::with_stream_cache(pool, cache::DEFAULT_CAPACITY)
    }

    /// A store that keeps up to `events` events of the streams it reads in memory (0: none),
    /// so loading a stream again reads only what was appended since.
    pub fn with_stream_cache(pool: PgPool, events: usize) -> Self {
        let (appended, _) = watch::channel(0);
        Self {
            pool,
            appended: Arc::new(appended),
            announcer: Arc::new(announce::Announcer::new()),
            cache: Arc::new(cache::StreamCache::new(events)),
            states: Arc::new(states::StateCache::new(states::DEFAULT_CAPACITY)),
            tail: Arc::new(tail::Tail::new()),
            quiet: Arc::new(quiet::QuietSet::default()),
            leases: None,
            codec: None,
            group: Some(Arc::new(group::GroupCommit::new(
                usize::from(group::DEFAULT_MAX_GROUP),
                usize::from(group::DEFAULT_WRITERS),
            ))),
            idle_poll: tail::DEFAULT_IDLE_POLL,
        }
    }

    /// This store's readers looking for new events every `idle_poll` when nothing woke them,
    /// instead of the default 50 ms.
    pub fn with_idle_poll(mut self, idle_poll: std::time::Duration) -> Self {
        self.idle_poll = idle_poll;
        self
    }

    /// This store writing appends made while `writers` others are in flight together, up to
    /// `max_group` in one transaction (see [`append`](Self::append)); `max_group` 1: every
    /// append in a transaction of its own. Clones made afterwards share the queue.
    pub fn with_group_commit(mut self, max_group: usize, writers: usize) -> Self {
        self.group = (max_group > 1).then(|| Arc::new(group::GroupCommit::new(max_group, writers)));
        self
    }

    /// This store keeping the folded state of up to `streams` streams (0: none); see
    /// [`snapshot`](Self::snapshot). Clones made afterwards share the cache.
    pub fn with_state_cache(mut self, streams: usize) -> Self {
        self.states = Arc::new(states::StateCache::new(streams));
        self
    }

    /// How many appends are queued for the next group commit, not yet being written (0 when
    /// group commit is off).
    pub fn appends_waiting(&self) -> usize {
        self.group.as_ref().map_or(0, |group| group.waiting())
    }

    /// The state a caller last [`remember`](Self::remember)ed for `stream_id`, if any: fold
    /// the events after its version onto it ([`read_streams_after`](Self::read_streams_after))
    /// instead of the whole stream.
    pub fn snapshot(&self, stream_id: &str) -> Option<Snapshot> {
        self.states.get(stream_id)
    }

    /// Remembers a state folded from the first `snapshot.version` committed events of
    /// `stream_id` (only such a state: one folded from anything else would be handed out as
    /// the truth). Kept unless a later one of the same type is.
    pub fn remember(&self, stream_id: &str, snapshot: Snapshot) {
        self.states.put(stream_id, snapshot);
    }

    /// This store with `codec` applied to every append and every event read (see `codec`).
    /// Clones made afterwards share it; a store without one reads the data as stored.
    pub fn with_codec(mut self, codec: Arc<dyn EventCodec>) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Decodes events just read, if a codec is installed.
    pub(crate) async fn decoded(
        &self,
        mut events: Vec<RecordedEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if let Some(codec) = &self.codec {
            codec.decode(&mut events).await?;
        }
        Ok(events)
    }

    /// Marks the transaction open on `tx` as *quiet*: it will append no events (the database
    /// refuses it if it tries), so this process's log readers do not wait for it to end (see
    /// the `quiet` module). For followers' batches; call it first thing in the transaction and
    /// hold the returned registration until the transaction has ended.
    pub async fn quiet(&self, tx: &mut sqlx::PgConnection) -> Result<Quiet, StoreError> {
        quiet::enter(tx, &self.quiet).await
    }

    /// This store's followers each running only while `leases` holds its lease, fenced by its
    /// token (see [`lease`] and [`follower`]); clones made afterwards share them. Without, a
    /// follower runs whenever it is started: one process per database.
    pub fn with_leases(mut self, leases: lease::Leases) -> Self {
        self.leases = Some(leases);
        self
    }

    /// The leases its followers run under, if any.
    pub fn leases(&self) -> Option<&lease::Leases> {
        self.leases.as_ref()
    }

    /// This store over another pool of the same database, sharing everything else (the tail,
    /// the caches, the quiet set, the wake-ups): for work run on a runtime of its own, whose
    /// connections should be driven by that runtime.
    pub fn with_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            ..self.clone()
        }
    }

    /// The connection pool, for crates that keep their own tables in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn wake_subscribers(&self) {
        self.announcer.announce(&self.pool);
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }
}
