//! Durable timers: rows in `saga_timers`, fired by polling the injected clock.
//!
//! A pass, in one transaction: claims up to `batch` due timers of the saga
//! (`fired_at IS NULL AND due_at <= now ORDER BY due_at … FOR UPDATE SKIP LOCKED`), locks their
//! instances (also `SKIP LOCKED`: a timer whose instance another transaction holds waits for the
//! next pass, so a worker never waits on a lock and cannot deadlock with the runner), calls the
//! saga's `on_timer`, marks each timer fired and stores the new state, timers and commands.
//!
//! Timers are rows, so a timer due while no worker ran fires on the first pass after a restart.
//! Many workers (in one process or several) can share the table: `SKIP LOCKED` hands each due
//! timer to one of them, and marking it fired commits with its effects, so none fires twice.
//! Polling the clock rather than sleeping until a deadline makes a manual clock work.
//!
//! A failing `on_timer` leaves the timer unfired with its error, `attempts` and a wall-clock
//! `retry_after` (doubling up to five minutes), so it neither blocks nor starves the others.

use crate::error::SagaError;
use crate::saga::{FiredTimer, Saga};
use crate::store;
use chrono::{DateTime, Utc};
use event_store::clock::Clock;
use event_store::follower::error_chain;
use serde_json::Value;
use sqlx::{PgPool, Row};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerPass {
    /// Timers fired.
    pub fired: usize,
    /// Timers whose `on_timer` failed (left for a retry).
    pub failed: usize,
    /// Due timers left for the next pass because their instance was busy.
    pub deferred: usize,
}

/// Fires one saga's due timers.
#[derive(Debug)]
pub struct TimerWorker<S: Saga> {
    pool: PgPool,
    saga: Arc<S>,
    clock: Arc<dyn Clock>,
    poll: Duration,
    batch: i64,
}

impl<S: Saga + std::fmt::Debug> TimerWorker<S> {
    /// A worker for `saga`'s timers, telling time by `clock`.
    pub fn new(pool: PgPool, saga: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self {
            pool,
            saga,
            clock,
            poll: Duration::from_millis(200),
            batch: 100,
        }
    }

    /// Polls every `poll` instead of every 200 ms.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Fires at most `batch` timers per transaction instead of 100.
    pub fn with_batch(mut self, batch: u16) -> Self {
        self.batch = i64::from(batch.max(1));
        self
    }

    /// Runs passes until `stop` resolves. A full pass is followed at once by another.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let busy = match self.pass().await {
                Ok(pass) => pass.fired + pass.failed + pass.deferred >= self.batch as usize,
                Err(error) => {
                    tracing::warn!(saga = self.saga.name(), %error, "saga timer pass failed; retrying");
                    false
                }
            };
            if busy {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Fires the timers due now, in one transaction.
    pub async fn pass(&self) -> Result<TimerPass, SagaError> {
        let saga = &*self.saga;
        let name = saga.name();
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT timer_id, instance_id, name, due_at, payload, attempts FROM saga_timers
             WHERE saga = $1 AND fired_at IS NULL AND due_at <= $2
               AND (retry_after IS NULL OR retry_after <= now())
             ORDER BY due_at LIMIT $3
             FOR UPDATE SKIP LOCKED",
        )
        .bind(name)
        .bind(now)
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let attempts: i32 = row.try_get("attempts")?;
            due.push((
                FiredTimer {
                    timer_id: row.try_get::<Uuid, _>("timer_id")?,
                    instance_id: row.try_get("instance_id")?,
                    name: row.try_get("name")?,
                    due_at: row.try_get::<DateTime<Utc>, _>("due_at")?,
                    payload: row.try_get::<Value, _>("payload")?,
                },
                attempts,
            ));
        }
        if due.is_empty() {
            return Ok(TimerPass::default());
        }
        let mut ids: Vec<String> = due.iter().map(|(t, _)| t.instance_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut instances = store::lock_instances(&mut tx, name, &ids, true).await?;
        let mut pass = TimerPass::default();
        for (timer, attempts) in due {
            let Some(instance) = instances.get(&timer.instance_id) else {
                pass.deferred += 1;
                continue;
            };
            if instance.completed {
                mark_done(&mut tx, timer.timer_id, true).await?;
                continue;
            }
            let reaction = serde_json::from_value::<S::State>(instance.state.clone())
                .map_err(SagaError::from)
                .and_then(|state| saga.on_timer(state, &timer).map_err(SagaError::from))
                .and_then(store::encode);
            match reaction {
                Ok(reaction) => {
                    mark_done(&mut tx, timer.timer_id, false).await?;
                    store::store_reaction(
                        &mut tx,
                        name,
                        &timer.instance_id,
                        timer.timer_id,
                        &reaction,
                        None,
                    )
                    .await?;
                    instances.insert(
                        timer.instance_id.clone(),
                        store::Instance {
                            state: reaction.state,
                            completed: reaction.completed,
                            last: instance.last,
                        },
                    );
                    pass.fired += 1;
                }
                Err(error) => {
                    let text = error_chain(&error);
                    tracing::error!(saga = name, timer_id = %timer.timer_id, error = %text,
                        "saga timer failed; it will be retried");
                    let backoff_s = 2_i64.saturating_pow(attempts.clamp(0, 8) as u32).min(300);
                    sqlx::query(
                        "UPDATE saga_timers
                         SET attempts = attempts + 1, last_error = $2,
                             retry_after = now() + make_interval(secs => $3)
                         WHERE timer_id = $1",
                    )
                    .bind(timer.timer_id)
                    .bind(&text)
                    .bind(backoff_s as f64)
                    .execute(&mut *tx)
                    .await?;
                    pass.failed += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(pass)
    }
}

/// Marks a timer fired (or cancelled).
async fn mark_done(
    conn: &mut sqlx::PgConnection,
    timer_id: Uuid,
    cancelled: bool,
) -> Result<(), SagaError> {
    sqlx::query(
        "UPDATE saga_timers
         SET fired_at = now(), cancelled = $2, attempts = attempts + 1, last_error = NULL
         WHERE timer_id = $1",
    )
    .bind(timer_id)
    .bind(cancelled)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
