//! Replaying the log into copies of read-model tables: the one page loop that [`crate::rebuild`]
//! and [`crate::as_of`] share.
//!
//! [`LogPages`] reads the log in delivery order, one page at a time, and reads ahead while the
//! caller applies the current page: up to a settled head with binary `COPY`s, beyond it with the
//! gap-free page read. [`apply_page`] applies one page to several
//! projectors' copies at once, each projector in its own transaction on its own pooled
//! connection with `search_path` pointing at its copy, so that their PostgreSQL work overlaps;
//! the log is read once however many read models are built.
//!
//! Nothing here touches a live table or a checkpoint: what is applied lands in a copy schema.

use crate::projector::{ProjectionError, Projector};
use event_store::{BulkPages, EventStore, LogPage, LogPosition, RecordedEvent, StoreError};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
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
    /// The bulk read up to `until`, once started.
    bulk: Option<BulkPages>,
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
            bulk: None,
        }
    }

    /// Ends with the event at `head`, a head the store returned (so settled: every transaction
    /// that wrote at or below it has ended). The stretch is read the fast way, with binary
    /// `COPY`s a few pages ahead ([`EventStore::read_log_bulk`]).
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

    /// Moves the end to `head` (a later head the store returned): the pages after the old end
    /// follow.
    pub(crate) fn set_until(&mut self, head: LogPosition) {
        self.until = Some(head);
        self.bulk = None;
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
            if let Some(until) = self.until {
                let (store, after, size) = (&self.store, self.after, self.batch_size);
                let bulk = self
                    .bulk
                    .get_or_insert_with(|| store.read_log_bulk(after, until, size));
                return match bulk.next().await {
                    Some(Ok(events)) => {
                        if let Some(last) = events.last() {
                            self.after = last.log_position;
                        }
                        Ok(Some(events))
                    }
                    Some(Err(error)) => Err(error),
                    None => Ok(None),
                };
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
    /// A projector's task stopped taking pages without saying why.
    #[error("a projector stopped taking pages")]
    Stopped,
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
    // A copy is thrown away if the process dies before the switch, so its pages need not wait
    // for the disk.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
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

/// Creates an empty copy of `public.{table}` in `schema` for a load: columns, defaults, checks
/// and the unique indexes (primary keys, unique constraints: what the projectors' upserts name
/// in `ON CONFLICT`), but not the other indexes, which a load would maintain row by row. Returns
/// the statements that create those, to run once the copy is filled ([`create_indexes`]). The
/// indexes keep the live ones' names, so a rebuilt table looks like a migrated one.
///
/// `schema` and `table` go into SQL text: the caller checks they are plain identifiers.
pub(crate) async fn create_copy(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query(&format!(
        "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
    ))
    .execute(&mut *conn)
    .await?;
    // Each index of the live table: the constraint it backs, if any, and its definition.
    let indexes: Vec<(bool, Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT i.indisunique, c.conname::text, pg_get_constraintdef(c.oid),
                pg_get_indexdef(i.indexrelid)
         FROM pg_index i
         LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
         WHERE i.indrelid = to_regclass($1)
         ORDER BY i.indexrelid",
    )
    .bind(format!("public.{table}"))
    .fetch_all(&mut *conn)
    .await?;
    let live = format!(" ON public.{table} ");
    let copy = format!(" ON {schema}.{table} ");
    let mut deferred = Vec::new();
    for (unique, constraint, constraint_def, index_def) in indexes {
        let statement = match (constraint, constraint_def) {
            (Some(name), Some(def)) => {
                format!("ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} {def}")
            }
            _ => index_def.replacen(&live, &copy, 1),
        };
        if unique {
            sqlx::query(&statement).execute(&mut *conn).await?;
        } else {
            deferred.push(statement);
        }
    }
    Ok(deferred)
}

/// Runs the index statements [`create_copy`] deferred, several at once (one connection each, up
/// to the pool's size), with room to sort in memory.
pub(crate) async fn create_indexes(
    pool: &PgPool,
    statements: &[String],
) -> Result<(), sqlx::Error> {
    let at_once = usize::try_from(pool.options().get_max_connections())
        .unwrap_or(1)
        .clamp(1, 4);
    for chunk in statements.chunks(at_once) {
        futures::future::try_join_all(chunk.iter().map(|statement| async move {
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL maintenance_work_mem = '128MB'")
                .execute(&mut *tx)
                .await?;
            sqlx::query(statement).execute(&mut *tx).await?;
            tx.commit().await
        }))
        .await?;
    }
    Ok(())
}

/// Pages handed to several projectors' copies, each projector in a task of its own that takes
/// them as they come, one transaction per page, with at most `parallel` transactions applying at
/// once (the machine's cores: PostgreSQL does most of the work). A fast projector runs ahead of a
/// slow one by up to [`FAN_OUT_AHEAD`] pages instead of waiting for it at every page.
#[derive(Debug)]
pub(crate) struct FanOut {
    senders: Vec<Option<mpsc::Sender<Arc<Vec<RecordedEvent>>>>>,
    tasks: Vec<JoinHandle<Result<u64, ApplyError>>>,
    applied: Arc<Vec<AtomicU64>>,
    /// Set when one projector failed: the others stop before their next page. (They are not
    /// aborted: a task aborted in the middle of a query could hand its connection back to the
    /// pool in the middle of the protocol.)
    stop: Arc<AtomicBool>,
}

/// Pages a projector's task may have waiting.
pub(crate) const FAN_OUT_AHEAD: usize = 4;

impl FanOut {
    /// One task per target, `parallel` applying at once.
    pub(crate) fn start(pool: &PgPool, targets: &[Target], parallel: usize) -> Self {
        let permits = Arc::new(Semaphore::new(parallel.max(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let applied: Arc<Vec<AtomicU64>> =
            Arc::new(targets.iter().map(|_| AtomicU64::new(0)).collect());
        let mut senders = Vec::with_capacity(targets.len());
        let mut tasks = Vec::with_capacity(targets.len());
        for (index, target) in targets.iter().enumerate() {
            let (sender, mut pages) = mpsc::channel::<Arc<Vec<RecordedEvent>>>(FAN_OUT_AHEAD);
            let (pool, target, permits, applied, stop) = (
                pool.clone(),
                target.clone(),
                permits.clone(),
                applied.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut total = 0;
                while let Some(page) = pages.recv().await {
                    let events: Vec<&RecordedEvent> = page.iter().collect();
                    let _permit = permits.acquire().await;
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    match apply_to_copy(&pool, &target, &events).await {
                        Ok(count) => {
                            total += count;
                            applied[index].fetch_add(count, Ordering::Relaxed);
                        }
                        Err(error) => {
                            stop.store(true, Ordering::Release);
                            return Err(error);
                        }
                    }
                }
                Ok(total)
            }));
            senders.push(Some(sender));
        }
        Self {
            senders,
            tasks,
            applied,
            stop,
        }
    }

    /// Hands `page` to every projector, waiting while one has [`FAN_OUT_AHEAD`] pages waiting.
    /// An error is the first projector's that failed (the others stop at once).
    pub(crate) async fn send(&mut self, page: Vec<RecordedEvent>) -> Result<(), ApplyError> {
        let page = Arc::new(page);
        for index in 0..self.senders.len() {
            let Some(sender) = &self.senders[index] else {
                continue;
            };
            if sender.send(page.clone()).await.is_err() {
                // The task ended early: it failed, and told the others to stop.
                return Err(self.stopped().await);
            }
        }
        Ok(())
    }

    /// After a failure: waits for every task to stop; the first error.
    async fn stopped(&mut self) -> ApplyError {
        self.stop.store(true, Ordering::Release);
        self.senders.clear();
        let mut first = None;
        for task in std::mem::take(&mut self.tasks) {
            match task.await {
                Ok(Err(error)) => {
                    first.get_or_insert(error);
                }
                Ok(Ok(_)) => {}
                Err(error) => std::panic::resume_unwind(error.into_panic()),
            }
        }
        first.unwrap_or(ApplyError::Stopped)
    }

    /// Events applied so far, all projectors together.
    pub(crate) fn applied(&self) -> u64 {
        self.applied.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// Waits for every projector to apply what it was sent; how many events each applied.
    pub(crate) async fn finish(mut self) -> Result<Vec<u64>, ApplyError> {
        self.senders.clear();
        let mut counts = Vec::with_capacity(self.tasks.len());
        for index in 0..self.tasks.len() {
            match (&mut self.tasks[index]).await {
                Ok(Ok(count)) => counts.push(count),
                Ok(Err(error)) => {
                    self.tasks.drain(..=index);
                    let _ = self.stopped().await;
                    return Err(error);
                }
                Err(error) => std::panic::resume_unwind(error.into_panic()),
            }
        }
        self.tasks.clear();
        Ok(counts)
    }
}

impl Drop for FanOut {
    /// Dropped before it finished (the rebuild itself was dropped): the tasks go too.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How many transactions a rebuild applies at once: the machine's cores.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}
