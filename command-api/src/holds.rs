//! Card holds the trip start could not confirm, kept until a trip takes them or they are let go,
//! so that no hold outlives the start it was made for.
//!
//! A start holds money on the card before it appends the trip, with a hold key derived from the
//! client's `Idempotency-Key`. When the gateway does not answer the hold (a timeout, a 5xx, on
//! every try), the hold may or may not exist. The route then notes it in `uncertain_holds` and
//! answers 503; a retry with the same key asks the gateway again with the same hold key, gets the
//! same hold back, and starts the trip with it (the sweeper later finds the hold on the account
//! and clears the note, so a start does no extra write). When the key's
//! answer turns out to be a refusal instead (the customer was blocked between the tries), the
//! route lets the hold go at once ([`release_refused`]); and the [`HoldSweeper`] lets go of any
//! hold still noted after a grace period with no trip holding it (the client gave up). A hold
//! made by a start that then did not happen is released at once and noted released
//! ([`note_released`]) when the start's answer is final (a recorded refusal, or no client key to
//! retry with); when the app may still retry (a 503, a concurrency conflict), it is noted as
//! uncertain instead, so the retry can take it, as it is when the release fails.
//!
//! Letting go asks the gateway for the hold with the same key first: it answers with the hold it
//! made, or, if the first request never reached it, makes one; either way the hold is then
//! cancelled, so both cases end with nothing held. The note stays, marked released, for
//! [`KEEP_RELEASED`]: a gateway answers a repeated key with its first answer (a hold) even after
//! the hold was released, so a start retried that late is refused by [`released`] instead.

use crate::{CommandContext, HoldError, Payments};
use chrono::Duration as TimeDelta;
use domain::account::AccountId;
use domain::ids::{CustomerId, TripId};
use domain::money::Kopecks;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// How long a noted hold is left for the client's retry before the sweeper lets it go.
pub const DEFAULT_GRACE: TimeDelta = TimeDelta::minutes(10);
/// How often the sweeper looks (one indexed read of a table that is almost always empty).
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// How long a released hold's note stays to refuse late retries of its start (longer than a
/// gateway keeps idempotence keys).
pub const KEEP_RELEASED: TimeDelta = TimeDelta::days(2);
/// The most holds settled in one pass.
const BATCH: i64 = 100;

/// A hold whose outcome is not known.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UncertainHold {
    pub hold_key: String,
    pub customer_id: Uuid,
    pub trip_id: Uuid,
    pub amount_kopecks: i64,
}

/// Notes that the hold `key` may exist at the gateway. A note that cannot be written is logged:
/// the same database failure would have refused the start anyway.
pub(crate) async fn note(
    context: &CommandContext,
    key: &str,
    customer_id: CustomerId,
    trip_id: TripId,
    amount: Kopecks,
) {
    write_note(context, key, customer_id, trip_id, amount, false).await;
}

/// Notes that the start let the hold `key` go itself (it lost its race after holding), so that
/// a retry with the same key is refused rather than given the released hold.
pub(crate) async fn note_released(
    context: &CommandContext,
    key: &str,
    customer_id: CustomerId,
    trip_id: TripId,
    amount: Kopecks,
) {
    write_note(context, key, customer_id, trip_id, amount, true).await;
}

/// Writes a note, released now or not; an existing note stays, and only becomes released.
async fn write_note(
    context: &CommandContext,
    key: &str,
    customer_id: CustomerId,
    trip_id: TripId,
    amount: Kopecks,
    released: bool,
) {
    let now = context.clock.now();
    let noted = sqlx::query(
        "INSERT INTO uncertain_holds
             (hold_key, customer_id, trip_id, amount_kopecks, noted_at, released_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (hold_key) DO UPDATE
             SET released_at = coalesce(uncertain_holds.released_at, excluded.released_at)",
    )
    .bind(key)
    .bind(customer_id.0)
    .bind(trip_id.0)
    .bind(amount.get())
    .bind(now)
    .bind(released.then_some(now))
    .execute(context.store.pool())
    .await;
    if let Err(error) = noted {
        tracing::error!(%key, %error, released, "a card hold could not be noted");
    }
}

/// Clears the note of a hold a trip took.
async fn taken(context: &CommandContext, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM uncertain_holds WHERE hold_key = $1")
        .bind(key)
        .execute(context.store.pool())
        .await?;
    Ok(())
}

/// Whether the hold `key` was let go: a start retried with its key must not take it.
pub(crate) async fn released(context: &CommandContext, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM uncertain_holds
                        WHERE hold_key = $1 AND released_at IS NOT NULL)",
    )
    .bind(key)
    .fetch_one(context.store.pool())
    .await
}

/// After a start answered anything but 201 without holding: if a hold is noted for `key` and the
/// start's answer under the client's key is now a recorded refusal (so no retry will ever take
/// the hold), lets it go.
pub(crate) async fn release_refused(
    context: &CommandContext,
    payments: &Payments,
    scope: &str,
    client_key: &str,
    key: &str,
) {
    let noted = match find(context, key).await {
        Ok(Some(noted)) => noted,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%key, %error, "could not look for a noted hold");
            return;
        }
    };
    if refused_for_good(context, scope, client_key).await
        && let Err(error) = let_go(context, payments, &noted).await
    {
        tracing::warn!(%key, %error, "a refused start's hold was not released; the sweeper will retry");
    }
}

