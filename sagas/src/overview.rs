//! What the admin view (`GET /v1/admin/sagas`, to be served by the binary) shows: per saga, its
//! checkpoint and last failure, its instances by status, overdue and failing timers, and the
//! outbox's pending and failed commands.

use crate::error::SagaError;
use chrono::{DateTime, Utc};
use event_store::follower::checkpoint;
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The most failed commands and failing timers listed per saga.
const LISTED: i64 = 20;

/// One saga's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SagaSummary {
    /// The saga's name.
    pub saga: String,
    /// Its checkpoint's position (`None` if it has never run).
    pub checkpoint_position: Option<i64>,
    /// Why its last batch failed, until a batch succeeds.
    pub last_error: Option<String>,
    /// When.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Instances per status (`active`, `completed`).
    pub instances: BTreeMap<String, i64>,
    /// Timers due at `now` and not fired.
    pub overdue_timers: i64,
    /// The oldest of them.
    pub oldest_overdue_at: Option<DateTime<Utc>>,
    /// Timers whose `on_timer` failed, waiting for a retry.
    pub failing_timers: Vec<FailingItem>,
    /// Commands waiting to be sent (including ones retrying).
    pub commands_pending: i64,
    /// Commands that failed for good, and ones retrying with an error.
    pub failed_commands: Vec<FailingItem>,
}

/// A timer or command with an error.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailingItem {
    /// The timer or command id.
    pub id: Uuid,
    /// Its instance.
    pub instance_id: String,
    /// Its name.
    pub name: String,
    /// `pending` (will be retried) or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The last error.
    pub last_error: Option<String>,
}

/// Every saga's summary, by name; `now` (the injected clock) decides what is overdue.
pub async fn overview(pool: &PgPool, now: DateTime<Utc>) -> Result<Vec<SagaSummary>, SagaError> {
    let mut sagas: BTreeMap<String, SagaSummary> = BTreeMap::new();
    let entry = |sagas: &mut BTreeMap<String, SagaSummary>, name: String| {
        sagas
            .entry(name.clone())
            .or_insert_with(|| SagaSummary {
                saga: name,
                ..SagaSummary::default()
            })
            .saga
            .clone()
    };

    for stored in checkpoint::list(pool, crate::runner::KIND).await? {
        let name = entry(&mut sagas, stored.name);
        if let Some(s) = sagas.get_mut(&name) {
            s.checkpoint_position = Some(stored.checkpoint.position.position);
            s.last_error = stored.last_error;
            s.last_error_at = stored.last_error_at;
        }
    }
    for row in
        sqlx::query("SELECT saga, status, count(*) AS n FROM saga_instances GROUP BY saga, status")
            .fetch_all(pool)
            .await?
    {
        let name = entry(&mut sagas, row.try_get("saga")?);
        if let Some(s) = sagas.get_mut(&name) {
            s.instances
                .insert(row.try_get("status")?, row.try_get("n")?);
        }
    }
    for row in sqlx::query(
        "SELECT saga, count(*) AS n, min(due_at) AS oldest FROM saga_timers
         WHERE fired_at IS NULL AND due_at <= $1 GROUP BY saga",
    )
    .bind(now)
    .fetch_all(pool)
    .await?
    {
        let name = entry(&mut sagas, row.try_get("saga")?);
        if let Some(s) = sagas.get_mut(&name) {
            s.overdue_timers = row.try_get("n")?;
            s.oldest_overdue_at = row.try_get("oldest")?;
        }
    }
    for row in sqlx::query(
        "SELECT saga, count(*) AS n FROM saga_commands WHERE status = 'pending' GROUP BY saga",
    )
    .fetch_all(pool)
    .await?
    {
        let name = entry(&mut sagas, row.try_get("saga")?);
        if let Some(s) = sagas.get_mut(&name) {
            s.commands_pending = row.try_get("n")?;
        }
    }
    for row in sqlx::query(
        "SELECT * FROM (
             SELECT saga, timer_id AS id, instance_id, name, 'pending' AS status, attempts,
                    last_error, row_number() OVER (PARTITION BY saga ORDER BY due_at) AS n
             FROM saga_timers WHERE fired_at IS NULL AND last_error IS NOT NULL) t
         WHERE n <= $1 ORDER BY saga, n",
    )
    .bind(LISTED)
    .fetch_all(pool)
    .await?
    {
        let name = entry(&mut sagas, row.try_get("saga")?);
        let problem = problem(&row)?;
        if let Some(s) = sagas.get_mut(&name) {
            s.failing_timers.push(problem);
        }
    }
    for row in sqlx::query(
        "SELECT * FROM (
             SELECT saga, command_id AS id, instance_id, name, status, attempts, last_error,
                    row_number() OVER (PARTITION BY saga ORDER BY created_at) AS n
             FROM saga_commands
             WHERE status = 'failed' OR (status = 'pending' AND last_error IS NOT NULL)) c
         WHERE n <= $1 ORDER BY saga, n",
    )
    .bind(LISTED)
    .fetch_all(pool)
    .await?
    {
        let name = entry(&mut sagas, row.try_get("saga")?);
        let problem = problem(&row)?;
        if let Some(s) = sagas.get_mut(&name) {
            s.failed_commands.push(problem);
        }
    }
    Ok(sagas.into_values().collect())
}

fn problem(row: &sqlx::postgres::PgRow) -> Result<FailingItem, SagaError> {
    Ok(FailingItem {
        id: row.try_get("id")?,
        instance_id: row.try_get("instance_id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
    })
}
