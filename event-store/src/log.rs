//! Reading events back: one stream, several streams, or the whole log in delivery order.
//!
//! # Why the log is not read by position
//!
//! `position` comes from a sequence, taken when a row is inserted, so it follows insertion, not
//! commit. Writer A takes position 10, writer B takes 11 and commits first; a reader that asks for
//! `position > 9` sees 11, moves its checkpoint to 11, and never sees 10 when A commits a moment
//! later. The test `naive_position_reader_skips_a_late_commit` in `tests/log_order.rs` shows it.
//!
//! Instead every row carries the id of the transaction that wrote it, and the log is read in
//! `(transaction_id, position)` order, only below `pg_snapshot_xmin(pg_current_snapshot())`: the
//! oldest transaction still running. Anything below that horizon has committed or aborted, so no
//! event can later appear before a position already read. A transaction that started after
//! another committed has a larger id, so per-stream order (guarded by the version check) agrees
//! with delivery order. The cost: one long-running transaction anywhere in the cluster holds back
//! delivery until it ends, which is why Velka keeps every transaction short — and why readers
//! leave out of the horizon the transactions of their own process that promised to append
//! nothing (followers' batches; see the `quiet` module).

use crate::EventStore;
use crate::error::StoreError;
use crate::model::{LogPosition, Metadata, RecordedEvent};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

const COLUMNS: &str = "position, transaction_id::text::bigint AS transaction_id, stream_id,
    stream_version, event_id, event_type, schema_version, data, correlation_id, causation_id,
    actor, command_id, occurred_at, recorded_at";

/// Up to this many streams are read with one index range scan each (see `read_streams`).
const MAX_STREAM_BRANCHES: usize = 16;

/// `SELECT … UNION ALL …`, one branch per stream, binding `$2k+1` (stream id) and `$2k+2` (the
/// version after which to read). The text depends only on `streams`, so each count is
/// prepared once per connection.
fn streams_query(streams: usize) -> String {
    let branches: Vec<String> = (0..streams)
        .map(|k| {
            format!(
                "(SELECT {COLUMNS} FROM events WHERE stream_id = ${} AND stream_version > ${})",
                2 * k + 1,
                2 * k + 2
            )
        })
        .collect();
    format!(
        "{} ORDER BY stream_id, stream_version",
        branches.join(" UNION ALL ")
    )
}

pub(crate) fn decode_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |reason: &str| StoreError::Corrupt {
        position,
        reason: reason.to_owned(),
    };
    let transaction_id: i64 = row.try_get("transaction_id")?;
    let stream_version: i64 = row.try_get("stream_version")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    Ok(RecordedEvent {
        position,
        log_position: LogPosition {
            transaction_id: u64::try_from(transaction_id)
                .map_err(|_| corrupt("negative transaction id"))?,
            position,
        },
        stream_id: row.try_get("stream_id")?,
        stream_version: u64::try_from(stream_version)
            .map_err(|_| corrupt("negative stream version"))?,
        event_id: row.try_get::<Uuid, _>("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt("negative schema version"))?,
        data: row.try_get("data")?,
        metadata: Metadata {
            correlation_id: row.try_get("correlation_id")?,
            causation_id: row.try_get("causation_id")?,
            actor: row.try_get("actor")?,
            command_id: row.try_get("command_id")?,
        },
        occurred_at: row.try_get::<DateTime<Utc>, _>("occurred_at")?,
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
    })
}

/// A batch of the log, and whether more committed events wait behind the horizon.
#[derive(Clone, Debug)]
pub struct LogPage {
    /// The events, in delivery order.
    pub events: Vec<RecordedEvent>,
    /// Whether committed events exist that an older transaction still in flight holds back:
    /// they will be readable as soon as it ends, so look again soon.
    pub held_back: bool,
}

/// What a timeline shows of an event: which, when, by whom, where — not its data.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventHeader {
    /// Its position in the whole log.
    pub position: i64,
    pub stream_id: String,
    pub event_type: String,
    /// Who caused it: `customer:<id>`, `support:<agent>`, `service:<name>`.
    pub actor: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

