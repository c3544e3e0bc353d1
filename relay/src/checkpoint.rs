//! The relay's checkpoint: the last event whose publish JetStream acknowledged, in delivery
//! order. Its own table (`relay_checkpoints`), the same position type as the projectors'.

use crate::error::RelayError;
use event_store::LogPosition;
use sqlx::{PgPool, Row};

/// The checkpoint named `name`, created at [`LogPosition::START`] the first time.
pub async fn load(pool: &PgPool, name: &str) -> Result<LogPosition, RelayError> {
    sqlx::query(
        "INSERT INTO relay_checkpoints (name, transaction_id, position, updated_at)
         VALUES ($1, '0', 0, now())
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(pool)
    .await?;
    let row = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, position
         FROM relay_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => decode(name, &row),
        // Deleted between the insert and the select (a manual reset): start over.
        None => Ok(LogPosition::START),
    }
}

/// Moves the checkpoint from `expected` to `to`. Compare-and-set: if another relay of the same
/// name moved it meanwhile, nothing changes and the caller starts again from what is stored.
pub async fn advance(
    pool: &PgPool,
    name: &str,
    expected: LogPosition,
    to: LogPosition,
) -> Result<(), RelayError> {
    let updated = sqlx::query(
        "UPDATE relay_checkpoints
         SET transaction_id = $4::text::xid8, position = $5, updated_at = now()
         WHERE name = $1 AND transaction_id = $2::text::xid8 AND position = $3",
    )
    .bind(name)
    .bind(expected.transaction_id.to_string())
    .bind(expected.position)
    .bind(to.transaction_id.to_string())
    .bind(to.position)
    .execute(pool)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    let found = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, position
         FROM relay_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?
    .map(|row| decode(name, &row))
    .transpose()?;
    Err(RelayError::CheckpointMoved {
        name: name.to_owned(),
        expected,
        found,
    })
}

fn decode(name: &str, row: &sqlx::postgres::PgRow) -> Result<LogPosition, RelayError> {
    let transaction_id: i64 = row.try_get("transaction_id")?;
    let transaction_id = u64::try_from(transaction_id)
        .map_err(|_| RelayError::CorruptCheckpoint(name.to_owned()))?;
    Ok(LogPosition {
        transaction_id,
        position: row.try_get("position")?,
    })
}
