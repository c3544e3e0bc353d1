//! The SQL the runtime shares: instances, and storing a reaction. (The checkpoint is the
//! follower module's.)

use crate::error::SagaError;
use crate::saga::Reaction;
use event_store::LogPosition;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use uuid::Uuid;

/// The id of the `index`-th command (`kind` = `"command"`) or timer (`kind` = `"timer"`) that
/// `saga`'s instance `instance_id` decided in reaction to `cause` (an event id or a timer id).
///
/// The same inputs always give the same id, so deciding again (a replay) cannot add a second
/// command or timer. A UUID of version 8 whose bits are the first 122 of a SHA-256 of the inputs.
pub fn derived_id(saga: &str, instance_id: &str, cause: Uuid, kind: &str, index: usize) -> Uuid {
    let mut digest = Sha256::new();
    for part in [
        b"velka-saga".as_slice(),
        saga.as_bytes(),
        instance_id.as_bytes(),
        cause.as_bytes().as_slice(),
        kind.as_bytes(),
        index.to_string().as_bytes(),
    ] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let hash = digest.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn decode_position(
    row: &PgRow,
    transaction_column: &str,
    position_column: &str,
) -> Result<Option<LogPosition>, SagaError> {
    let transaction_id: Option<i64> = row.try_get(transaction_column)?;
    let position: Option<i64> = row.try_get(position_column)?;
    match (transaction_id, position) {
        (Some(transaction_id), Some(position)) => Ok(Some(LogPosition {
            transaction_id: u64::try_from(transaction_id).map_err(|_| {
                SagaError::Inconsistent(format!("negative transaction id {transaction_id}"))
            })?,
            position,
        })),
        _ => Ok(None),
    }
}

/// An instance as stored.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    pub state: Value,
    pub completed: bool,
    /// The last event it reacted to.
    pub last: Option<LogPosition>,
}

/// Loads and locks the saga's instances among `ids`, in instance id order (so that every
/// transaction locks them in the same order and none deadlocks). With `skip_locked`, instances
/// another transaction holds are left out instead of waited for.
pub(crate) async fn lock_instances(
    conn: &mut PgConnection,
    saga: &str,
    ids: &[String],
    skip_locked: bool,
) -> Result<HashMap<String, Instance>, SagaError> {
    let sql = format!(
        "SELECT instance_id, state, status,
                last_transaction_id::text::bigint AS last_transaction_id, last_position
         FROM saga_instances WHERE saga = $1 AND instance_id = ANY($2)
         ORDER BY instance_id FOR UPDATE{}",
        if skip_locked { " SKIP LOCKED" } else { "" }
    );
    let rows = sqlx::query(&sql)
        .bind(saga)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut instances = HashMap::with_capacity(rows.len());
    for row in &rows {
        let status: String = row.try_get("status")?;
        instances.insert(
            row.try_get("instance_id")?,
            Instance {
                state: row.try_get("state")?,
                completed: status == "completed",
                last: decode_position(row, "last_transaction_id", "last_position")?,
            },
        );
    }
    Ok(instances)
}