impl EventStore {
    /// The headers of the latest `limit` events over several streams, newest first: a
    /// timeline. Each stream is found by its `(stream_id, stream_version)` key; the few events
    /// are sorted by position.
    pub async fn latest_headers(
        &self,
        stream_ids: &[String],
        limit: i64,
    ) -> Result<Vec<EventHeader>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT position, stream_id, event_type, actor, occurred_at
             FROM events WHERE stream_id = ANY($1)
             ORDER BY position DESC LIMIT $2",
        )
        .bind(stream_ids)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The events of one stream after version `after` (0 = from the start), in order.
    pub async fn read_stream(
        &self,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_streams_after(&[(stream_id.to_owned(), after)])
            .await
    }

    /// The whole of several streams in one round trip, each stream's events in order (streams
    /// by id). Streams with no events are simply absent from the result. Only the events after
    /// what this process has already read of each stream come from the database (see `cache`).
    pub async fn read_streams(
        &self,
        stream_ids: &[String],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let wanted: Vec<(String, u64)> = stream_ids.iter().map(|id| (id.clone(), 0)).collect();
        self.read_streams_after(&wanted).await
    }

    /// Several streams in one round trip, each from just after the version given with it
    /// (0 = from the start): the events in order, streams by id. Only events this process has
    /// not read before come from the database; only those the caller asked for are copied.
    pub async fn read_streams_after(
        &self,
        wanted: &[(String, u64)],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // One entry per stream, from the earliest version asked for it.
        let mut ids: Vec<(&String, u64)> = wanted.iter().map(|(id, after)| (id, *after)).collect();
        ids.sort();
        ids.dedup_by(|later, first| later.0 == first.0);
        let cached: Vec<Option<Arc<Vec<RecordedEvent>>>> =
            ids.iter().map(|(id, _)| self.cache.get(id)).collect();
        // The database is asked only past what the cache holds, and past what the caller has.
        let afters: Vec<i64> = ids
            .iter()
            .zip(&cached)
            .map(|((_, after), cached)| {
                let held = cached
                    .as_ref()
                    .and_then(|events| events.last())
                    .map_or(0, |last| last.stream_version);
                i64::try_from(held.max(*after)).unwrap_or(i64::MAX)
            })
            .collect();
        let rows = if (1..=MAX_STREAM_BRANCHES).contains(&ids.len()) {
            // One index range scan per stream, whatever the planner thinks of the table's
            // size: a join against `unnest` is planned as a hash join over a sequential scan of
            // the whole log while the log is small or its statistics are stale.
            let sql = streams_query(ids.len());
            let mut query = sqlx::query(&sql);
            for ((id, _), after) in ids.iter().zip(&afters) {
                query = query.bind(*id).bind(*after);
            }
            query.fetch_all(&self.pool).await?
        } else {
            let names: Vec<&String> = ids.iter().map(|(id, _)| *id).collect();
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM events
                 JOIN unnest($1::text[], $2::bigint[]) AS wanted(wanted_stream, wanted_after)
                   ON stream_id = wanted_stream AND stream_version > wanted_after
                 ORDER BY stream_id, stream_version"
            ))
            .bind(&names)
            .bind(&afters)
            .fetch_all(&self.pool)
            .await?
        };
        // Per stream in version order (the database's order between streams follows its
        // collation, so streams are matched by id, not by position).
        let mut fresh: HashMap<String, Vec<RecordedEvent>> = HashMap::new();
        for row in &rows {
            let event = decode_row(row)?;
            fresh
                .entry(event.stream_id.clone())
                .or_default()
                .push(event);
        }
        let mut out = Vec::new();
        for ((id, after), cached) in ids.iter().zip(cached) {
            // The cached events the caller asked for (those after `after`).
            if let Some(cached) = &cached {
                let from = cached.partition_point(|e| e.stream_version <= *after);
                out.extend(cached[from..].iter().cloned());
            }
            let Some(new) = fresh.remove(id.as_str()) else {
                continue;
            };
            // The cache keeps whole prefixes, for callers that fold from the start: extend it
            // for them. A caller that asked from further on holds the state before `after`
            // itself, and copying the prefix for it would cost what it saved.
            if *after == 0 {
                let mut events: Vec<RecordedEvent> = cached.as_deref().cloned().unwrap_or_default();
                events.extend(new.iter().cloned());
                self.cache.put(id, Arc::new(events));
            }
            out.extend(new);
        }
        self.decoded(out).await
    }

    /// Up to `limit` committed events after `after`, in delivery order. Never returns an event
    /// that could be followed later by one sorting before it (see the module docs).
    pub async fn read_log(
        &self,
        after: LogPosition,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.read_log_page(after, limit).await?.events)
    }

    /// Like [`read_log`](Self::read_log), and also says whether committed events exist that the
    /// horizon holds back — both from the same snapshot, so a reader that found nothing knows
    /// without a race whether to look again at once or to wait for new appends.
    pub async fn read_log_page(
        &self,
        after: LogPosition,
        limit: u32,
    ) -> Result<LogPage, StoreError> {
        let mut page = read_page(&self.pool, after, limit, &self.quiet.ids()).await?;
        page.events = self.decoded(page.events).await?;
        Ok(page)
    }

    /// The delivery position of the last event committed so far (`START` when the log is empty),
    /// ignoring transactions still in flight. A reader that reached it is caught up.
    pub async fn head(&self) -> Result<LogPosition, StoreError> {
        read_head(&self.pool).await
    }

    /// The head as the shared tail last read it, when it is current (a few milliseconds old at
    /// most); otherwise [`head`](Self::head). For gauges, where a query per batch would cost
    /// more than the answer is worth.
    pub async fn recent_head(&self) -> Result<LogPosition, StoreError> {
        match self.tail.head() {
            Some(head) => Ok(head),
            None => self.head().await,
        }
    }

    /// How many events the log holds (committed, visible now).
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// The delivery horizon of a read, as an SQL expression of the statement's snapshot: the oldest
/// transaction in flight, leaving out this process's quiet ones (their ids bound as `$4`; see
/// `quiet`), or the snapshot's `xmax` when nothing else is in flight. Every transaction below it
/// has ended or appends nothing. A scalar subquery, so the planner computes it once and uses it
/// as an index bound.
const HORIZON: &str = "(SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot()))
                        FROM pg_snapshot_xip(pg_current_snapshot()) AS x
                        WHERE x::text::bigint <> ALL($4::bigint[]))";

