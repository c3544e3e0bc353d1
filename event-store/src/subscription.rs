//! Following the log: catch up from a checkpoint, then keep up with live appends.
//!
//! A subscription at or past the start of the process's shared [`tail`](crate::tail) takes its
//! batches from memory; one further behind (a projector catching up, a rebuild) reads the
//! database page by page until it gets there. Appends made through any [`EventStore`] clone in
//! this process wake the tail, and so the subscriptions, at once; appends from other processes
//! are picked up by polling. Either way every event comes from [`EventStore::read_log`]'s
//! gap-free order, so a wake-up is only a hint and can never cause a skip.

use crate::EventStore;
use crate::error::StoreError;
use crate::model::{LogPosition, RecordedEvent};
use crate::tail::Served;
use std::time::Duration;
use tokio::sync::watch;

/// How long to wait before looking again when committed events are held back by an older
/// transaction still in flight: such transactions are short, so look again soon.
const HELD_BACK_RETRY: Duration = Duration::from_millis(2);

/// A reader that hands out the log in delivery order, batch by batch.
#[derive(Debug)]
pub struct Subscription {
    store: EventStore,
    after: LogPosition,
    batch_size: u32,
    idle_poll: Duration,
    /// Local appends.
    wake: watch::Receiver<u64>,
    /// The shared tail moved.
    tail_moved: watch::Receiver<u64>,
    /// Whether the last read of the database found committed events held back by an in-flight
    /// transaction.
    held_back: bool,
}

impl EventStore {
    /// Follows the log from just after `after`.
    pub fn subscribe(&self, after: LogPosition) -> Subscription {
        self.tail.start(
            &self.pool,
            &self.appended,
            self.idle_poll,
            self.announcer.token(),
            &self.quiet,
        );
        Subscription {
            store: self.clone(),
            after,
            batch_size: 500,
            idle_poll: self.idle_poll,
            wake: self.appended.subscribe(),
            tail_moved: self.tail.watch(),
            held_back: false,
        }
    }
}

impl Subscription {
    /// At most this many events per batch (at least 1).
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How often to look for appends made by other processes.
    pub fn with_idle_poll(mut self, idle_poll: Duration) -> Self {
        self.idle_poll = idle_poll;
        self
    }

    /// The position after the last event handed out.
    pub fn position(&self) -> LogPosition {
        self.after
    }

    /// The next events, waiting until there is at least one. The subscription moves past them:
    /// a caller that must not lose them on a crash persists `position()` with their effects.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        loop {
            if let Some(batch) = self.poll_batch().await? {
                return Ok(batch);
            }
            let pause = if self.held_back {
                HELD_BACK_RETRY
            } else {
                self.idle_poll
            };
            tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        // The store's sender lives as long as any store clone; if it is gone,
                        // fall back to polling.
                        tokio::time::sleep(pause).await;
                    }
                }
                changed = self.tail_moved.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(pause).await;
                    }
                }
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// The next events if any are ready now, without waiting.
    pub async fn poll_batch(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        // Mark the wake-up signals seen *before* reading, so an append (or a move of the tail)
        // that lands during the read wakes the next wait instead of being missed.
        self.wake.borrow_and_update();
        self.tail_moved.borrow_and_update();
        let batch = match self.store.tail.serve(self.after, self.batch_size) {
            Served::Events(batch) => {
                self.held_back = false;
                // The tail holds events as stored; decode them as this store reads.
                self.store.decoded(batch).await?
            }
            Served::CaughtUp => {
                self.held_back = false;
                return Ok(None);
            }
            Served::Unavailable => {
                let page = self
                    .store
                    .read_log_page(self.after, self.batch_size)
                    .await?;
                self.held_back = page.held_back;
                page.events
            }
        };
        match batch.last() {
            Some(last) => {
                self.after = last.log_position;
                Ok(Some(batch))
            }
            None => Ok(None),
        }
    }
}
