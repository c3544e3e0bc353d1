//! Checkpoints: how far each projector has got, stored next to its rows and moved in the same
//! transaction.

use crate::projector::ProjectionError;
use event_store::LogPosition;
use sqlx::{PgConnection, PgPool, Row};

/// The projector's checkpoint, creating it at [`LogPosition::START`] the first time.
pub async fn load(pool: &PgPool, name: &str) -> Result<LogPosition, ProjectionError> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, transaction_id, position, updated_at)
         VALUES ($1, '0', 0, now())
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(pool)
    .await?;
    let row = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, position
         FROM projector_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    decode(&row)
}

/// Locks the checkpoint row for the rest of the transaction and returns it. Two runners of the
/// same projector thus take turns, and the second sees that the first moved the checkpoint.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    name: &str,
) -> Result<LogPosition, ProjectionError> {
    let row = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, position
         FROM projector_checkpoints WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => decode(&row),
        // Deleted under us (a manual reset): nothing matches what the runner expects.
        None => Ok(LogPosition::START),
    }
}

/// Moves the checkpoint (whose row [`lock`] holds) to `position`.
pub(crate) async fn save(
    conn: &mut PgConnection,
    name: &str,
    position: LogPosition,
) -> Result<(), ProjectionError> {
    let updated = sqlx::query(
        "UPDATE projector_checkpoints
         SET transaction_id = $2::text::xid8, position = $3, updated_at = now()
         WHERE name = $1",
    )
    .bind(name)
    .bind(position.transaction_id.to_string())
    .bind(position.position)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 1 {
        Ok(())
    } else {
        Err(ProjectionError::Inconsistent(format!(
            "checkpoint row of {name} disappeared"
        )))
    }
}

/// Moves the checkpoint from `from` to `to` in one statement, if it is still at `from`; `false`
/// when someone else moved it (another runner, a rebuild's switch).
pub(crate) async fn advance(
    pool: &PgPool,
    name: &str,
    from: LogPosition,
    to: LogPosition,
) -> Result<bool, ProjectionError> {
    let updated = sqlx::query(
        "UPDATE projector_checkpoints
         SET transaction_id = $4::text::xid8, position = $5, updated_at = now()
         WHERE name = $1 AND transaction_id = $2::text::xid8 AND position = $3",
    )
    .bind(name)
    .bind(from.transaction_id.to_string())
    .bind(from.position)
    .bind(to.transaction_id.to_string())
    .bind(to.position)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

fn decode(row: &sqlx::postgres::PgRow) -> Result<LogPosition, ProjectionError> {
    let transaction_id: i64 = row.try_get("transaction_id")?;
    Ok(LogPosition {
        transaction_id: u64::try_from(transaction_id).map_err(|_| {
            ProjectionError::Inconsistent(format!("negative transaction id {transaction_id}"))
        })?,
        position: row.try_get("position")?,
    })
}
