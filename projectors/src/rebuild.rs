//! Rebuilding a read model side by side, without downtime.
//!
//! [`rebuild`] builds a fresh copy of a projector's tables from position 0 while the live ones
//! keep serving queries and following the log, then switches over in one short transaction:
//!
//! 1. **Build.** Create schema `rebuild_<name>` with an empty copy of each of the projector's
//!    tables (columns, defaults, checks and the unique indexes the upserts need) and apply the
//!    whole log to it in pages, with `search_path` pointing at the copy first; then build the
//!    other indexes, once, over the filled table. The projector's own SQL is unchanged: it names
//!    its tables without a schema.
//! 2. **Catch up and switch.** In one transaction: lock the live checkpoint row (the live
//!    runner's next batch waits on it, so it cannot apply past the switch), apply whatever the
//!    copy still lacks up to the head, move the live tables out to `retired_<name>` and the copy
//!    into `public`, and set the live checkpoint to the copy's. Readers wait for the moment the
//!    `ALTER TABLE … SET SCHEMA` statements hold their locks, and never see a half-built table.
//! 3. **Clean up.** Drop the retired tables. The live runner's next batch finds its checkpoint
//!    moved, reloads it and carries on from there, now writing into the new tables.
//!
//! A crash during the build leaves the live model untouched (the next rebuild starts over); the
//! switch is one transaction, so it happens entirely or not at all.
//!
//! [`rebuild_all`] does this for several read models and reads the log once for all of them:
//! each page goes to every projector's copy, each projector in a task and a transaction per page
//! of its own, as many applying at once as the machine has cores ([`crate::replay::FanOut`]);
//! then each projector catches up and switches on its own, as above.

use crate::projector::{ProjectionError, Projector};
use crate::replay::{
    ApplyError, FanOut, LogPages, Target, apply, cores, create_copy, create_indexes, use_schema,
};
use event_store::follower::{Checkpoint, FollowerId, Segment, checkpoint};
use event_store::{EventStore, LogPosition, RecordedEvent, StoreError};
use sqlx::Row;
use std::sync::Arc;

/// How many times the build goes after a head that moved on while it ran.
const CHASE_ROUNDS: u32 = 3;

/// How far a rebuild has come, for a progress line.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The log position the copy has reached.
    pub position: i64,
    /// The log's head when the rebuild started (it moves on while the rebuild runs).
    pub head: i64,
    /// Events of the projector's categories applied to the copy so far.
    pub events_applied: u64,
}

/// What a finished rebuild did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    /// The projector.
    pub name: &'static str,
    /// Events applied to the copy, in the build and the switch together.
    pub events_applied: u64,
    /// Events the switch transaction applied (appended during the build).
    pub applied_in_switch: u64,
    /// The checkpoint the live model continues from.
    pub position: LogPosition,
    /// Rows in each table after the switch.
    pub rows: Vec<(&'static str, i64)>,
}

/// Why a rebuild stopped. The live read model is unchanged unless the switch committed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The projector names no tables, or a table name is not a plain identifier.
    #[error("projector {name} cannot be rebuilt: {reason}")]
    NotRebuildable { name: &'static str, reason: String },
    /// Applying an event to the copy failed; the copy is left for inspection.
    #[error("applying the log to the copy of {name} failed at position {position}: {source}")]
    Apply {
        name: &'static str,
        position: i64,
        #[source]
        source: ProjectionError,
    },
    /// A query of the rebuild itself failed.
    #[error("rebuild query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the log failed.
    #[error("reading the event log failed: {0}")]
    Store(#[from] StoreError),
    /// A projector stopped taking pages without an error (a bug); the live models are unchanged.
    #[error("a projector stopped taking pages; nothing was switched")]
    Stopped,
    /// The live checkpoint was not there to be moved (removed while the switch began).
    #[error("the live checkpoint of {name} is gone; the switch was rolled back")]
    CheckpointGone { name: &'static str },
}

impl From<ApplyError> for RebuildError {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Apply {
                name,
                position,
                source,
            } => RebuildError::Apply {
                name,
                position,
                source,
            },
            ApplyError::Database(error) => RebuildError::Database(error),
            ApplyError::Stopped => RebuildError::Stopped,
        }
    }
}