/// Stores a reaction of `instance_id` to `cause`: the state (and `position`, the event reacted
/// to, if it was one), the timers to cancel and set, and the commands in the outbox. Deciding
/// the same reaction to the same cause again adds no command and no timer.
pub(crate) async fn store_reaction(
    conn: &mut PgConnection,
    saga: &str,
    instance_id: &str,
    cause: Uuid,
    reaction: &Reaction<Value>,
    position: Option<LogPosition>,
) -> Result<(), SagaError> {
    sqlx::query(
        "INSERT INTO saga_instances
             (saga, instance_id, state, status, version, last_transaction_id, last_position,
              updated_at)
         VALUES ($1, $2, $3, $4, 1, $5::text::xid8, $6, now())
         ON CONFLICT (saga, instance_id) DO UPDATE SET
             state = EXCLUDED.state,
             status = EXCLUDED.status,
             version = saga_instances.version + 1,
             last_transaction_id = coalesce(EXCLUDED.last_transaction_id,
                                            saga_instances.last_transaction_id),
             last_position = coalesce(EXCLUDED.last_position, saga_instances.last_position),
             updated_at = now()",
    )
    .bind(saga)
    .bind(instance_id)
    .bind(&reaction.state)
    .bind(if reaction.completed {
        "completed"
    } else {
        "active"
    })
    .bind(position.map(|p| p.transaction_id.to_string()))
    .bind(position.map(|p| p.position))
    .execute(&mut *conn)
    .await?;

    let timer_ids: Vec<Uuid> = (0..reaction.set_timers.len())
        .map(|index| derived_id(saga, instance_id, cause, "timer", index))
        .collect();
    // A new timer replaces a pending one of the same name; a completed instance waits for none.
    // The timers of this very reaction are kept, so deciding it again does not cancel them.
    let mut cancel: Vec<String> = reaction.cancel_timers.clone();
    cancel.extend(reaction.set_timers.iter().map(|t| t.name.clone()));
    if !cancel.is_empty() || reaction.completed {
        sqlx::query(
            "UPDATE saga_timers SET fired_at = now(), cancelled = true
             WHERE saga = $1 AND instance_id = $2 AND fired_at IS NULL
               AND ($3 OR name = ANY($4)) AND timer_id <> ALL($5)",
        )
        .bind(saga)
        .bind(instance_id)
        .bind(reaction.completed)
        .bind(&cancel)
        .bind(&timer_ids)
        .execute(&mut *conn)
        .await?;
    }
    if !reaction.completed {
        for (timer, timer_id) in reaction.set_timers.iter().zip(&timer_ids) {
            sqlx::query(
                "INSERT INTO saga_timers
                     (timer_id, saga, instance_id, name, due_at, payload, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now())
                 ON CONFLICT (timer_id) DO NOTHING",
            )
            .bind(timer_id)
            .bind(saga)
            .bind(instance_id)
            .bind(&timer.name)
            .bind(timer.due_at)
            .bind(&timer.payload)
            .execute(&mut *conn)
            .await?;
        }
    }
    for (index, command) in reaction.commands.iter().enumerate() {
        sqlx::query(
            "INSERT INTO saga_commands
                 (command_id, saga, instance_id, name, payload, status, next_attempt_at,
                  created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', now(), now())
             ON CONFLICT (command_id) DO NOTHING",
        )
        .bind(derived_id(saga, instance_id, cause, "command", index))
        .bind(saga)
        .bind(instance_id)
        .bind(&command.name)
        .bind(&command.payload)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A reaction with its state encoded as JSON.
pub(crate) fn encode<S: serde::Serialize>(
    reaction: Reaction<S>,
) -> Result<Reaction<Value>, SagaError> {
    Ok(Reaction {
        state: serde_json::to_value(reaction.state)?,
        completed: reaction.completed,
        commands: reaction.commands,
        set_timers: reaction.set_timers,
        cancel_timers: reaction.cancel_timers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_depend_on_every_input_and_nothing_else() {
        let cause = Uuid::from_u128(42);
        let id = derived_id("payment", "trip-1", cause, "command", 0);
        assert_eq!(id, derived_id("payment", "trip-1", cause, "command", 0));
        assert_eq!(id.get_version_num(), 8);
        for other in [
            derived_id("payments", "trip-1", cause, "command", 0),
            derived_id("payment", "trip-2", cause, "command", 0),
            derived_id("payment", "trip-1", Uuid::from_u128(43), "command", 0),
            derived_id("payment", "trip-1", cause, "timer", 0),
            derived_id("payment", "trip-1", cause, "command", 1),
            // Length-prefixed parts: moving a boundary changes the id.
            derived_id("paymen", "ttrip-1", cause, "command", 0),
        ] {
            assert_ne!(id, other);
        }
    }
}
