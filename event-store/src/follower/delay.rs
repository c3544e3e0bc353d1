//! When a follower of the log must save a checkpoint it let fall behind.
//!
//! A follower moves past a batch that holds nothing of its categories without opening a
//! transaction (otherwise every event would cost each of them one); their stored checkpoint then
//! stays behind them until [`CheckpointDelay`] says the save is due — `delay` after the first
//! unsaved batch — or until they save it with a batch they apply. A crash in between only means
//! reading the skipped events again and skipping them again.

use std::time::Duration;
use tokio::time::Instant;

/// Tracks since when a follower's stored checkpoint has been behind it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckpointDelay {
    delay: Duration,
    behind_since: Option<Instant>,
}

impl CheckpointDelay {
    /// Saves are due `delay` after the first batch moved past without one.
    pub(crate) fn new(delay: Duration) -> Self {
        Self {
            delay,
            behind_since: None,
        }
    }

    /// The follower moved past a batch without saving its checkpoint. Returns whether the save
    /// is due now.
    pub(crate) fn skipped(&mut self) -> bool {
        let since = *self.behind_since.get_or_insert_with(Instant::now);
        since.elapsed() >= self.delay
    }

    /// The stored checkpoint is where the follower is (it was saved, or loaded).
    pub(crate) fn caught_up(&mut self) {
        self.behind_since = None;
    }

    /// Whether the stored checkpoint is behind the follower.
    pub(crate) fn is_behind(&self) -> bool {
        self.behind_since.is_some()
    }

    /// Resolves when the save is due; never while the stored checkpoint is not behind. For a
    /// `select!` beside the next batch.
    pub(crate) async fn due(&self) {
        match self.behind_since {
            Some(since) => tokio::time::sleep_until(since + self.delay).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_save_falls_due_a_delay_after_the_first_skipped_batch() {
        let mut delay = CheckpointDelay::new(Duration::from_millis(50));
        assert!(!delay.is_behind());
        // Nothing skipped: never due.
        let idle = tokio::time::timeout(Duration::from_millis(80), delay.due()).await;
        assert!(idle.is_err(), "no save is due while nothing was skipped");

        let started = Instant::now();
        assert!(!delay.skipped(), "not due at the first skip");
        assert!(delay.is_behind());
        delay.due().await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(delay.skipped(), "due once the delay has passed");

        delay.caught_up();
        assert!(!delay.is_behind());
        assert!(!delay.skipped(), "a new delay starts after a save");
    }
}
