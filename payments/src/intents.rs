//! Hold intents (`hold_intents`): a card hold is noted before the gateway is asked for it, so
//! that whatever instant the process dies at, a restart finds every hold whose outcome it does
//! not know.
//!
//! A row's life: [`note`] before the hold is asked for (`release_from` = now + the grace period
//! left for the app's retry); [`taken`] deletes it once a trip holds the hold; otherwise, from
//! `release_from` on, the sweeper lets the hold go and [`mark_released`] keeps the row as a
//! tombstone for [`KEEP_RELEASED`] (a late retry is refused before it asks the gateway, which
//! would answer its key with the first answer, a hold, even after the cancel). [`release_now`]
//! makes a row due at once when a start's refusal is final.

use chrono::{DateTime, Duration as TimeDelta, Utc};
use domain::ids::{CustomerId, TripId};
use domain::money::Kopecks;
use sqlx::PgPool;
use uuid::Uuid;

/// How long a released hold's row stays to refuse late retries of its start (longer than a
/// gateway keeps idempotence keys).
pub const KEEP_RELEASED: TimeDelta = TimeDelta::days(2);

/// A noted hold.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldIntent {
    pub hold_key: String,
    pub customer_id: Uuid,
    pub trip_id: Uuid,
    pub amount_kopecks: i64,
    pub noted_at: DateTime<Utc>,
    /// From when the sweeper lets it go unless a trip took it.
    pub release_from: DateTime<Utc>,
    /// Why it is due now rather than after the grace period (`start_refused`), if so.
    pub release_reason: Option<String>,
    /// Whether the hold was asked for with its key in the metadata (all but holds noted before
    /// the intents existed).
    pub with_metadata: bool,
    /// When it was let go (a tombstone), if it was.
    pub released_at: Option<DateTime<Utc>>,
}

impl HoldIntent {
    pub fn customer(&self) -> CustomerId {
        CustomerId(self.customer_id)
    }

    pub fn trip(&self) -> TripId {
        TripId(self.trip_id)
    }

    pub fn amount(&self) -> Kopecks {
        Kopecks(self.amount_kopecks)
    }
}

const COLUMNS: &str = "hold_key, customer_id, trip_id, amount_kopecks, noted_at, release_from, \
                       release_reason, with_metadata, released_at";

/// A hold about to be asked for.
#[derive(Clone, Debug)]
pub struct NewIntent<'a> {
    pub hold_key: &'a str,
    pub customer_id: CustomerId,
    pub trip_id: TripId,
    pub amount: Kopecks,
    pub now: DateTime<Utc>,
    pub grace: TimeDelta,
}

/// Notes a hold before it is asked for, and answers the row as it now stands: the new one, or
/// the one an earlier try with the same key wrote (which wins: its request is the one the
/// gateway knows). One statement, committed before the gateway is called.
pub async fn note(pool: &PgPool, intent: &NewIntent<'_>) -> Result<HoldIntent, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO hold_intents
             (hold_key, customer_id, trip_id, amount_kopecks, noted_at, release_from, with_metadata)
         VALUES ($1, $2, $3, $4, $5, $6, true)
         ON CONFLICT (hold_key) DO UPDATE SET hold_key = hold_intents.hold_key
         RETURNING {COLUMNS}"
    ))
    .bind(intent.hold_key)
    .bind(intent.customer_id.0)
    .bind(intent.trip_id.0)
    .bind(intent.amount.get())
    .bind(intent.now)
    .bind(intent.now + intent.grace)
    .fetch_one(pool)
    .await
}

/// The row of `hold_key`, if any.
pub async fn find(pool: &PgPool, hold_key: &str) -> Result<Option<HoldIntent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hold_intents WHERE hold_key = $1"
    ))
    .bind(hold_key)
    .fetch_optional(pool)
    .await
}

/// A trip took the hold: nothing is left to settle.
pub async fn taken(pool: &PgPool, hold_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM hold_intents WHERE hold_key = $1 AND released_at IS NULL")
        .bind(hold_key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Nothing was held for the key (the card was declined): nothing to settle.
pub async fn nothing_held(pool: &PgPool, hold_key: &str) -> Result<(), sqlx::Error> {
    taken(pool, hold_key).await
}

/// Makes a pending hold due now, for `reason`: written before the release begins, so a crash
/// in the middle of it is picked up by the sweeper's next pass, not after the grace period.
pub async fn release_now(
    pool: &PgPool,
    hold_key: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE hold_intents SET release_from = least(release_from, $2), release_reason = $3
         WHERE hold_key = $1 AND released_at IS NULL",
    )
    .bind(hold_key)
    .bind(now)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// The hold was let go (cancelled at the gateway, or found never made): the row stays as a
/// tombstone.
pub async fn mark_released(
    pool: &PgPool,
    hold_key: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE hold_intents SET released_at = $2 WHERE hold_key = $1")
        .bind(hold_key)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Pending holds due by `now`, oldest first, at most `limit`.
pub async fn due(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<HoldIntent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hold_intents
         WHERE released_at IS NULL AND release_from <= $1
         ORDER BY release_from LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every pending hold, and those released since `released_since` (for the money audit: holds
/// Velka knows of and will settle, or has just let go — a gateway listing read a moment
/// before may still show them held).
pub async fn unsettled(
    pool: &PgPool,
    released_since: DateTime<Utc>,
) -> Result<Vec<HoldIntent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hold_intents
         WHERE released_at IS NULL OR released_at >= $1 ORDER BY noted_at"
    ))
    .bind(released_since)
    .fetch_all(pool)
    .await
}

/// Which of `keys` have a pending row.
pub async fn pending_among(pool: &PgPool, keys: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT hold_key FROM hold_intents WHERE released_at IS NULL AND hold_key = ANY($1)",
    )
    .bind(keys)
    .fetch_all(pool)
    .await
}

/// Forgets tombstones older than [`KEEP_RELEASED`].
pub async fn forget_released(pool: &PgPool, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM hold_intents WHERE released_at < $1")
        .bind(now - KEEP_RELEASED)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
