//! Appending: one call of the `append_events` SQL function per command, so the version checks,
//! claims, command result and events commit together in a single round trip; under load,
//! several commands' calls share one transaction (see `group`).

use crate::EventStore;
use crate::error::{AppendError, StoreError};
use crate::model::AppendRequest;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use std::time::Instant;
use uuid::Uuid;

/// What an append wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Per appended event, in request order: (position, stream id, stream version).
    pub events: Vec<(i64, String, u64)>,
}

impl AppendOutcome {
    /// The highest position written, if any event was.
    pub fn last_position(&self) -> Option<i64> {
        self.events.iter().map(|(position, ..)| *position).max()
    }
}

/// Checks that a stream id is `<category>-<id>` with no whitespace.
pub(crate) fn valid_stream_id(stream_id: &str) -> bool {
    match stream_id.split_once('-') {
        Some((category, id)) => {
            !category.is_empty()
                && !id.is_empty()
                && category.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !stream_id.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

impl EventStore {
    /// Appends atomically: all of the request's events, claims and result, or nothing.
    ///
    /// With group commit on (see [`with_group_commit`](Self::with_group_commit)), appends made
    /// while others are in flight share one transaction: a refused request is refused alone
    /// (the others are kept), and every request is answered after the commit.
    pub async fn append(&self, request: &AppendRequest) -> Result<AppendOutcome, AppendError> {
        let started = Instant::now();
        let encoded = self.encode(request).await?;
        let prepared = Prepared::new(encoded.as_ref().unwrap_or(request))?;
        let outcome = match &self.group {
            Some(group) => group.append(&self.pool, prepared).await,
            None => append_prepared(&self.pool, &prepared).await,
        };
        let outcome = outcome.map_err(|error| asked_claim(request, encoded.as_ref(), error))?;
        metrics::counter!("velka_events_appended_total").increment(outcome.events.len() as u64);
        metrics::histogram!("velka_append_seconds").record(started.elapsed().as_secs_f64());
        if !outcome.events.is_empty() {
            self.wake_subscribers();
        }
        Ok(outcome)
    }

    /// Appends through `executor`, which may be a transaction the caller commits later (the
    /// events stay invisible to readers until then). Subscribers are not woken: they notice on
    /// their next poll, or the caller wakes them by appending again. Never grouped.
    pub async fn append_in<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        request: &AppendRequest,
    ) -> Result<AppendOutcome, AppendError> {
        let encoded = self.encode(request).await?;
        let prepared = Prepared::new(encoded.as_ref().unwrap_or(request))?;
        let outcome = append_prepared(executor, &prepared)
            .await
            .map_err(|error| asked_claim(request, encoded.as_ref(), error))?;
        metrics::counter!("velka_events_appended_total").increment(outcome.events.len() as u64);
        Ok(outcome)
    }

    /// The request as the codec stores it, if a codec is installed and changes it.
    async fn encode(&self, request: &AppendRequest) -> Result<Option<AppendRequest>, AppendError> {
        match &self.codec {
            Some(codec) => Ok(codec.encode(request).await?),
            None => Ok(None),
        }
    }
}

/// Reports a held claim under the key the caller asked for, not the one the codec stored.
fn asked_claim(
    request: &AppendRequest,
    encoded: Option<&AppendRequest>,
    error: AppendError,
) -> AppendError {
    match (error, encoded) {
        (AppendError::ClaimHeld { claim }, Some(encoded)) => {
            let asked = encoded
                .claims
                .acquire
                .iter()
                .position(|key| *key == claim)
                .and_then(|index| request.claims.acquire.get(index))
                .cloned()
                .unwrap_or(claim);
            AppendError::ClaimHeld { claim: asked }
        }
        (error, _) => error,
    }
}

/// One request checked and laid out as the columns `append_events` takes.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) streams: Vec<String>,
    pub(crate) expected: Vec<i64>,
    /// Per event, the 1-based index of its stream in `streams`.
    pub(crate) event_stream: Vec<i32>,
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) event_types: Vec<String>,
    pub(crate) schema_versions: Vec<i32>,
    /// Each event's data as JSON text: the store keeps it as sent (`json`), so it is written
    /// once here and PostgreSQL only checks it.
    pub(crate) data: Vec<String>,
    pub(crate) occurred_at: Vec<DateTime<Utc>>,
    pub(crate) correlation_id: Uuid,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) actor: String,
    pub(crate) command_id: Option<Uuid>,
    pub(crate) recorded_at: DateTime<Utc>,
    pub(crate) acquire: Vec<String>,
    pub(crate) holder: Option<String>,
    pub(crate) release: Vec<String>,
    pub(crate) result: Option<PreparedResult>,
}

/// A command result as `append_events` takes it.
#[derive(Debug)]
pub(crate) struct PreparedResult {
    pub(crate) scope: String,
    pub(crate) key: String,
    pub(crate) request_hash: String,
    pub(crate) status: i16,
    pub(crate) body: Value,
}

