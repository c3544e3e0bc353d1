//! Rebuilding a read model side by side, without downtime.
//!
//! [`rebuild`] builds a fresh copy of a projector's tables from position 0 while the live ones
//! keep serving queries and following the log, then switches over in one short transaction:
//!
//! 1. **Build.** Create schema `rebuild_<name>` with an empty copy of each of the projector's
//!    tables (`LIKE … INCLUDING ALL`: columns, defaults, checks, indexes) and apply the whole log
//!    to it in batches, with `search_path` pointing at the copy first. The projector's own SQL is
//!    unchanged: it names its tables without a schema.
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

use crate::checkpoint;
use crate::projector::{ProjectionError, Projector};
use event_store::{EventStore, LogPosition, StoreError};
use sqlx::{PgConnection, Row};
use std::sync::Arc;
use std::time::Duration;

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
    /// Reading or moving a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] ProjectionError),
}

/// Rebuilds `projector`'s read model side by side and switches reads over atomically; calls
/// `progress` after each batch of the build.
pub async fn rebuild(
    store: &EventStore,
    projector: Arc<dyn Projector>,
    batch_size: u32,
    mut progress: impl FnMut(&RebuildProgress),
) -> Result<RebuildReport, RebuildError> {
    let name = projector.name();
    let tables = projector.tables();
    check_identifiers(name, tables)?;
    let copy = format!("rebuild_{name}");
    let retired = format!("retired_{name}");
    let pool = store.pool();

    // 1. An empty copy of each table.
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {copy} CASCADE"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {copy}"))
        .execute(&mut *conn)
        .await?;
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {copy}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    drop(conn);

    // 2. The whole log into the copy, batch by batch, while the live model keeps serving.
    let head = store.head().await?;
    let mut position = LogPosition::START;
    let mut applied = 0;
    loop {
        let page = store.read_log_page(position, batch_size).await?;
        let Some(last) = page.events.last() else {
            if page.held_back {
                // A transaction still in flight holds back later events: wait for it.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            break;
        };
        let last = last.log_position;
        let mut tx = pool.begin().await?;
        use_copy(&mut tx, &copy).await?;
        applied += apply(&mut tx, projector.as_ref(), &page.events).await?;
        tx.commit().await?;
        position = last;
        progress(&RebuildProgress {
            position: position.position,
            head: head.position,
            events_applied: applied,
        });
    }

    // 3. Catch up and switch, in one transaction.
    let mut tx = pool.begin().await?;
    checkpoint::lock(&mut tx, name).await?;
    use_copy(&mut tx, &copy).await?;
    let mut applied_in_switch = 0;
    loop {
        let page = store.read_log_page(position, batch_size).await?;
        let Some(last) = page.events.last() else {
            if page.held_back {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            break;
        };
        let last = last.log_position;
        applied_in_switch += apply(&mut tx, projector.as_ref(), &page.events).await?;
        position = last;
    }
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {retired}"))
        .execute(&mut *tx)
        .await?;
    for table in tables {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {copy}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, transaction_id, position, updated_at)
         VALUES ($1, $2::text::xid8, $3, now())
         ON CONFLICT (name) DO UPDATE
         SET transaction_id = excluded.transaction_id, position = excluded.position,
             updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(position.transaction_id.to_string())
    .bind(position.position)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    // 4. The old tables and the empty schema go.
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("DROP SCHEMA {retired} CASCADE"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {copy}"))
        .execute(&mut *conn)
        .await?;
    let mut rows = Vec::new();
    for table in tables {
        let count: i64 = sqlx::query(&format!("SELECT count(*) AS n FROM public.{table}"))
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        rows.push((*table, count));
    }
    Ok(RebuildReport {
        name,
        events_applied: applied + applied_in_switch,
        applied_in_switch,
        position,
        rows,
    })
}

/// Points unqualified table names at the copy for the rest of the transaction.
async fn use_copy(conn: &mut PgConnection, copy: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL search_path TO {copy}, public"))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Applies the events of the projector's categories; returns how many.
async fn apply(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: &[event_store::RecordedEvent],
) -> Result<u64, RebuildError> {
    let categories = projector.categories();
    let mut applied = 0;
    for event in events {
        if !categories.contains(&event.category()) {
            continue;
        }
        projector
            .apply(conn, event)
            .await
            .map_err(|source| RebuildError::Apply {
                name: projector.name(),
                position: event.log_position.position,
                source,
            })?;
        applied += 1;
    }
    Ok(applied)
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
