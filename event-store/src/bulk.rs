//! Reading a settled stretch of the log fast, for rebuilds: binary `COPY`s parsed as they
//! arrive ([`crate::copy`]), in a task of its own that reads ahead of the caller.
//!
//! The gap-free page read ([`crate::EventStore::read_log_page`]) asks the snapshot's horizon on
//! every page, because it follows a log that is still being written. A stretch that ends at a
//! head the store returned is settled — every transaction that wrote at or below it has ended —
//! so it can be read in delivery order with plain range scans, a few hundred thousand events per
//! statement (short enough not to hold a snapshot for the whole rebuild).

use crate::copy::{CopyError, CopyReader, CopyRows, POSTGRES_EPOCH_MICROS};
use crate::{EventStore, LogPosition, Metadata, RecordedEvent, StoreError};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use std::sync::Mutex;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Events per `COPY` statement.
const PER_STATEMENT: u32 = 200_000;

/// Pages read ahead of the caller.
const AHEAD: usize = 4;

/// The columns of a bulk read, in the order [`parse`] reads them.
const COLUMNS: &str = "position, transaction_id::text::bigint, stream_id, stream_version, \
    event_id, event_type, schema_version, data, correlation_id, causation_id, actor, command_id, \
    occurred_at, recorded_at";
const COLUMN_COUNT: i16 = 14;

/// The pages of a settled stretch of the log, in delivery order, read ahead in the background.
/// Dropping it stops the reading at the next page: the reading task is not aborted (that could
/// hand its connection back to the pool in the middle of a `COPY`), it finds nobody to take the
/// page, and closes its connection.
#[derive(Debug)]
pub struct BulkPages {
    pages: mpsc::Receiver<Result<Vec<RecordedEvent>, StoreError>>,
}

impl BulkPages {
    /// The next page (at most the page size, decoded as the store's codec decodes), or `None`
    /// once the stretch is read.
    pub async fn next(&mut self) -> Option<Result<Vec<RecordedEvent>, StoreError>> {
        self.pages.recv().await
    }
}

impl EventStore {
    /// The events after `after` up to and including `until`, `page_size` a page, read with binary
    /// `COPY`s in a background task that stays a few pages ahead. `until` must be settled: a
    /// position at or below a [`head`](Self::head) this store returned. An event committed later
    /// below `until` cannot exist, since every transaction that wrote there has ended.
    pub fn read_log_bulk(
        &self,
        after: LogPosition,
        until: LogPosition,
        page_size: u32,
    ) -> BulkPages {
        self.read_log_bulk_in(after, until, page_size, PER_STATEMENT)
    }

    /// [`read_log_bulk`](Self::read_log_bulk) with at most `per_statement` events a `COPY`
    /// statement (for tests of the seams between statements, and for tuning).
    pub fn read_log_bulk_in(
        &self,
        after: LogPosition,
        until: LogPosition,
        page_size: u32,
        per_statement: u32,
    ) -> BulkPages {
        let per_statement = per_statement.max(1);
        let (sender, pages) = mpsc::channel(AHEAD);
        let store = self.clone();
        let page_size = usize::try_from(page_size.max(1)).unwrap_or(1);
        tokio::spawn(async move {
            if let Err(error) = read(&store, after, until, page_size, per_statement, &sender).await
            {
                let _ = sender.send(Err(error)).await;
            }
        });
        BulkPages { pages }
    }
}

/// Reads the stretch statement by statement, sending full pages as they fill.
async fn read(
    store: &EventStore,
    after: LogPosition,
    until: LogPosition,
    page_size: usize,
    per_statement: u32,
    sender: &mpsc::Sender<Result<Vec<RecordedEvent>, StoreError>>,
) -> Result<(), StoreError> {
    let mut connection = store.pool.acquire().await?;
    let result = read_on(
        &mut connection,
        store,
        after,
        until,
        page_size,
        per_statement,
        sender,
    )
    .await;
    if !matches!(result, Ok(true)) {
        // Stopped or failed, perhaps in the middle of a `COPY`: the connection is closed
        // rather than handed back to the pool in the middle of the protocol.
        drop(connection.detach());
    }
    result.map(|_| ())
}

