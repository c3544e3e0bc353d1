//! The reservation expiry worker: a durable timer without a timer table.
//!
//! Each reservation's deadline is in its `ReservationMade` event, and `reservations_view` (a
//! read model rebuilt from the log) lists the active ones with their deadlines. Every
//! `poll` (200 ms by default) the worker asks the injected clock for now, reads the active
//! reservations whose deadline has passed, and sends each an `Expire` through the command
//! pipeline ([`crate::routes::expire_reservation`]), which decides on the reservation's own
//! stream. Nothing lives only in memory: after a restart, a fresh worker finds the same due
//! reservations; expiring one twice (two workers, or a retry) is refused by the decider and
//! appends nothing. Polling the clock, rather than sleeping until a deadline, makes a manual
//! clock moved by `POST /v1/admin/clock` take effect within one poll.

use crate::CommandContext;
use crate::routes::expire_reservation;
use domain::ids::ReservationId;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Sends `Expire` to one reservation now, through the pipeline, as the worker does.
pub async fn expire_now(
    context: &CommandContext,
    reservation_id: ReservationId,
) -> axum::response::Response {
    expire_reservation(context, reservation_id).await
}

/// How often the worker looks for due reservations.
pub const DEFAULT_POLL: Duration = Duration::from_millis(200);
/// The most reservations expired in one pass; the rest wait for the next.
const BATCH: i64 = 100;
/// How long a reservation whose expiry was refused is left alone before it is tried again (a
/// read model that has not yet seen its end, or a car whose history disagrees).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Expires reservations whose deadline has passed.
#[derive(Debug)]
pub struct ExpiryWorker {
    context: CommandContext,
    poll: Duration,
    /// Reservations refused recently, and when they may be tried again.
    backoff: HashMap<Uuid, Instant>,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Reservations expired.
    pub expired: usize,
    /// Reservations whose expiry was refused or failed.
    pub refused: usize,
}

impl ExpiryWorker {
    /// A worker that sends its commands with `context`.
    pub fn new(context: CommandContext) -> Self {
        Self {
            context,
            poll: DEFAULT_POLL,
            backoff: HashMap::new(),
        }
    }

    /// Polls every `poll` instead of the default.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Runs passes until `stop` resolves.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "reservation expiry pass failed; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Expires every due reservation it finds (up to a batch).
    pub async fn pass(&mut self) -> Result<Pass, sqlx::Error> {
        let now = self.context.clock.now();
        let started = Instant::now();
        self.backoff.retain(|_, until| *until > started);
        let skipped: Vec<Uuid> = self.backoff.keys().copied().collect();
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT reservation_id FROM reservations_view
             WHERE status = 'active' AND expires_at <= $1 AND reservation_id <> ALL($2)
             ORDER BY expires_at LIMIT $3",
        )
        .bind(now)
        .bind(&skipped)
        .bind(BATCH)
        .fetch_all(self.context.store.pool())
        .await?;
        let mut pass = Pass::default();
        for id in due {
            let response = expire_reservation(&self.context, ReservationId(id)).await;
            if response.status().is_success() {
                metrics::counter!("velka_reservations_expired_total").increment(1);
                pass.expired += 1;
            } else {
                tracing::debug!(reservation_id = %id, status = %response.status(), "expiry refused");
                self.backoff.insert(id, started + RETRY_AFTER);
                pass.refused += 1;
            }
        }
        Ok(pass)
    }
}
