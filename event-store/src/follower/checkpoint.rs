//! Checkpoints: where each follower is in the log, in one table (`follower_checkpoints`,
//! `migrations/*_event_store_follower_checkpoints.sql`) and one set of statements.
//!
//! A checkpoint is a [`LogPosition`] in delivery order: every event up to it has had the
//! follower's effect. It is created at [`LogPosition::START`] the first time it is asked for,
//! and from then on moved only by [`write()`], a compare-and-set from the position the writer
//! last saw: a write from a runner that has been overtaken (another runner of the same follower,
//! a rebuild's switch, a manual reset) changes nothing and the writer finds out.
//!
//! When several processes share the followers, each checkpoint is owned by the holder of its
//! lease ([`crate::lease`]). The new owner [`claim`]s the row with its lease's token (the
//! *fence*), and every write of an owner names its token: a former owner that lost its lease —
//! paused, cut off — writes nothing more, whatever it believes.

use crate::error::StoreError;
use crate::model::LogPosition;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, PgPool, Row};

/// A hash segment of a follower's streams: segment `index` of `count` holds the events whose
/// partition key (the stream id, or a saga's instance) hashes to `index` modulo `count`. Most
/// followers are [`Segment::WHOLE`], stored as segment 0 of 1; how many a follower has is kept
/// with its checkpoints ([`segments`], [`resegment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    index: u32,
    count: u32,
}

impl Segment {
    /// All of the follower's streams.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// Segment `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Segment> {
        (index < count).then_some(Segment { index, count })
    }

    /// Every segment of `count` (at least one).
    pub fn all(count: u32) -> impl Iterator<Item = Segment> {
        let count = count.max(1);
        (0..count).map(move |index| Segment { index, count })
    }

    /// Whether an event with partition key `key` is in this segment. The hash (64-bit FNV-1a of
    /// the key's bytes) is fixed here for good: every process and every version must agree.
    pub fn contains(&self, key: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash % u64::from(self.count) == u64::from(self.index)
    }

    /// Which segment this is, from 0.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Into how many segments the follower's streams are split.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// Whose checkpoint: a follower's kind (`projector`, `saga`, `relay`, `sealer`), its name within
/// the kind, and its segment. Shown as `kind:name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FollowerId {
    /// The kind of follower; each kind names its own followers.
    pub kind: &'static str,
    /// Its name, stable across restarts: renaming it starts it from the beginning of the log.
    pub name: String,
    /// Which of its segments.
    pub segment: Segment,
}

impl FollowerId {
    /// The whole of follower `name` of `kind`.
    pub fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Self::segment(kind, name, Segment::WHOLE)
    }

    /// Segment `segment` of follower `name` of `kind`.
    pub fn segment(kind: &'static str, name: impl Into<String>, segment: Segment) -> Self {
        Self {
            kind,
            name: name.into(),
            segment,
        }
    }
}

impl FollowerId {
    /// The name of its lease when processes share the followers (see [`crate::lease`]):
    /// `follower:<kind>:<name>#<segment>/<segments>`.
    pub fn lease_name(&self) -> String {
        format!(
            "follower:{}:{}#{}/{}",
            self.kind, self.name, self.segment.index, self.segment.count
        )
    }
}

impl std::fmt::Display for FollowerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)?;
        if self.segment != Segment::WHOLE {
            write!(f, "#{}/{}", self.segment.index, self.segment.count)?;
        }
        Ok(())
    }
}

/// A checkpoint: the position, and what the follower keeps with it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Every event up to here has had the follower's effect.
    pub position: LogPosition,
    /// The follower's own note about that point, moved with it (the sealer: the chain's head
    /// there); `None` for most.
    pub state: Option<Value>,
}

impl Checkpoint {
    /// Before the first event, with nothing kept.
    pub const START: Checkpoint = Checkpoint {
        position: LogPosition::START,
        state: None,
    };
}