/// [`read`] on `connection`; whether the stretch was read to its end (`false`: the reader
/// went away).
async fn read_on(
    connection: &mut sqlx::PgConnection,
    store: &EventStore,
    after: LogPosition,
    until: LogPosition,
    page_size: usize,
    per_statement: u32,
    sender: &mpsc::Sender<Result<Vec<RecordedEvent>, StoreError>>,
) -> Result<bool, StoreError> {
    // What the row callback fills, taken out between the pieces of a `COPY` (a mutex, not a
    // `RefCell`, so that the task stays `Send`; nothing else ever locks it).
    let batch = Mutex::new(Batch {
        after,
        read: 0,
        page: Vec::with_capacity(page_size),
        full: Vec::new(),
    });
    while lock(&batch).after < until {
        let from = lock(&batch).after;
        lock(&batch).read = 0;
        // Integers only, so formatting them into the statement is safe (COPY takes no
        // parameters). `events.`-qualified: a bare `transaction_id` in ORDER BY names the bigint
        // output column, which no index has, and every statement would sort the whole log.
        let statement = format!(
            "COPY (SELECT {COLUMNS} FROM events
                   WHERE (events.transaction_id, events.position) > ('{}'::xid8, {})
                     AND (events.transaction_id, events.position) <= ('{}'::xid8, {})
                   ORDER BY events.transaction_id, events.position LIMIT {per_statement})
             TO STDOUT (FORMAT binary)",
            from.transaction_id, from.position, until.transaction_id, until.position
        );
        let mut stream = connection.copy_out_raw(&statement).await?;
        let mut rows = CopyRows::<_, StoreError>::new(|row| {
            let event = parse(row)?;
            let mut batch = lock(&batch);
            batch.after = event.log_position;
            batch.read += 1;
            batch.page.push(event);
            if batch.page.len() == page_size {
                let page = std::mem::replace(&mut batch.page, Vec::with_capacity(page_size));
                batch.full.push(page);
            }
            Ok(())
        });
        while let Some(piece) = stream.try_next().await? {
            rows.feed(&piece)?;
            let full = std::mem::take(&mut lock(&batch).full);
            for events in full {
                if !send(store, sender, events).await? {
                    return Ok(false);
                }
            }
        }
        rows.finish()?;
        drop(stream);
        if lock(&batch).read < per_statement {
            break;
        }
    }
    let page = std::mem::take(&mut lock(&batch).page);
    if !page.is_empty() && !send(store, sender, page).await? {
        return Ok(false);
    }
    Ok(true)
}

/// Where a bulk read is, between the pieces of a `COPY`.
struct Batch {
    /// The last event parsed.
    after: LogPosition,
    /// Events the current statement returned.
    read: u32,
    /// The page being filled.
    page: Vec<RecordedEvent>,
    /// Pages filled, not yet sent.
    full: Vec<Vec<RecordedEvent>>,
}

fn lock(batch: &Mutex<Batch>) -> std::sync::MutexGuard<'_, Batch> {
    batch
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Decodes a page and hands it over; whether the reader still wants pages.
async fn send(
    store: &EventStore,
    sender: &mpsc::Sender<Result<Vec<RecordedEvent>, StoreError>>,
    events: Vec<RecordedEvent>,
) -> Result<bool, StoreError> {
    let events = store.decoded(events).await?;
    Ok(sender.send(Ok(events)).await.is_ok())
}

/// One row of [`COLUMNS`].
fn parse(mut row: CopyReader<'_>) -> Result<RecordedEvent, StoreError> {
    row.row(COLUMN_COUNT).map_err(copy_error(0))?;
    let position = row.int8().map_err(copy_error(0))?;
    let fail = copy_error(position);
    let corrupt = |reason: &str| StoreError::Corrupt {
        position,
        reason: reason.to_owned(),
    };
    let transaction_id = row.int8().map_err(&fail)?;
    let stream_id = text(row.bytes().map_err(&fail)?).ok_or_else(|| corrupt("stream id"))?;
    let stream_version = row.int8().map_err(&fail)?;
    let event_id = Uuid::from_bytes(row.uuid().map_err(&fail)?);
    let event_type = text(row.bytes().map_err(&fail)?).ok_or_else(|| corrupt("event type"))?;
    let schema_version = row.int4().map_err(&fail)?;
    let data = serde_json::from_slice(row.bytes().map_err(&fail)?)
        .map_err(|_| corrupt("data is not JSON"))?;
    let correlation_id = Uuid::from_bytes(row.uuid().map_err(&fail)?);
    let causation_id = row.optional_uuid().map_err(&fail)?.map(Uuid::from_bytes);
    let actor = text(row.bytes().map_err(&fail)?).ok_or_else(|| corrupt("actor"))?;
    let command_id = row.optional_uuid().map_err(&fail)?.map(Uuid::from_bytes);
    let occurred_at =
        timestamp(row.int8().map_err(&fail)?).ok_or_else(|| corrupt("occurred_at"))?;
    let recorded_at =
        timestamp(row.int8().map_err(&fail)?).ok_or_else(|| corrupt("recorded_at"))?;
    Ok(RecordedEvent {
        position,
        log_position: LogPosition {
            transaction_id: u64::try_from(transaction_id)
                .map_err(|_| corrupt("negative transaction id"))?,
            position,
        },
        stream_id,
        stream_version: u64::try_from(stream_version)
            .map_err(|_| corrupt("negative stream version"))?,
        event_id,
        event_type,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt("negative schema version"))?,
        data,
        metadata: Metadata {
            correlation_id,
            causation_id,
            actor,
            command_id,
        },
        occurred_at,
        recorded_at,
    })
}

fn copy_error(position: i64) -> impl Fn(CopyError) -> StoreError {
    move |error| StoreError::Corrupt {
        position,
        reason: error.to_string(),
    }
}

impl From<CopyError> for StoreError {
    fn from(error: CopyError) -> Self {
        StoreError::Corrupt {
            position: 0,
            reason: error.to_string(),
        }
    }
}

fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// A `timestamptz`'s binary form: microseconds since 2000-01-01.
fn timestamp(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros.checked_add(POSTGRES_EPOCH_MICROS)?)
}
