//! Group commit: appends that arrive while others are in flight are written together, in one
//! transaction and one round trip (`append_events_batch`). A group is first written as a whole;
//! if one of its requests is refused (a version conflict, a held claim, a duplicate key), it is
//! written again with each request in its own subtransaction, so the refusal lands on that
//! request alone and the others are kept.
//!
//! A dispatcher task takes the queued requests as one group whenever a writer is free (at most
//! `writers` groups in flight, at most `max_group` requests in one). An append that finds a
//! writer free goes alone, through plain `append_events`, without waiting for company: grouping
//! costs nothing at low load and happens by itself as load grows. Every request is answered
//! after its group's commit, so a caller never sees an outcome that could still roll back.
//!
//! If the group's statement fails as a whole (a deadlock, say), its transaction rolled back and
//! each request is appended again on its own, so the error lands on the request that caused it.

use crate::append::{AppendOutcome, Prepared, append_prepared, appended, refusal};
use crate::error::{AppendError, StoreError};
use sqlx::{PgPool, Row};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// How many requests one group holds at most, by default. When a refusal isolates them, each is
/// a subtransaction; PostgreSQL tracks up to 64 per transaction without spilling to disk.
pub const DEFAULT_MAX_GROUP: u16 = 32;
/// How many groups are in flight at once, by default.
pub const DEFAULT_WRITERS: u16 = 4;

type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

/// The queue of appends waiting for a writer, shared by the clones of one store.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    max_group: usize,
    writers: usize,
    /// Started on first use, on the runtime of that append.
    queue: OnceLock<mpsc::UnboundedSender<(Prepared, Reply)>>,
    /// Requests queued and not yet taken into a group.
    waiting: Arc<AtomicUsize>,
}

impl GroupCommit {
    pub(crate) fn new(max_group: usize, writers: usize) -> Self {
        Self {
            max_group: max_group.max(1),
            writers: writers.max(1),
            queue: OnceLock::new(),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many appends are queued for the next group.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Appends `request` in the next group and waits for its outcome.
    pub(crate) async fn append(
        &self,
        pool: &PgPool,
        request: Prepared,
    ) -> Result<AppendOutcome, AppendError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(dispatch(
                pool.clone(),
                receiver,
                Arc::clone(&self.waiting),
                self.max_group,
                self.writers,
            ));
            sender
        });
        let (reply, outcome) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match queue.send((request, reply)) {
            Ok(()) => outcome.await.unwrap_or(Err(StoreError::Interrupted.into())),
            // The dispatcher's runtime is gone (a test that made the store ended): go alone.
            Err(mpsc::error::SendError((request, _))) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                append_prepared(pool, &request).await
            }
        }
    }
}