impl Prepared {
    /// Checks the stream ids (each `<category>-<id>`, none twice) and lays the request out.
    pub(crate) fn new(request: &AppendRequest) -> Result<Self, AppendError> {
        let event_count = request.writes.iter().map(|w| w.events.len()).sum();
        let mut prepared = Prepared {
            streams: Vec::with_capacity(request.writes.len()),
            expected: Vec::with_capacity(request.writes.len()),
            event_stream: Vec::with_capacity(event_count),
            event_ids: Vec::with_capacity(event_count),
            event_types: Vec::with_capacity(event_count),
            schema_versions: Vec::with_capacity(event_count),
            data: Vec::with_capacity(event_count),
            occurred_at: Vec::with_capacity(event_count),
            correlation_id: request.metadata.correlation_id,
            causation_id: request.metadata.causation_id,
            actor: request.metadata.actor.clone(),
            command_id: request.metadata.command_id,
            recorded_at: request.recorded_at,
            acquire: request.claims.acquire.clone(),
            holder: request.claims.holder.clone(),
            release: request.claims.release.clone(),
            result: request.result.as_ref().map(|r| PreparedResult {
                scope: r.scope.clone(),
                key: r.key.clone(),
                request_hash: r.request_hash.clone(),
                status: i16::try_from(r.status).unwrap_or(i16::MAX),
                body: r.body.clone(),
            }),
        };
        for (index, write) in request.writes.iter().enumerate() {
            if !valid_stream_id(&write.stream_id) {
                return Err(AppendError::Invalid(format!(
                    "stream id {:?} is not <category>-<id>",
                    write.stream_id
                )));
            }
            if prepared.streams.contains(&write.stream_id) {
                return Err(AppendError::Invalid(format!(
                    "stream {} appears twice in one append",
                    write.stream_id
                )));
            }
            prepared.streams.push(write.stream_id.clone());
            prepared.expected.push(write.expected.as_sql());
            let stream_index = i32::try_from(index + 1)
                .map_err(|_| AppendError::Invalid("too many streams".into()))?;
            for event in &write.events {
                prepared.event_stream.push(stream_index);
                prepared.event_ids.push(event.event_id);
                prepared.event_types.push(event.event_type.clone());
                prepared
                    .schema_versions
                    .push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
                prepared.data.push(event.data.to_string());
                prepared.occurred_at.push(event.occurred_at);
            }
        }
        Ok(prepared)
    }
}

/// Appends one prepared request with one call of `append_events`.
pub(crate) async fn append_prepared<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    request: &Prepared,
) -> Result<AppendOutcome, AppendError> {
    let result = request.result.as_ref();
    let rows = sqlx::query(
        "SELECT out_position, out_stream_id, out_stream_version FROM append_events(
            $1, $2, $3, $4, $5, $6, $7::json[], $8, $9, $10, $11, $12, $13, $14, $15, $16,
            $17, $18, $19, $20, $21)",
    )
    .bind(&request.streams)
    .bind(&request.expected)
    .bind(&request.event_stream)
    .bind(&request.event_ids)
    .bind(&request.event_types)
    .bind(&request.schema_versions)
    .bind(&request.data)
    .bind(&request.occurred_at)
    .bind(request.correlation_id)
    .bind(request.causation_id)
    .bind(&request.actor)
    .bind(request.command_id)
    .bind(request.recorded_at)
    .bind(&request.acquire)
    .bind(request.holder.as_deref())
    .bind(&request.release)
    .bind(result.map(|r| r.scope.as_str()))
    .bind(result.map(|r| r.key.as_str()))
    .bind(result.map(|r| r.request_hash.as_str()))
    .bind(result.map(|r| r.status))
    .bind(result.map(|r| &r.body))
    .fetch_all(executor)
    .await
    .map_err(classify)?;

    let events = rows
        .iter()
        .map(|row| appended(row, 0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)?;
    Ok(AppendOutcome { events })
}

/// One appended event as `append_events` returns it, from the row's columns `first..first + 3`:
/// (position, stream id, stream version).
pub(crate) fn appended(
    row: &sqlx::postgres::PgRow,
    first: usize,
) -> Result<(i64, String, u64), sqlx::Error> {
    let position: i64 = row.try_get(first)?;
    let stream_id: String = row.try_get(first + 1)?;
    let version: i64 = row.try_get(first + 2)?;
    Ok((position, stream_id, u64::try_from(version).unwrap_or(0)))
}

/// Turns the SQLSTATEs raised by `append_events` into typed errors.
fn classify(error: sqlx::Error) -> AppendError {
    let Some(db) = error.as_database_error() else {
        return AppendError::Store(error.into());
    };
    let code = db.code().unwrap_or_default();
    let detail = if code == "23505" {
        db.constraint().unwrap_or_default().to_owned()
    } else {
        db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.detail())
            .unwrap_or_default()
            .to_owned()
    };
    refusal(&code, &detail).unwrap_or_else(|| AppendError::Store(error.into()))
}

/// The refusal an `append_events` SQLSTATE stands for (for 23505, `detail` is the violated
/// constraint), or `None` for any other error.
pub(crate) fn refusal(code: &str, detail: &str) -> Option<AppendError> {
    match code {
        "VL001" => {
            // Detail is "<stream id> <expected> <actual>"; stream ids contain no spaces.
            let mut parts = detail.rsplitn(3, ' ');
            let actual = parts.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
            let expected = parts.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
            let stream_id = parts.next().unwrap_or_default().to_owned();
            Some(AppendError::WrongExpectedVersion {
                stream_id,
                expected,
                actual,
            })
        }
        "VL002" => Some(AppendError::ClaimHeld {
            claim: detail.to_owned(),
        }),
        "VL003" => Some(AppendError::DuplicateCommand {
            key: detail.to_owned(),
        }),
        // Two writers creating the same new stream at once: the second loses on the
        // (stream_id, stream_version) key.
        "23505" if detail == "events_stream_version_key" => {
            Some(AppendError::WrongExpectedVersion {
                stream_id: String::new(),
                expected: 0,
                actual: -1,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::valid_stream_id;

    #[test]
    fn stream_ids_need_a_category() {
        assert!(valid_stream_id("trip-0194f5a0-0000-7000-8000-000000000001"));
        assert!(valid_stream_id("fleet_task-1"));
        assert!(!valid_stream_id("trip"));
        assert!(!valid_stream_id("-1"));
        assert!(!valid_stream_id("Trip-1"));
        assert!(!valid_stream_id("trip-1 2"));
    }
}
