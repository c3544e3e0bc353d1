//! Sending the outbox: pending commands go out through a [`CommandSink`] after the transaction
//! that decided them, never inside one.
//!
//! A pass claims up to `batch` pending commands whose `next_attempt_at` has come (one short
//! statement, `FOR UPDATE SKIP LOCKED`, that also pushes `next_attempt_at` forward by the
//! `lease`, so another dispatcher leaves them alone while this one sends), sends each, then
//! marks it `sent`, or records the error and when to try again, or marks it `failed` when the
//! sink says that trying again cannot help. A dispatcher that dies while sending leaves the
//! command to be sent again when the lease ends: the command id is the `Idempotency-Key`, so the
//! command API answers the second send from the first and appends nothing.
//!
//! Retries and leases are wall-clock time (the database's `now()`), not the injected clock: a
//! manual clock standing still must not stop the outbox.

use crate::error::SagaError;
use crate::saga::OutboxCommand;
use event_store::follower::error_chain;
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::{PgPool, Row};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Where commands go: the binary implements it over the command API's in-process router, with
/// the command id as the `Idempotency-Key`. Sending the same command id twice must act once.
pub trait CommandSink: Send + Sync + std::fmt::Debug {
    /// Sends one command. `Ok` once the command API has answered it, whatever the answer (a
    /// refusal is the saga's business, and comes back as the absence or presence of events).
    fn send<'a>(&'a self, command: &'a OutboxCommand) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// Why a command was not sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again later (a timeout, an unavailable database, a 5xx).
    #[error("transient: {0}")]
    Transient(String),
    /// Trying again cannot help (an unknown command, a malformed payload): the command is
    /// marked `failed` and shown in the admin view.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// How a dispatcher polls and retries.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// How often to look for pending commands.
    pub poll: Duration,
    /// At most this many commands per pass.
    pub batch: u16,
    /// How long a claimed command is left to this dispatcher before another may send it.
    pub lease: Duration,
    /// The first wait after a transient failure; doubles per attempt.
    pub retry_initial: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(200),
            batch: 100,
            lease: Duration::from_secs(60),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchPass {
    /// Commands sent.
    pub sent: usize,
    /// Commands that failed transiently and will be retried.
    pub retrying: usize,
    /// Commands that failed for good.
    pub failed: usize,
}

/// Sends the outbox of every saga.
#[derive(Debug)]
pub struct Dispatcher {
    pool: PgPool,
    sink: Arc<dyn CommandSink>,
    config: DispatcherConfig,
}

impl Dispatcher {
    /// A dispatcher sending through `sink`.
    pub fn new(pool: PgPool, sink: Arc<dyn CommandSink>, config: DispatcherConfig) -> Self {
        Self { pool, sink, config }
    }

    /// Runs passes until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let busy = match self.pass().await {
                Ok(pass) => {
                    pass.sent + pass.retrying + pass.failed >= usize::from(self.config.batch)
                }
                Err(error) => {
                    tracing::warn!(%error, "saga dispatch pass failed; retrying");
                    false
                }
            };
            if busy {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// Sends the commands pending now.
    pub async fn pass(&self) -> Result<DispatchPass, SagaError> {
        let rows = sqlx::query(
            "UPDATE saga_commands SET attempts = attempts + 1,
                 next_attempt_at = now() + make_interval(secs => $2)
             WHERE command_id IN (
                 SELECT command_id FROM saga_commands
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             RETURNING command_id, saga, instance_id, name, payload, attempts, created_at",
        )
        .bind(i64::from(self.config.batch))
        .bind(self.config.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let mut commands = Vec::with_capacity(rows.len());
        for row in &rows {
            commands.push((
                row.try_get::<chrono::DateTime<chrono::Utc>, _>("created_at")?,
                OutboxCommand {
                    command_id: row.try_get::<Uuid, _>("command_id")?,
                    saga: row.try_get("saga")?,
                    instance_id: row.try_get("instance_id")?,
                    name: row.try_get("name")?,
                    payload: row.try_get::<Value, _>("payload")?,
                    attempt: row.try_get("attempts")?,
                },
            ));
        }
        // In the order they were decided.
        commands.sort_by_key(|(created_at, c)| (*created_at, c.command_id));
        let mut pass = DispatchPass::default();
        for (_, command) in commands {
            match self.sink.send(&command).await {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE saga_commands SET status = 'sent', sent_at = now(),
                             last_error = NULL
                         WHERE command_id = $1",
                    )
                    .bind(command.command_id)
                    .execute(&self.pool)
                    .await?;
                    pass.sent += 1;
                }
                Err(SinkError::Transient(reason)) => {
                    let exponent =
                        u32::try_from(command.attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
                    let wait = self
                        .config
                        .retry_initial
                        .saturating_mul(2_u32.saturating_pow(exponent))
                        .min(self.config.retry_max);
                    tracing::warn!(command_id = %command.command_id, saga = %command.saga,
                        attempt = command.attempt, %reason, "saga command not sent; will retry");
                    sqlx::query(
                        "UPDATE saga_commands SET last_error = $2,
                             next_attempt_at = now() + make_interval(secs => $3)
                         WHERE command_id = $1",
                    )
                    .bind(command.command_id)
                    .bind(error_chain(&SinkError::Transient(reason)))
                    .bind(wait.as_secs_f64())
                    .execute(&self.pool)
                    .await?;
                    pass.retrying += 1;
                }
                Err(error @ SinkError::Permanent(_)) => {
                    tracing::error!(command_id = %command.command_id, saga = %command.saga,
                        %error, "saga command failed for good");
                    sqlx::query(
                        "UPDATE saga_commands SET status = 'failed', last_error = $2
                         WHERE command_id = $1",
                    )
                    .bind(command.command_id)
                    .bind(error.to_string())
                    .execute(&self.pool)
                    .await?;
                    pass.failed += 1;
                }
            }
        }
        Ok(pass)
    }
}
