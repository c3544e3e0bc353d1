//! Transactions that append no events, so the log's readers need not wait for them.
//!
//! The log is delivered below a horizon, the oldest transaction still in flight (see `log`),
//! because such a transaction might yet commit events that sort before everything after it.
//! Yet most transactions in flight at any instant are followers' batches — a projector's rows
//! and checkpoint, a saga's reaction, the sealer's links — which write no events: under load one
//! is nearly always open (sampled at the peak: 7 in 10 times the horizon was a follower's batch
//! waiting for its next statement), and each held every newer event back from every reader
//! until it committed, so each follower's lag included the others' transactions.
//!
//! A *quiet* transaction says so when it starts: it sets `velka.quiet`, under which a trigger on
//! `events` refuses any insert, and registers its transaction id with this process's store as
//! soon as it has one (a follower's batch: from its first statement, the checkpoint's
//! compare-and-set). The log's readers in this process leave registered ids out of the
//! horizon. That is safe by construction: an id left out belongs to a transaction that cannot
//! append; an id registered late or dropped early only holds the log back, as before. Other
//! processes do not know this process's ids and still wait for them.

use crate::error::StoreError;
use sqlx::PgConnection;
use std::sync::{Arc, Mutex};

/// The ids of this process's quiet transactions in flight, shared by every clone of one store.
#[derive(Debug, Default)]
pub(crate) struct QuietSet {
    ids: Mutex<Vec<i64>>,
}

impl QuietSet {
    /// The ids registered now, for one read of the log.
    pub(crate) fn ids(&self) -> Vec<i64> {
        self.ids.lock().map(|ids| ids.clone()).unwrap_or_default()
    }

    fn insert(&self, id: i64) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.push(id);
        }
    }

    fn remove(&self, id: i64) {
        if let Ok(mut ids) = self.ids.lock()
            && let Some(at) = ids.iter().position(|&x| x == id)
        {
            ids.swap_remove(at);
        }
    }
}

/// A quiet transaction's registration; dropping it (after the commit or the rollback) takes the
/// id out again.
#[derive(Debug)]
#[must_use = "the transaction is quiet only while this is held"]
pub struct Quiet {
    set: Arc<QuietSet>,
    id: i64,
}

impl Drop for Quiet {
    fn drop(&mut self) {
        self.set.remove(self.id);
    }
}

/// What a statement runs to make its transaction quiet (a macro, so that the statements below
/// are built from it at compile time); [`register`] the transaction's id after.
macro_rules! guard {
    () => {
        "set_config('velka.quiet', 'on', true)"
    };
}

/// What a follower's batch sets besides: a batch paused in the middle (its process stopped or
/// cut off) is ended by the database after this long, so that the follower's next owner, whose
/// claim waits for the batch's lock on the checkpoint, can go on (see `lease`).
macro_rules! paused_batch_ends {
    () => {
        "set_config('idle_in_transaction_session_timeout', '5s', true)"
    };
}

/// Opens a quiet transaction.
pub(crate) const BEGIN: &str = concat!("BEGIN; SELECT ", guard!(), ", ", paused_batch_ends!());
/// Opens a quiet transaction whose commit does not wait for the disk.
pub(crate) const BEGIN_LAZY: &str = concat!(
    "BEGIN; SELECT ",
    guard!(),
    ", ",
    paused_batch_ends!(),
    ", set_config('synchronous_commit', 'off', true)"
);

/// Marks the transaction open on `tx` as quiet (see the module docs) and registers it in `set`.
pub(crate) async fn enter(tx: &mut PgConnection, set: &Arc<QuietSet>) -> Result<Quiet, StoreError> {
    let id: i64 = sqlx::query_scalar(concat!(
        "SELECT pg_current_xact_id()::text::bigint FROM ",
        guard!()
    ))
    .fetch_one(tx)
    .await?;
    Ok(register(set, id))
}

/// Registers `id`, the id of a transaction that has already run the guard, in `set`.
pub(crate) fn register(set: &Arc<QuietSet>, id: i64) -> Quiet {
    set.insert(id);
    Quiet {
        set: set.clone(),
        id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_registration_leaves_the_set() {
        let set = Arc::new(QuietSet::default());
        set.insert(7);
        let quiet = Quiet {
            set: set.clone(),
            id: 9,
        };
        set.insert(9);
        assert_eq!(set.ids(), vec![7, 9]);
        drop(quiet);
        assert_eq!(set.ids(), vec![7]);
    }
}