/// Rebuilds `projector`'s read model side by side and switches reads over atomically; calls
/// `progress` after each batch of the build. [`rebuild_all`] with one projector.
pub async fn rebuild(
    store: &EventStore,
    projector: Arc<dyn Projector>,
    batch_size: u32,
    progress: impl FnMut(&RebuildProgress),
) -> Result<RebuildReport, RebuildError> {
    let name = projector.name();
    rebuild_all(store, vec![projector], batch_size, progress)
        .await?
        .pop()
        .ok_or_else(|| RebuildError::NotRebuildable {
            name,
            reason: "the rebuild reported nothing".to_owned(),
        })
}

/// Rebuilds several read models side by side, reading the log once for all of them: each page
/// goes to every projector's copy, each projector in a task of its own, up to the machine's
/// cores applying at once (each page in its own transaction). Then each
/// projector catches up and switches over atomically on its own, as [`rebuild`] does, one after
/// the other. Returns one report per projector, in the order given; `progress` is called after
/// each page of the build is handed out, with the events applied by all projectors so far.
///
/// If a switch fails, the projectors before it have switched and the ones from it on are
/// unchanged (their copies are left, and replaced by the next rebuild).
pub async fn rebuild_all(
    store: &EventStore,
    projectors: Vec<Arc<dyn Projector>>,
    batch_size: u32,
    mut progress: impl FnMut(&RebuildProgress),
) -> Result<Vec<RebuildReport>, RebuildError> {
    for (index, projector) in projectors.iter().enumerate() {
        check_identifiers(projector.name(), projector.tables())?;
        if projectors[..index]
            .iter()
            .any(|other| other.name() == projector.name())
        {
            return Err(RebuildError::NotRebuildable {
                name: projector.name(),
                reason: "it is named twice".to_owned(),
            });
        }
    }
    let targets: Vec<Target> = projectors
        .into_iter()
        .map(|projector| Target {
            schema: format!("rebuild_{}", projector.name()),
            projector,
        })
        .collect();
    let pool = store.pool();

    // 1. An empty copy of each table, with only the indexes the upserts need; the others are
    // built once the copy is filled.
    let mut conn = pool.acquire().await?;
    let mut deferred_indexes = Vec::new();
    for target in &targets {
        let copy = &target.schema;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {copy} CASCADE"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!("CREATE SCHEMA {copy}"))
            .execute(&mut *conn)
            .await?;
        for table in target.projector.tables() {
            deferred_indexes.extend(create_copy(&mut conn, copy, table).await?);
        }
    }
    drop(conn);

    // 2. The whole log into the copies, page by page, each page read once, while the live models
    // keep serving.
    // The build goes to the head as it was when it started, then chases the head while more
    // than a batch was appended meanwhile (a few rounds at most: a log that grows faster than
    // the build would be chased for ever); the switch applies the rest.
    let mut head = store.head().await?;
    let mut pages = LogPages::new(store, LogPosition::START, batch_size).until(head);
    let mut fan_out = FanOut::start(pool, &targets, cores());
    for round in 1.. {
        while let Some(page) = pages.next().await? {
            fan_out.send(page).await?;
            progress(&RebuildProgress {
                position: pages.position().position,
                head: head.position,
                events_applied: fan_out.applied(),
            });
        }
        let now = store.head().await?;
        if round >= CHASE_ROUNDS
            || now.position - pages.position().position <= i64::from(batch_size)
        {
            break;
        }
        head = now;
        pages.set_until(head);
    }
    let applied = fan_out.finish().await?;
    let built = pages.position();
    drop(pages);
    create_indexes(pool, &deferred_indexes).await?;

    // 3. and 4. Each projector catches up and switches, then its old tables go.
    let mut reports = Vec::with_capacity(targets.len());
    for (target, applied) in targets.iter().zip(applied) {
        let (position, applied_in_switch) = switch(store, target, built, batch_size).await?;
        let rows = clean_up(pool, target).await?;
        reports.push(RebuildReport {
            name: target.projector.name(),
            events_applied: applied + applied_in_switch,
            applied_in_switch,
            position,
            rows,
        });
    }
    Ok(reports)
}

