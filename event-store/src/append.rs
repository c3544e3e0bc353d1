//! Appending: one call of the `append_events` SQL function per command, so the version checks,
//! claims, command result and events commit together in a single round trip.

use crate::EventStore;
use crate::error::{AppendError, StoreError};
use crate::model::AppendRequest;
use sqlx::Row;
use std::time::Instant;

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
    pub async fn append(&self, request: &AppendRequest) -> Result<AppendOutcome, AppendError> {
        let outcome = self.append_in(&self.pool, request).await?;
        if !outcome.events.is_empty() {
            self.wake_subscribers();
        }
        Ok(outcome)
    }

    /// Appends through `executor`, which may be a transaction the caller commits later (the
    /// events stay invisible to readers until then). Subscribers are not woken: they notice on
    /// their next poll, or the caller wakes them by appending again.
    pub async fn append_in<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        request: &AppendRequest,
    ) -> Result<AppendOutcome, AppendError> {
        let encoded = match &self.codec {
            Some(codec) => codec.encode(request).await?,
            None => None,
        };
        match encoded {
            None => self.append_encoded(executor, request).await,
            Some(encoded) => match self.append_encoded(executor, &encoded).await {
                // Report the claim under the key the caller asked for.
                Err(AppendError::ClaimHeld { claim }) => {
                    let asked = encoded
                        .claims
                        .acquire
                        .iter()
                        .position(|key| *key == claim)
                        .and_then(|index| request.claims.acquire.get(index))
                        .cloned()
                        .unwrap_or(claim);
                    Err(AppendError::ClaimHeld { claim: asked })
                }
                other => other,
            },
        }
    }

    async fn append_encoded<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        request: &AppendRequest,
    ) -> Result<AppendOutcome, AppendError> {
        let started = Instant::now();
        let mut streams = Vec::with_capacity(request.writes.len());
        let mut expected = Vec::with_capacity(request.writes.len());
        let mut event_stream: Vec<i32> = Vec::new();
        let mut event_ids = Vec::new();
        let mut event_types = Vec::new();
        let mut schema_versions: Vec<i32> = Vec::new();
        let mut data = Vec::new();
        let mut occurred_at = Vec::new();
        for (index, write) in request.writes.iter().enumerate() {
            if !valid_stream_id(&write.stream_id) {
                return Err(AppendError::Invalid(format!(
                    "stream id {:?} is not <category>-<id>",
                    write.stream_id
                )));
            }
            if streams.contains(&write.stream_id) {
                return Err(AppendError::Invalid(format!(
                    "stream {} appears twice in one append",
                    write.stream_id
                )));
            }
            streams.push(write.stream_id.clone());
            expected.push(write.expected.as_sql());
            let stream_index = i32::try_from(index + 1)
                .map_err(|_| AppendError::Invalid("too many streams".into()))?;
            for event in &write.events {
                event_stream.push(stream_index);
                event_ids.push(event.event_id);
                event_types.push(event.event_type.clone());
                schema_versions.push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
                data.push(event.data.clone());
                occurred_at.push(event.occurred_at);
            }
        }
        let result = request.result.as_ref();
        let rows = sqlx::query(
            "SELECT out_position, out_stream_id, out_stream_version FROM append_events(
                $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20, $21)",
        )
        .bind(&streams)
        .bind(&expected)
        .bind(&event_stream)
        .bind(&event_ids)
        .bind(&event_types)
        .bind(&schema_versions)
        .bind(&data)
        .bind(&occurred_at)
        .bind(request.metadata.correlation_id)
        .bind(request.metadata.causation_id)
        .bind(&request.metadata.actor)
        .bind(request.metadata.command_id)
        .bind(request.recorded_at)
        .bind(&request.claims.acquire)
        .bind(request.claims.holder.as_deref())
        .bind(&request.claims.release)
        .bind(result.map(|r| r.scope.as_str()))
        .bind(result.map(|r| r.key.as_str()))
        .bind(result.map(|r| r.request_hash.as_str()))
        .bind(result.map(|r| i16::try_from(r.status).unwrap_or(i16::MAX)))
        .bind(result.map(|r| &r.body))
        .fetch_all(executor)
        .await
        .map_err(classify)?;

        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let position: i64 = row.try_get(0).map_err(StoreError::from)?;
            let stream_id: String = row.try_get(1).map_err(StoreError::from)?;
            let version: i64 = row.try_get(2).map_err(StoreError::from)?;
            events.push((position, stream_id, u64::try_from(version).unwrap_or(0)));
        }
        metrics::counter!("velka_events_appended_total").increment(events.len() as u64);
        metrics::histogram!("velka_append_seconds").record(started.elapsed().as_secs_f64());
        Ok(AppendOutcome { events })
    }
}

/// Turns the SQLSTATEs raised by `append_events` into typed errors.
fn classify(error: sqlx::Error) -> AppendError {
    let Some(db) = error.as_database_error() else {
        return AppendError::Store(error.into());
    };
    let detail = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| pg.detail())
        .unwrap_or_default()
        .to_owned();
    match db.code().as_deref() {
        Some("VL001") => {
            // Detail is "<stream id> <expected> <actual>"; stream ids contain no spaces.
            let mut parts = detail.rsplitn(3, ' ');
            let actual = parts.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
            let expected = parts.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
            let stream_id = parts.next().unwrap_or_default().to_owned();
            AppendError::WrongExpectedVersion {
                stream_id,
                expected,
                actual,
            }
        }
        Some("VL002") => AppendError::ClaimHeld { claim: detail },
        Some("VL003") => AppendError::DuplicateCommand { key: detail },
        // Two writers creating the same new stream at once: the second loses on the
        // (stream_id, stream_version) key.
        Some("23505") if db.constraint() == Some("events_stream_version_key") => {
            AppendError::WrongExpectedVersion {
                stream_id: String::new(),
                expected: 0,
                actual: -1,
            }
        }
        _ => AppendError::Store(error.into()),
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