/// A checkpoint row as stored, for the admin views and for readers that wait on a follower.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCheckpoint {
    /// The follower's name (within its kind).
    pub name: String,
    /// Its segment.
    pub segment: Segment,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
    /// Why the follower's last attempt failed; cleared by its next write.
    pub last_error: Option<String>,
    /// When.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The whole row, for readers.
const READ: &str = "SELECT name, segment, segments,
        transaction_id::text::bigint AS transaction_id, position, state, updated_at, last_error,
        last_error_at
    FROM follower_checkpoints WHERE kind = $1 AND name = $2 AND segment = $3";

/// Every row of a kind, for the admin views.
const LIST: &str = "SELECT name, segment, segments,
        transaction_id::text::bigint AS transaction_id, position, state, updated_at, last_error,
        last_error_at
    FROM follower_checkpoints WHERE kind = $1 ORDER BY name, segment";

/// Only what a runner compares, once per batch.
const LOCK: &str = "SELECT transaction_id::text::bigint AS transaction_id, position, state
    FROM follower_checkpoints WHERE kind = $1 AND name = $2 AND segment = $3 FOR UPDATE";

/// The checkpoint of `id`, created at the start the first time.
pub async fn load(pool: &PgPool, id: &FollowerId) -> Result<Checkpoint, StoreError> {
    sqlx::query(
        "INSERT INTO follower_checkpoints
             (kind, name, segment, segments, transaction_id, position, updated_at)
         VALUES ($1, $2, $3, $4, '0', 0, now())
         ON CONFLICT (kind, name, segment) DO NOTHING",
    )
    .bind(id.kind)
    .bind(&id.name)
    .bind(segment_index(id)?)
    .bind(segment_count(id)?)
    .execute(pool)
    .await?;
    // Deleted between the two statements (a manual reset): start over.
    Ok(read(pool, id)
        .await?
        .map_or(Checkpoint::START, |stored| stored.checkpoint))
}

/// The checkpoint of `id` as stored, if it has one; never creates it.
pub async fn read<'c>(
    executor: impl PgExecutor<'c>,
    id: &FollowerId,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let row = sqlx::query(READ)
        .bind(id.kind)
        .bind(&id.name)
        .bind(segment_index(id)?)
        .fetch_optional(executor)
        .await?;
    row.map(|row| decode(id.kind, &row)).transpose()
}

/// The position of `id` as stored ([`LogPosition::START`] if it has none): how far a follower
/// has certainly got, for a reader waiting on it. For a follower split into segments, the
/// position of the one furthest behind: every event up to it has had its effect in every
/// segment.
pub async fn position(pool: &PgPool, id: &FollowerId) -> Result<LogPosition, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, position FROM follower_checkpoints
         WHERE kind = $1 AND name = $2 ORDER BY transaction_id, position LIMIT 1",
    )
    .bind(id.kind)
    .bind(&id.name)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(LogPosition::START),
        Some((transaction_id, position)) => Ok(LogPosition {
            transaction_id: u64::try_from(transaction_id)
                .map_err(|_| corrupt(id, "negative transaction id"))?,
            position,
        }),
    }
}

/// Into how many segments follower `name` of `kind` is split: as its checkpoints say (1 when it
/// has none yet). Every process runs that many, whatever it was started with.
pub async fn segments(pool: &PgPool, kind: &str, name: &str) -> Result<u32, StoreError> {
    let count: Option<i32> = sqlx::query_scalar(
        "SELECT max(segments) FROM follower_checkpoints WHERE kind = $1 AND name = $2",
    )
    .bind(kind)
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(count
        .and_then(|count| u32::try_from(count).ok())
        .unwrap_or(1)
        .max(1))
}