/// Takes what is queued as one group whenever a writer is free.
async fn dispatch(
    pool: PgPool,
    mut queue: mpsc::UnboundedReceiver<(Prepared, Reply)>,
    waiting: Arc<AtomicUsize>,
    max_group: usize,
    writers: usize,
) {
    let free = Arc::new(Semaphore::new(writers));
    while let Some(first) = queue.recv().await {
        // While every writer is busy, requests queue up and the next group grows.
        let Ok(writer) = Arc::clone(&free).acquire_owned().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < max_group {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        waiting.fetch_sub(group.len(), Ordering::Relaxed);
        metrics::gauge!("velka_append_waiting").set(waiting.load(Ordering::Relaxed) as f64);
        let pool = pool.clone();
        tokio::spawn(async move {
            write(&pool, group).await;
            drop(writer);
        });
    }
}

/// Writes one group and answers each of its requests.
async fn write(pool: &PgPool, group: Vec<(Prepared, Reply)>) {
    metrics::histogram!("velka_append_group_requests").record(group.len() as f64);
    if group.len() == 1 {
        return one_by_one(pool, group).await;
    }
    let requests: Vec<&Prepared> = group.iter().map(|(request, _)| request).collect();
    // First the cheap way, as a whole; if a request was refused, again with each
    // request in its own subtransaction, so the refusal lands on it and the others are kept.
    let mut written = append_group(pool, &requests, false).await;
    if matches!(&written, Err(error) if refused(error)) {
        metrics::counter!("velka_append_group_retries_total").increment(1);
        written = append_group(pool, &requests, true).await;
    }
    match written {
        Ok(outcomes) => {
            for ((_, reply), outcome) in group.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(error) if error.as_database_error().is_some() => {
            // The statement failed, so its transaction rolled back: nothing was written.
            tracing::debug!(%error, "group append failed; appending its requests one by one");
            one_by_one(pool, group).await;
        }
        Err(error) => {
            // The connection failed: the group may or may not have committed.
            let message = error.to_string();
            for (_, reply) in group {
                let _ = reply.send(Err(StoreError::Database(sqlx::Error::Protocol(
                    message.clone(),
                ))
                .into()));
            }
        }
    }
}

/// Appends each request of `group` in a transaction of its own and answers it.
async fn one_by_one(pool: &PgPool, group: Vec<(Prepared, Reply)>) {
    for (request, reply) in group {
        let _ = reply.send(append_prepared(pool, &request).await);
    }
}

/// Whether the statement failed because one of its requests was refused (a conflict, a held
/// claim, a duplicate key), not because of the database.
fn refused(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|db| {
        matches!(
            db.code().as_deref(),
            Some("VL001" | "VL002" | "VL003" | "23505")
        )
    })
}

/// Appends several requests in one statement; each request's outcome, in order.
async fn append_group(
    pool: &PgPool,
    requests: &[&Prepared],
    isolate: bool,
) -> Result<Vec<Result<AppendOutcome, AppendError>>, sqlx::Error> {
    let mut columns = Columns::default();
    for request in requests {
        columns.push(request)?;
    }
    let rows = sqlx::query(
        "SELECT out_request, out_position, out_stream_id, out_stream_version, out_error,
                out_detail
         FROM append_events_batch($1, $2, $3, $4, $5, $6, $7, $8, $9::json[], $10, $11, $12, $13,
                                  $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25,
                                  $26)",
    )
    .bind(&columns.stream_ends)
    .bind(&columns.streams)
    .bind(&columns.expected)
    .bind(&columns.event_ends)
    .bind(&columns.event_stream)
    .bind(&columns.event_ids)
    .bind(&columns.event_types)
    .bind(&columns.schema_versions)
    .bind(&columns.data)
    .bind(&columns.occurred_at)
    .bind(&columns.correlation_ids)
    .bind(&columns.causation_ids)
    .bind(&columns.actors)
    .bind(&columns.command_ids)
    .bind(&columns.recorded_at)
    .bind(&columns.acquire_ends)
    .bind(&columns.acquire)
    .bind(&columns.holders)
    .bind(&columns.release_ends)
    .bind(&columns.release)
    .bind(&columns.result_scopes)
    .bind(&columns.result_keys)
    .bind(&columns.result_hashes)
    .bind(&columns.result_statuses)
    .bind(&columns.result_bodies)
    .bind(isolate)
    .fetch_all(pool)
    .await?;

    let mut outcomes: Vec<Result<AppendOutcome, AppendError>> = requests
        .iter()
        .map(|_| Ok(AppendOutcome { events: Vec::new() }))
        .collect();
    for row in rows {
        let request: i32 = row.try_get(0)?;
        let Some(outcome) = usize::try_from(request)
            .ok()
            .and_then(|r| r.checked_sub(1))
            .and_then(|index| outcomes.get_mut(index))
        else {
            return Err(sqlx::Error::Protocol(format!(
                "append_events_batch answered for request {request} of {}",
                requests.len()
            )));
        };
        let error: Option<String> = row.try_get(4)?;
        if let Some(code) = error {
            let detail: Option<String> = row.try_get(5)?;
            let detail = detail.unwrap_or_default();
            *outcome = Err(refusal(&code, &detail).unwrap_or_else(|| {
                AppendError::Store(StoreError::Database(sqlx::Error::Protocol(format!(
                    "append refused with {code}: {detail}"
                ))))
            }));
            continue;
        }
        let event = appended(&row, 1)?;
        if let Ok(outcome) = outcome {
            outcome.events.push(event);
        }
    }
    Ok(outcomes)
}

/// The requests of one group laid out as `append_events_batch` takes them.
#[derive(Default)]
struct Columns<'a> {
    stream_ends: Vec<i32>,
    streams: Vec<&'a str>,
    expected: Vec<i64>,
    event_ends: Vec<i32>,
    event_stream: Vec<i32>,
    event_ids: Vec<uuid::Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a str>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    correlation_ids: Vec<uuid::Uuid>,
    causation_ids: Vec<Option<uuid::Uuid>>,
    actors: Vec<&'a str>,
    command_ids: Vec<Option<uuid::Uuid>>,
    recorded_at: Vec<chrono::DateTime<chrono::Utc>>,
    acquire_ends: Vec<i32>,
    acquire: Vec<&'a str>,
    holders: Vec<Option<&'a str>>,
    release_ends: Vec<i32>,
    release: Vec<&'a str>,
    result_scopes: Vec<Option<&'a str>>,
    result_keys: Vec<Option<&'a str>>,
    result_hashes: Vec<Option<&'a str>>,
    result_statuses: Vec<Option<i16>>,
    result_bodies: Vec<Option<&'a serde_json::Value>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, request: &'a Prepared) -> Result<(), sqlx::Error> {
        let end = |len: usize| {
            i32::try_from(len).map_err(|_| sqlx::Error::Protocol("group too large".into()))
        };
        self.streams
            .extend(request.streams.iter().map(String::as_str));
        self.stream_ends.push(end(self.streams.len())?);
        self.expected.extend(&request.expected);
        self.event_stream.extend(&request.event_stream);
        self.event_ids.extend(&request.event_ids);
        self.event_types
            .extend(request.event_types.iter().map(String::as_str));
        self.schema_versions.extend(&request.schema_versions);
        self.data.extend(request.data.iter().map(String::as_str));
        self.occurred_at.extend(&request.occurred_at);
        self.event_ends.push(end(self.event_ids.len())?);
        self.correlation_ids.push(request.correlation_id);
        self.causation_ids.push(request.causation_id);
        self.actors.push(&request.actor);
        self.command_ids.push(request.command_id);
        self.recorded_at.push(request.recorded_at);
        self.acquire
            .extend(request.acquire.iter().map(String::as_str));
        self.acquire_ends.push(end(self.acquire.len())?);
        self.holders.push(request.holder.as_deref());
        self.release
            .extend(request.release.iter().map(String::as_str));
        self.release_ends.push(end(self.release.len())?);
        let result = request.result.as_ref();
        self.result_scopes.push(result.map(|r| r.scope.as_str()));
        self.result_keys.push(result.map(|r| r.key.as_str()));
        self.result_hashes
            .push(result.map(|r| r.request_hash.as_str()));
        self.result_statuses.push(result.map(|r| r.status));
        self.result_bodies.push(result.map(|r| &r.body));
        Ok(())
    }
}
