//! The load → decide → append loop's retry: when another writer got to a stream first, load
//! again and decide again, a bounded number of times.

use crate::error::AppendError;
use std::future::Future;

/// An error that says "someone else wrote first; try again with fresh state".
pub trait Conflict {
    /// Whether retrying with freshly loaded state may succeed.
    fn is_conflict(&self) -> bool;
}

impl Conflict for AppendError {
    fn is_conflict(&self) -> bool {
        matches!(self, AppendError::WrongExpectedVersion { .. })
    }
}

/// Runs `attempt` until it succeeds, fails with a non-conflict error, or has been tried
/// `max_attempts` times (the last conflict is returned).
pub async fn on_conflict<T, E, F, Fut>(max_attempts: u32, mut attempt: F) -> Result<T, E>
where
    E: Conflict,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut tried = 1;
    loop {
        match attempt(tried).await {
            Err(error) if error.is_conflict() && tried < max_attempts => {
                metrics::counter!("velka_append_conflicts_total").increment(1);
                tried += 1;
            }
            other => return other,
        }
    }
}