/// Whether the start's answer under the client's key is a recorded refusal, so no retry will
/// ever take its hold (a 503 or a concurrency conflict is not recorded: the app retries those).
/// When it cannot be read, the answer is taken as not final, which only delays a release.
pub(crate) async fn refused_for_good(
    context: &CommandContext,
    scope: &str,
    client_key: &str,
) -> bool {
    match context.store.find_result(scope, client_key).await {
        Ok(Some(stored)) => stored.status != 201,
        Ok(None) => false,
        Err(error) => {
            tracing::warn!(%client_key, %error, "could not read the start's answer");
            false
        }
    }
}

async fn find(context: &CommandContext, key: &str) -> Result<Option<UncertainHold>, sqlx::Error> {
    sqlx::query_as(
        "SELECT hold_key, customer_id, trip_id, amount_kopecks FROM uncertain_holds
         WHERE hold_key = $1 AND released_at IS NULL",
    )
    .bind(key)
    .fetch_optional(context.store.pool())
    .await
}

/// Why a noted hold was not let go.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the gateway: {0}")]
    Gateway(#[from] HoldError),
}

/// Asks the gateway for the hold with its key (getting the one it made, or a new one) and
/// cancels it; then marks the note released.
async fn let_go(
    context: &CommandContext,
    payments: &Payments,
    noted: &UncertainHold,
) -> Result<(), SettleError> {
    let held = payments
        .holds
        .hold(
            &noted.hold_key,
            CustomerId(noted.customer_id),
            TripId(noted.trip_id),
            Kopecks(noted.amount_kopecks),
        )
        .await;
    match held {
        Ok(payment_id) => {
            let release_key = format!("release-{}", noted.hold_key);
            payments.holds.release(&payment_id, &release_key).await?;
        }
        // Declined, or released before: the gateway holds nothing for the key.
        Err(HoldError::Declined(_) | HoldError::Settled(_)) => {}
        Err(error) => return Err(error.into()),
    }
    sqlx::query("UPDATE uncertain_holds SET released_at = $2 WHERE hold_key = $1")
        .bind(&noted.hold_key)
        .bind(context.clock.now())
        .execute(context.store.pool())
        .await?;
    metrics::counter!("velka_uncertain_holds_released_total").increment(1);
    Ok(())
}

/// Whether a trip holds the hold `key`: the customer's account recorded it.
async fn taken_by_a_trip(
    context: &CommandContext,
    noted: &UncertainHold,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1
                        AND event_type = 'PaymentHeld' AND data->>'key' = $2)",
    )
    .bind(AccountId::Customer(CustomerId(noted.customer_id)).stream_id())
    .bind(&noted.hold_key)
    .fetch_one(context.store.pool())
    .await
}

/// Lets go of holds noted longer than the grace period ago that no trip took.
#[derive(Debug)]
pub struct HoldSweeper {
    context: CommandContext,
    poll: Duration,
    grace: TimeDelta,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepPass {
    /// Holds cancelled at the gateway (or found never made).
    pub released: usize,
    /// Notes cleared because a trip holds the hold.
    pub taken: usize,
    /// Holds the gateway did not answer for; tried again next pass.
    pub failed: usize,
}

impl HoldSweeper {
    /// A sweeper over `context`'s database and gateway, by its clock.
    pub fn new(context: CommandContext) -> Self {
        Self {
            context,
            poll: DEFAULT_POLL,
            grace: DEFAULT_GRACE,
        }
    }

    /// Looks every `poll` instead of the default.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Leaves a noted hold this long for the client's retry instead of the default.
    pub fn with_grace(mut self, grace: TimeDelta) -> Self {
        self.grace = grace;
        self
    }

    /// Runs passes until `stop` resolves. Without a gateway there is nothing to sweep.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        if self.context.payments.is_none() {
            return;
        }
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "uncertain hold sweep failed; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Settles the noted holds past the grace period (up to a batch).
    pub async fn pass(&self) -> Result<SweepPass, sqlx::Error> {
        let mut pass = SweepPass::default();
        let Some(payments) = &self.context.payments else {
            return Ok(pass);
        };
        let now = self.context.clock.now();
        sqlx::query("DELETE FROM uncertain_holds WHERE released_at < $1")
            .bind(now - KEEP_RELEASED)
            .execute(self.context.store.pool())
            .await?;
        let due: Vec<UncertainHold> = sqlx::query_as(
            "SELECT hold_key, customer_id, trip_id, amount_kopecks FROM uncertain_holds
             WHERE released_at IS NULL AND noted_at <= $1 ORDER BY noted_at LIMIT $2",
        )
        .bind(now - self.grace)
        .bind(BATCH)
        .fetch_all(self.context.store.pool())
        .await?;
        for noted in due {
            if taken_by_a_trip(&self.context, &noted).await? {
                taken(&self.context, &noted.hold_key).await?;
                pass.taken += 1;
                continue;
            }
            match let_go(&self.context, payments, &noted).await {
                Ok(()) => pass.released += 1,
                Err(SettleError::Database(error)) => return Err(error),
                Err(SettleError::Gateway(error)) => {
                    tracing::debug!(key = %noted.hold_key, %error, "an uncertain hold is not settled yet");
                    pass.failed += 1;
                }
            }
        }
        Ok(pass)
    }
}