/// Why a follower's segments could not be changed. Nothing was.
#[derive(Debug, thiserror::Error)]
pub enum ResegmentError {
    /// A process holds one of its leases: stop every worker running it first.
    #[error(
        "{follower} is running ({holder} holds {lease}): stop the workers that run it, then \
         change its segments"
    )]
    Running {
        follower: String,
        lease: String,
        holder: String,
    },
    /// Its segments are at different positions: let them catch up with no new events coming
    /// (stop the API nodes, or wait for a quiet moment), then try again.
    #[error(
        "the segments of {follower} are at different positions ({positions}): let them reach \
         the same one with no events coming in (stop the API nodes first), then try again"
    )]
    Apart { follower: String, positions: String },
    /// It keeps state with its checkpoint, which cannot be split.
    #[error("{follower} keeps state with its checkpoint and cannot be split into segments")]
    Stateful { follower: String },
    /// The count is out of range.
    #[error("a follower has 1 to 256 segments, not {0}")]
    Count(u32),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ResegmentError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::from(error))
    }
}

/// Splits follower `name` of `kind` into `count` segments (1: whole again), each starting where
/// every old one stands — so only while the follower is stopped everywhere (no live lease) and
/// its segments agree (no events came in since they caught up). Returns that position.
pub async fn resegment(
    pool: &PgPool,
    kind: &'static str,
    name: &str,
    count: u32,
) -> Result<LogPosition, ResegmentError> {
    let follower = format!("{kind}:{name}");
    if !(1..=256).contains(&count) {
        return Err(ResegmentError::Count(count));
    }
    let mut tx = pool.begin().await?;
    let rows: Vec<(i64, i64, Option<Value>, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, position, state, fence FROM follower_checkpoints
         WHERE kind = $1 AND name = $2 ORDER BY segment FOR UPDATE",
    )
    .bind(kind)
    .bind(name)
    .fetch_all(&mut *tx)
    .await?;
    let prefix = format!("follower:{kind}:{name}#");
    let live: Option<(String, String)> = sqlx::query_as(
        "SELECT name, holder FROM leases
         WHERE starts_with(name, $1) AND expires_at > clock_timestamp() LIMIT 1",
    )
    .bind(&prefix)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((lease, holder)) = live {
        return Err(ResegmentError::Running {
            follower,
            lease,
            holder,
        });
    }
    if rows.iter().any(|(_, _, state, _)| state.is_some()) {
        return Err(ResegmentError::Stateful { follower });
    }
    let mut positions: Vec<(i64, i64)> = rows.iter().map(|(t, p, _, _)| (*t, *p)).collect();
    positions.dedup();
    if positions.len() > 1 {
        return Err(ResegmentError::Apart {
            follower,
            positions: format!("{positions:?}"),
        });
    }
    let (transaction_id, position) = positions.first().copied().unwrap_or((0, 0));
    let fence = rows
        .iter()
        .map(|(_, _, _, fence)| *fence)
        .max()
        .unwrap_or(0);
    sqlx::query("DELETE FROM follower_checkpoints WHERE kind = $1 AND name = $2")
        .bind(kind)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let count_i32 = i32::try_from(count).map_err(|_| ResegmentError::Count(count))?;
    sqlx::query(
        "INSERT INTO follower_checkpoints
             (kind, name, segment, segments, transaction_id, position, updated_at, fence)
         SELECT $1, $2, segment, $3, $4::text::xid8, $5, now(), $6
         FROM generate_series(0, $3 - 1) AS segment",
    )
    .bind(kind)
    .bind(name)
    .bind(count_i32)
    .bind(transaction_id.to_string())
    .bind(position)
    .bind(fence)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(LogPosition {
        transaction_id: u64::try_from(transaction_id).unwrap_or_default(),
        position,
    })
}

/// Every checkpoint of `kind`, by name and segment, for the admin views.
pub async fn list(pool: &PgPool, kind: &'static str) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let rows = sqlx::query(LIST).bind(kind).fetch_all(pool).await?;
    rows.iter().map(|row| decode(kind, row)).collect()
}