/// Catches `target`'s copy up from `built` to the head and moves it into `public`, in one
/// transaction; returns the live checkpoint's new position and the events applied here.
async fn switch(
    store: &EventStore,
    target: &Target,
    built: LogPosition,
    batch_size: u32,
) -> Result<(LogPosition, u64), RebuildError> {
    let name = target.projector.name();
    let copy = &target.schema;
    let retired = format!("retired_{name}");
    // The live checkpoints — one per segment when the projector is split — created if the
    // projector never ran, so that there are rows to lock; all of them move to the copy's
    // position, or a segment would apply again what the copy already holds.
    let kind = crate::runner::FOLLOWER_KIND;
    let count = checkpoint::segments(store.pool(), kind, name).await?;
    let lives: Vec<FollowerId> = Segment::all(count)
        .map(|segment| FollowerId::segment(kind, name, segment))
        .collect();
    for live in &lives {
        checkpoint::load(store.pool(), live).await?;
    }
    let mut tx = store.pool().begin().await?;
    let mut froms = Vec::with_capacity(lives.len());
    for live in &lives {
        let Some(from) = checkpoint::lock(&mut tx, live).await? else {
            return Err(RebuildError::CheckpointGone { name });
        };
        froms.push(from);
    }
    use_schema(&mut tx, copy).await?;
    let mut applied_in_switch = 0;
    // The lock gave this transaction an id, so it holds back whatever is appended from now on:
    // catch up with what is readable, and leave the rest to the live runner, which carries on
    // from the checkpoint set below.
    let mut pages = LogPages::new(store, built, batch_size).without_waiting();
    while let Some(page) = pages.next().await? {
        let events: Vec<&RecordedEvent> = page.iter().collect();
        applied_in_switch += apply(&mut tx, target.projector.as_ref(), &events).await?;
    }
    let position = pages.position();
    drop(pages);
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {retired}"))
        .execute(&mut *tx)
        .await?;
    for table in target.projector.tables() {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {copy}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    let to = Checkpoint {
        position,
        state: None,
    };
    // Under the row locks taken above, so each is still where it was.
    for (live, from) in lives.iter().zip(&froms) {
        if !checkpoint::write(&mut *tx, live, from.position, &to).await? {
            return Err(RebuildError::CheckpointGone { name });
        }
    }
    tx.commit().await?;
    Ok((position, applied_in_switch))
}

/// Drops the retired tables and the emptied copy schema; returns the rows of each live table.
async fn clean_up(
    pool: &sqlx::PgPool,
    target: &Target,
) -> Result<Vec<(&'static str, i64)>, RebuildError> {
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!(
        "DROP SCHEMA retired_{} CASCADE",
        target.projector.name()
    ))
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!("DROP SCHEMA {}", target.schema))
        .execute(&mut *conn)
        .await?;
    let mut rows = Vec::new();
    for table in target.projector.tables() {
        let count: i64 = sqlx::query(&format!("SELECT count(*) AS n FROM public.{table}"))
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        rows.push((*table, count));
    }
    Ok(rows)
}

/// Names go into SQL text: only lower-case letters, digits and underscores.
fn check_identifiers(name: &'static str, tables: &[&str]) -> Result<(), RebuildError> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 50
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if tables.is_empty() {
        return Err(RebuildError::NotRebuildable {
            name,
            reason: "it names no tables".to_owned(),
        });
    }
    if let Some(bad) = std::iter::once(name)
        .chain(tables.iter().copied())
        .find(|s| !plain(s))
    {
        return Err(RebuildError::NotRebuildable {
            name,
            reason: format!("{bad:?} is not a plain identifier"),
        });
    }
    Ok(())
}
