//! `customer_keys`: one data key per customer, stored wrapped (encrypted with a key derived from
//! the server secret), destroyed on erasure. This module is the table's only writer.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use uuid::Uuid;

/// The customer's wrapped key, creating it (with `fresh`) if the customer has none. `None`
/// when the key was destroyed.
pub(crate) async fn get_or_create(
    pool: &PgPool,
    customer_id: Uuid,
    fresh: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    // The inserted row is not visible to the same statement's read of the table, hence the union.
    let row = sqlx::query(
        "WITH created AS (
             INSERT INTO customer_keys (customer_id, key, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (customer_id) DO NOTHING RETURNING key)
         SELECT key FROM created
         UNION ALL SELECT key FROM customer_keys WHERE customer_id = $1
         LIMIT 1",
    )
    .bind(customer_id)
    .bind(fresh)
    .bind(now)
    .fetch_one(pool)
    .await?;
    row.try_get::<Option<Vec<u8>>, _>("key")
}

/// The wrapped keys that still exist among these customers'.
pub(crate) async fn existing(
    pool: &PgPool,
    customer_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<u8>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT customer_id, key FROM customer_keys
         WHERE customer_id = ANY($1) AND key IS NOT NULL",
    )
    .bind(customer_ids)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("customer_id")?, row.try_get("key")?)))
        .collect()
}

/// Destroys the customer's key, recording who, why and when (a customer registered before
/// keys existed gets a row saying so).
pub(crate) async fn destroy(
    conn: &mut PgConnection,
    customer_id: Uuid,
    at: DateTime<Utc>,
    by: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customer_keys (customer_id, key, created_at, erased_at, erased_by, reason)
         VALUES ($1, NULL, $2, $2, $3, $4)
         ON CONFLICT (customer_id) DO UPDATE
         SET key = NULL, erased_at = $2, erased_by = $3, reason = $4",
    )
    .bind(customer_id)
    .bind(at)
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}