/// Locks the checkpoint row of `id` for the rest of `tx` and returns it (`None` if it has
/// none). Two runners of one follower thus take turns, the second seeing that the first moved
/// it; a rebuild's switch holds it to keep the live runner out.
pub async fn lock(
    tx: &mut PgConnection,
    id: &FollowerId,
) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(LOCK)
        .bind(id.kind)
        .bind(&id.name)
        .bind(segment_index(id)?)
        .fetch_optional(&mut *tx)
        .await?;
    row.map(|row| decode_checkpoint(id, &row)).transpose()
}

/// Moves the checkpoint of `id` from `from` to `to`, clearing its last error — if it is still
/// at `from`; `false` (and nothing changed) when someone else moved it. For tools that move a
/// checkpoint by hand (a rebuild's switch, which locks the row first): they name no owner, so
/// no fence stops them. A runner's writes go through [`write_fenced`].
pub async fn write<'c>(
    executor: impl PgExecutor<'c>,
    id: &FollowerId,
    from: LogPosition,
    to: &Checkpoint,
) -> Result<bool, StoreError> {
    Ok(write_naming(executor, id, from, to, None).await?.is_some())
}

/// [`write()`] by the owner holding fencing token `fence` (see [`claim`]): refused, too, if a
/// newer owner has claimed the checkpoint since. `None`: an unowned runner (one process, or a
/// test), checked by position only.
pub async fn write_fenced<'c>(
    executor: impl PgExecutor<'c>,
    id: &FollowerId,
    from: LogPosition,
    to: &Checkpoint,
    fence: Option<i64>,
) -> Result<bool, StoreError> {
    Ok(write_naming(executor, id, from, to, fence).await?.is_some())
}

/// [`write_fenced`], returning the id of the transaction that wrote (`None`: nothing changed).
/// In a transaction, the write also locks the row until the commit, so a batch can move its
/// checkpoint first and be alone with it from then on — a new owner's [`claim`] waits for it.
/// The only statement that moves a checkpoint: every write of every follower comes here.
pub(crate) async fn write_naming<'c>(
    executor: impl PgExecutor<'c>,
    id: &FollowerId,
    from: LogPosition,
    to: &Checkpoint,
    fence: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE follower_checkpoints
         SET transaction_id = $6::text::xid8, position = $7, state = $8, updated_at = now(),
             last_error = NULL, last_error_at = NULL
         WHERE kind = $1 AND name = $2 AND segment = $3
           AND transaction_id = $4::text::xid8 AND position = $5
           AND ($9::bigint IS NULL OR fence = $9)
         RETURNING pg_current_xact_id()::text::bigint",
    )
    .bind(id.kind)
    .bind(&id.name)
    .bind(segment_index(id)?)
    .bind(from.transaction_id.to_string())
    .bind(from.position)
    .bind(to.position.transaction_id.to_string())
    .bind(to.position.position)
    .bind(&to.state)
    .bind(fence)
    .fetch_optional(executor)
    .await?)
}

/// Claims the checkpoint of `id` for the owner that took its lease with token `fence`, and
/// returns it (created at the start the first time): raises the row's fence to `fence`, so every
/// write of an older owner is refused from now on. Waits for a batch the former owner still has
/// open on the row (its transaction is ended by the database within
/// `idle_in_transaction_session_timeout` if that owner is paused). `None` when a newer owner
/// has already claimed it: this one lost its lease meanwhile.
pub async fn claim(
    pool: &PgPool,
    id: &FollowerId,
    fence: i64,
) -> Result<Option<Checkpoint>, StoreError> {
    sqlx::query(
        "INSERT INTO follower_checkpoints
             (kind, name, segment, segments, transaction_id, position, updated_at, fence)
         VALUES ($1, $2, $3, $4, '0', 0, now(), $5)
         ON CONFLICT (kind, name, segment) DO NOTHING",
    )
    .bind(id.kind)
    .bind(&id.name)
    .bind(segment_index(id)?)
    .bind(segment_count(id)?)
    .bind(fence)
    .execute(pool)
    .await?;
    let row = sqlx::query(
        "UPDATE follower_checkpoints SET fence = $4
         WHERE kind = $1 AND name = $2 AND segment = $3 AND fence <= $4
         RETURNING transaction_id::text::bigint AS transaction_id, position, state",
    )
    .bind(id.kind)
    .bind(&id.name)
    .bind(segment_index(id)?)
    .bind(fence)
    .fetch_optional(pool)
    .await?;
    row.map(|row| decode_checkpoint(id, &row)).transpose()
}

