//! Replaying the log into copies of read-model tables: the one page loop that [`crate::rebuild`]
//! and [`crate::as_of`] share.
//!
//! [`LogPages`] reads the log in delivery order, one page at a time, and reads the next page
//! while the caller applies the current one. [`apply_page`] applies one page to several
//! projectors' copies at once, each projector in its own transaction on its own pooled
//! connection with `search_path` pointing at its copy, so that their PostgreSQL work overlaps;
//! the log is read once however many read models are built.
//!
//! Nothing here touches a live table or a checkpoint: what is applied lands in a copy schema.

use crate::projector::{ProjectionError, Projector};
use event_store::{EventStore, LogPage, LogPosition, RecordedEvent, StoreError};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long to wait before reading again when a transaction still in flight holds back events.
const HELD_BACK_POLL: Duration = Duration::from_millis(20);

/// The log after a position, page by page, in delivery order; the next page is read in the
/// background while the caller works on the current one.
#[derive(Debug)]
pub(crate) struct LogPages {
    store: EventStore,
    /// The last position returned (or the start).
    after: LogPosition,
    batch_size: u32,
    /// Stop after this position (the head when the build started), if set.
    until: Option<LogPosition>,
    /// Whether an empty page with events held back means "wait" (true) or "done" (false).
    wait_for_held_back: bool,
    /// The read of the page after `after`, started before it was asked for.
    prefetch: Option<JoinHandle<Result<LogPage, StoreError>>>,
}

impl LogPages {
    /// The log after `after`, `batch_size` events a page.
    pub(crate) fn new(store: &EventStore, after: LogPosition, batch_size: u32) -> Self {
        Self {
            store: store.clone(),
            after,
            batch_size: batch_size.max(1),
            until: None,
            wait_for_held_back: true,
            prefetch: None,
        }
    }

    /// Ends with the page that reaches `head`: events after it are still returned when they
    /// share its page, so a caller that must not see them filters by position.
    pub(crate) fn until(mut self, head: LogPosition) -> Self {
        self.until = Some(head);
        self
    }

    /// Ends as soon as no event is readable, even if a transaction still in flight holds later
    /// ones back. For a reader inside a transaction that has a transaction id of its own: it holds
    /// back every event committed after it began, so waiting for them would wait for itself.
    /// Whatever is held back comes after the last position returned in delivery order, so a
    /// reader that carries on from there later (the live runner) misses nothing.
    pub(crate) fn without_waiting(mut self) -> Self {
        self.wait_for_held_back = false;
        self
    }

    /// Moves the end to `head` (a later head than before): the pages after the old end follow.
    pub(crate) fn set_until(&mut self, head: LogPosition) {
        self.until = Some(head);
    }

    /// The position of the last event returned.
    pub(crate) fn position(&self) -> LogPosition {
        self.after
    }

    /// The next page, or `None` once every committed event has been returned (waiting while a
    /// transaction still in flight holds later events back).
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        loop {
            if self.until.is_some_and(|head| self.after >= head) {
                return Ok(None);
            }
            let page = match self.prefetch.take() {
                // The read is aborted only when `self` is dropped, so an error is a panic.
                Some(read) => match read.await {
                    Ok(page) => page?,
                    Err(error) => std::panic::resume_unwind(error.into_panic()),
                },
                None => {
                    self.store
                        .read_log_page(self.after, self.batch_size)
                        .await?
                }
            };
            let Some(last) = page.events.last() else {
                if page.held_back && self.wait_for_held_back {
                    tokio::time::sleep(HELD_BACK_POLL).await;
                    continue;
                }
                return Ok(None);
            };
            self.after = last.log_position;
            if self.until.is_none_or(|head| self.after < head) {
                let (store, after, limit) = (self.store.clone(), self.after, self.batch_size);
                self.prefetch = Some(tokio::spawn(async move {
                    store.read_log_page(after, limit).await
                }));
            }
            return Ok(Some(page.events));
        }
    }
}

impl Drop for LogPages {
    fn drop(&mut self) {
        if let Some(read) = self.prefetch.take() {
            read.abort();
        }
    }
}

/// A projector and the schema its copy of the tables lives in.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) projector: Arc<dyn Projector>,
    /// A plain identifier, checked by the caller: it goes into SQL text.
    pub(crate) schema: String,
}

/// Why a page could not be applied. No copy is changed by the page of the projector that failed;
/// the others may have committed theirs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// A projector failed on an event.
    #[error("projector {name} failed at position {position}: {source}")]
    Apply {
        name: &'static str,
        position: i64,
        #[source]
        source: ProjectionError,
    },
    /// Opening, pointing or committing a projector's transaction failed.
    #[error("applying a page: {0}")]
    Database(#[from] sqlx::Error),
}

/// Applies `events` to every target's copy, each projector only the events of its categories,
/// in a transaction of its own, all projectors at once; returns how many events each applied (in
/// `targets` order). A projector with nothing in the page opens no transaction.
pub(crate) async fn apply_page(
    pool: &PgPool,
    targets: &[Target],
    events: &[&RecordedEvent],
) -> Result<Vec<u64>, ApplyError> {
    futures::future::try_join_all(
        targets
            .iter()
            .map(|target| apply_to_copy(pool, target, events)),
    )
    .await
}

async fn apply_to_copy(
    pool: &PgPool,
    target: &Target,
    events: &[&RecordedEvent],
) -> Result<u64, ApplyError> {
    let categories = target.projector.categories();
    if !events
        .iter()
        .any(|event| categories.contains(&event.category()))
    {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    use_schema(&mut tx, &target.schema).await?;
    let applied = apply(&mut tx, target.projector.as_ref(), events).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Points unqualified table names at `schema` for the rest of the transaction.
pub(crate) async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Applies the events of the projector's categories through `conn`, as one page; returns how
/// many.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: &[&RecordedEvent],
) -> Result<u64, ApplyError> {
    let categories = projector.categories();
    let mine: Vec<&RecordedEvent> = events
        .iter()
        .copied()
        .filter(|event| categories.contains(&event.category()))
        .collect();
    let Some(first) = mine.first() else {
        return Ok(0);
    };
    let first = first.log_position.position;
    projector
        .apply(conn, &mine)
        .await
        .map_err(|source| ApplyError::Apply {
            name: projector.name(),
            position: source.position().unwrap_or(first),
            source,
        })?;
    Ok(mine.len() as u64)
}