/// See [`EventStore::read_log_page`]; `quiet`: the ids of this process's quiet transactions.
pub(crate) async fn read_page(
    pool: &PgPool,
    after: LogPosition,
    limit: u32,
    quiet: &[i64],
) -> Result<LogPage, StoreError> {
    // One statement, one snapshot: the batch below the horizon, and whether anything visible
    // sits at or above it. The LEFT JOIN yields one all-NULL row when the batch is empty.
    // Both parts are index range scans on `(transaction_id, position)`, whatever the size of
    // the log: the horizon is a scalar subquery of the statement's snapshot (computed once,
    // usable as an index bound), not joined from a CTE, and "anything at or above it" is asked
    // as "is the newest visible transaction id at or above it".
    let rows = sqlx::query(&format!(
        "WITH flag AS (SELECT coalesce(
                           (SELECT transaction_id FROM events
                            ORDER BY transaction_id DESC LIMIT 1)
                           >= {HORIZON},
                           false) AS held_back),
         batch AS (SELECT {COLUMNS}, events.transaction_id AS order_transaction_id
                   FROM events
                   WHERE (events.transaction_id, events.position) > ($1::text::xid8, $2)
                     AND events.transaction_id < {HORIZON}
                   ORDER BY events.transaction_id, events.position
                   LIMIT $3)
         SELECT batch.*, flag.held_back FROM flag LEFT JOIN batch ON true
         ORDER BY batch.order_transaction_id, batch.position"
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.position)
    .bind(i64::from(limit))
    .bind(quiet)
    .fetch_all(pool)
    .await?;
    let held_back = match rows.first() {
        Some(row) => row.try_get::<bool, _>("held_back")?,
        None => false,
    };
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<i64>, _>("position")?.is_some() {
            events.push(decode_row(row)?);
        }
    }
    Ok(LogPage { events, held_back })
}

/// See [`EventStore::head`].
pub(crate) async fn read_head(pool: &PgPool) -> Result<LogPosition, StoreError> {
    let row = sqlx::query(
        // `events.`-qualified: a bare `transaction_id` in ORDER BY would name the bigint
        // output column and sort the whole log instead of reading the index backwards.
        "SELECT events.transaction_id::text::bigint AS transaction_id, events.position
         FROM events
         WHERE events.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(LogPosition::START),
        Some(row) => {
            let transaction_id: i64 = row.try_get("transaction_id")?;
            Ok(LogPosition {
                transaction_id: u64::try_from(transaction_id).unwrap_or(0),
                position: row.try_get("position")?,
            })
        }
    }
}