/// The fence of `id`'s checkpoint: the token of the newest owner that claimed it (0: never
/// claimed), to tell a fenced write from a moved checkpoint.
pub async fn fence<'c>(
    executor: impl PgExecutor<'c>,
    id: &FollowerId,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT fence FROM follower_checkpoints WHERE kind = $1 AND name = $2 AND segment = $3",
    )
    .bind(id.kind)
    .bind(&id.name)
    .bind(segment_index(id)?)
    .fetch_optional(executor)
    .await?)
}

/// Notes why the follower's last attempt failed, outside its rolled-back transaction (the
/// admin view shows it until the next write clears it).
pub(crate) async fn record_error(
    pool: &PgPool,
    id: &FollowerId,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE follower_checkpoints SET last_error = $4, last_error_at = now()
         WHERE kind = $1 AND name = $2 AND segment = $3",
    )
    .bind(id.kind)
    .bind(&id.name)
    .bind(segment_index(id)?)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

fn segment_index(id: &FollowerId) -> Result<i32, StoreError> {
    i32::try_from(id.segment.index).map_err(|_| corrupt(id, "segment index exceeds an integer"))
}

fn segment_count(id: &FollowerId) -> Result<i32, StoreError> {
    i32::try_from(id.segment.count).map_err(|_| corrupt(id, "segment count exceeds an integer"))
}

fn corrupt(id: &FollowerId, reason: &str) -> StoreError {
    StoreError::Corrupt {
        position: 0,
        reason: format!("checkpoint of {id}: {reason}"),
    }
}

fn decode_checkpoint(id: &FollowerId, row: &PgRow) -> Result<Checkpoint, StoreError> {
    let transaction_id: i64 = row.try_get("transaction_id")?;
    Ok(Checkpoint {
        position: LogPosition {
            transaction_id: u64::try_from(transaction_id)
                .map_err(|_| corrupt(id, "negative transaction id"))?,
            position: row.try_get("position")?,
        },
        state: row.try_get("state")?,
    })
}

fn decode(kind: &'static str, row: &PgRow) -> Result<StoredCheckpoint, StoreError> {
    let name: String = row.try_get("name")?;
    let position: i64 = row.try_get("position")?;
    let bad = |reason: &str| StoreError::Corrupt {
        position,
        reason: format!("checkpoint of {kind}:{name}: {reason}"),
    };
    let transaction_id: i64 = row.try_get("transaction_id")?;
    let index: i32 = row.try_get("segment")?;
    let count: i32 = row.try_get("segments")?;
    Ok(StoredCheckpoint {
        segment: Segment {
            index: u32::try_from(index).map_err(|_| bad("negative segment"))?,
            count: u32::try_from(count).map_err(|_| bad("negative segment count"))?,
        },
        checkpoint: Checkpoint {
            position: LogPosition {
                transaction_id: u64::try_from(transaction_id)
                    .map_err(|_| bad("negative transaction id"))?,
                position,
            },
            state: row.try_get("state")?,
        },
        updated_at: row.try_get("updated_at")?,
        last_error: row.try_get("last_error")?,
        last_error_at: row.try_get("last_error_at")?,
        name,
    })
}
