//! The live end of the log, read once per process and shared by every subscription.
//!
//! Without it, each follower in a process (every projector, saga, the relay, the audit sealer)
//! reads the log itself after every append: a dozen identical queries per event, and a dozen
//! readers polling every few milliseconds while an older transaction holds committed events
//! back. The tail is one task that reads the log in delivery order from where it started
//! (the head when the first subscription was made) and keeps the most recent events in memory;
//! a subscription at or past the tail's start takes its batches from memory, one that is
//! further behind reads the database until it reaches the tail.
//!
//! The tail reads with [`EventStore::read_log_page`](crate::EventStore::read_log_page), the same
//! gap-free reader as everyone, so the events it holds are exactly what a subscription would
//! have read itself, in the same order: serving from memory changes the cost, never what is
//! delivered. If the tail stops making progress (its reads fail), subscriptions fall back to
//! reading the database themselves.

use crate::error::StoreError;
use crate::model::{LogPosition, RecordedEvent};
use sqlx::PgPool;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most events kept in memory; older ones are dropped from the front.
const CAPACITY: usize = 8_192;
/// Events read per query.
const PAGE: u32 = 1_000;
/// How soon to look again when committed events are held back by an older transaction.
const HELD_BACK_RETRY: Duration = Duration::from_millis(2);
/// How often to look for appends made by other processes when no notification came.
pub(crate) const DEFAULT_IDLE_POLL: Duration = Duration::from_millis(50);
/// A tail that has not read successfully for this long is not trusted to be current.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// What a subscription at some position gets from the tail.
#[derive(Debug)]
pub(crate) enum Served {
    /// The next events after the position, in delivery order.
    Events(Vec<RecordedEvent>),
    /// Nothing after the position yet: wait for the tail to move.
    CaughtUp,
    /// The position is before what the tail holds, or the tail is not reading: read the
    /// database.
    Unavailable,
}

/// The shared tail. Lives inside every clone of one [`EventStore`](crate::EventStore).
#[derive(Debug)]
pub(crate) struct Tail {
    state: Mutex<State>,
    /// Bumped whenever the tail holds new events.
    advanced: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether the reading task has been started.
    started: bool,
    /// The tail holds every event after `base` up to `last`; `None` until the first read.
    base: Option<LogPosition>,
    last: LogPosition,
    events: VecDeque<RecordedEvent>,
    /// When the last read succeeded.
    fresh_at: Option<Instant>,
}

impl Tail {
    pub(crate) fn new() -> Self {
        let (advanced, _) = watch::channel(0);
        Self {
            state: Mutex::new(State::default()),
            advanced,
        }
    }

    /// A receiver woken whenever the tail holds new events.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.advanced.subscribe()
    }

    /// Starts the reading task once, if a Tokio runtime is running, with the listener that
    /// wakes it (and every subscription) when another process appends.
    pub(crate) fn start(
        self: &Arc<Self>,
        pool: &PgPool,
        appended: &Arc<watch::Sender<u64>>,
        idle_poll: Duration,
        own_token: &str,
        quiet: &Arc<crate::quiet::QuietSet>,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            if state.started {
                return;
            }
            state.started = true;
        }
        runtime.spawn(read(
            Arc::downgrade(self),
            pool.clone(),
            appended.subscribe(),
            idle_poll,
            quiet.clone(),
        ));
        runtime.spawn(listen(
            Arc::downgrade(self),
            pool.clone(),
            appended.clone(),
            own_token.to_owned(),
        ));
    }

    /// Up to `limit` events after `after`, from memory.
    pub(crate) fn serve(&self, after: LogPosition, limit: u32) -> Served {
        let Ok(state) = self.state.lock() else {
            return Served::Unavailable;
        };
        let Some(base) = state.base else {
            return Served::Unavailable;
        };
        if after < base || state.fresh_at.is_none_or(|at| at.elapsed() >= STALE_AFTER) {
            return Served::Unavailable;
        }
        if after >= state.last {
            return Served::CaughtUp;
        }
        let from = state.events.partition_point(|e| e.log_position <= after);
        let batch: Vec<RecordedEvent> = state
            .events
            .range(from..)
            .take(limit.max(1) as usize)
            .cloned()
            .collect();
        if batch.is_empty() {
            Served::CaughtUp
        } else {
            Served::Events(batch)
        }
    }

    /// The last position the tail has read, if it is current: a cheap head for lag gauges.
    pub(crate) fn head(&self) -> Option<LogPosition> {
        let state = self.state.lock().ok()?;
        state.base?;
        state
            .fresh_at
            .is_some_and(|at| at.elapsed() < STALE_AFTER)
            .then_some(state.last)
    }

    fn record(&self, page: Vec<RecordedEvent>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.fresh_at = Some(Instant::now());
        let Some(last) = page.last().map(|e| e.log_position) else {
            return;
        };
        state.last = last;
        state.events.extend(page);
        while state.events.len() > CAPACITY {
            if let Some(dropped) = state.events.pop_front() {
                state.base = Some(dropped.log_position);
            }
        }
        drop(state);
        self.advanced
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    fn begin(&self, head: LogPosition) {
        if let Ok(mut state) = self.state.lock() {
            state.base = Some(head);
            state.last = head;
            state.fresh_at = Some(Instant::now());
        }
    }

    fn position(&self) -> Option<LogPosition> {
        Some(self.state.lock().ok()?.last)
    }
}

/// The reading task: starts at the head, then reads every page in delivery order, woken by
/// local appends, by a short retry while events are held back, and by an idle poll. Ends when
/// every store handle is gone.
async fn read(
    tail: Weak<Tail>,
    pool: PgPool,
    mut appended: watch::Receiver<u64>,
    idle_poll: Duration,
    quiet: Arc<crate::quiet::QuietSet>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match crate::log::read_head(&pool).await {
            Ok(head) => {
                let Some(tail) = tail.upgrade() else { return };
                tail.begin(head);
                break;
            }
            Err(error) => {
                if tail.strong_count() == 0 {
                    return;
                }
                tracing::warn!(%error, "the log tail cannot read the head; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let mut backoff = Duration::from_millis(50);
    // Since when committed events have been waiting behind the horizon, if they are now: the
    // waits add up in `velka_log_held_back_microseconds_total`, the share of time the log's
    // newest events are held back by a transaction in flight.
    let mut held_since: Option<Instant> = None;
    loop {
        appended.borrow_and_update();
        let Some(after) = tail.upgrade().and_then(|t| t.position()) else {
            return;
        };
        let pause = match crate::log::read_page(&pool, after, PAGE, &quiet.ids()).await {
            Ok(page) => {
                backoff = Duration::from_millis(50);
                let full = page.events.len() == PAGE as usize;
                let held_back = page.held_back;
                if held_back {
                    held_since.get_or_insert_with(Instant::now);
                } else if let Some(since) = held_since.take() {
                    metrics::counter!("velka_log_held_back_microseconds_total")
                        .increment(since.elapsed().as_micros() as u64);
                }
                let Some(tail) = tail.upgrade() else { return };
                tail.record(page.events);
                if full {
                    continue;
                }
                if held_back {
                    HELD_BACK_RETRY
                } else {
                    idle_poll
                }
            }
            Err(error) => {
                log_failure(&error);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                backoff
            }
        };
        tokio::select! {
            changed = appended.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Listens for appends announced by other processes (`crate::announce`; a hint that the log
/// moved, never the truth, which is the gap-free read) and wakes this process's readers (the
/// tail and every subscription) as a local append would; this process's own announcements,
/// carrying `own_token`, are ignored. Reconnects after a failure; meanwhile the readers' idle
/// poll finds the appends. Ends when every store handle is gone.
async fn listen(
    tail: Weak<Tail>,
    pool: PgPool,
    appended: Arc<watch::Sender<u64>>,
    own_token: String,
) {
    let mut backoff = Duration::from_millis(100);
    while tail.strong_count() > 0 {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(crate::announce::CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listener.await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "cannot listen for appends; polling meanwhile");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            // Wake now and then to notice that the store is gone.
            match tokio::time::timeout(Duration::from_secs(5), listener.try_recv()).await {
                Ok(Ok(Some(notification))) if notification.payload() == own_token => {}
                Ok(Ok(Some(_))) => appended.send_modify(|n| *n = n.wrapping_add(1)),
                // The connection was lost: the listener reconnects on the next call; wake the
                // readers, since appends may have been missed meanwhile.
                Ok(Ok(None)) => appended.send_modify(|n| *n = n.wrapping_add(1)),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "listening for appends failed; reconnecting");
                    break;
                }
                Err(_) if tail.strong_count() == 0 => return,
                Err(_) => {}
            }
        }
    }
}

fn log_failure(error: &StoreError) {
    tracing::warn!(%error, "the log tail cannot read the log; subscriptions read it themselves");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Metadata;

    fn at(transaction_id: u64, position: i64) -> LogPosition {
        LogPosition {
            transaction_id,
            position,
        }
    }

    fn recorded(log_position: LogPosition) -> RecordedEvent {
        RecordedEvent {
            position: log_position.position,
            log_position,
            stream_id: "trip-1".to_owned(),
            stream_version: 1,
            event_id: uuid::Uuid::now_v7(),
            event_type: "E".to_owned(),
            schema_version: 1,
            data: serde_json::json!({}),
            metadata: Metadata {
                correlation_id: uuid::Uuid::nil(),
                causation_id: None,
                actor: "test".to_owned(),
                command_id: None,
            },
            occurred_at: chrono::Utc::now(),
            recorded_at: chrono::Utc::now(),
        }
    }

    fn positions(served: Served) -> Vec<i64> {
        match served {
            Served::Events(events) => events.iter().map(|e| e.position).collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn serves_what_follows_a_position_and_sends_the_rest_to_the_database() {
        let tail = Tail::new();
        assert!(matches!(tail.serve(at(1, 1), 10), Served::Unavailable));
        tail.begin(at(10, 5));
        // Positions out of numeric order, as commits make them: delivery order is the tail's.
        tail.record(vec![
            recorded(at(11, 7)),
            recorded(at(12, 6)),
            recorded(at(13, 8)),
        ]);
        assert!(matches!(tail.serve(at(9, 4), 10), Served::Unavailable));
        assert_eq!(positions(tail.serve(at(10, 5), 10)), [7, 6, 8]);
        assert_eq!(positions(tail.serve(at(11, 7), 1)), [6]);
        assert_eq!(positions(tail.serve(at(12, 6), 10)), [8]);
        assert!(matches!(tail.serve(at(13, 8), 10), Served::CaughtUp));
        assert!(matches!(tail.serve(at(20, 1), 10), Served::CaughtUp));
        assert_eq!(tail.head(), Some(at(13, 8)));
    }

    #[test]
    fn dropping_old_events_moves_the_start() {
        let tail = Tail::new();
        tail.begin(at(1, 0));
        let events: Vec<RecordedEvent> = (1..=CAPACITY as i64 + 2)
            .map(|n| recorded(at(n as u64 + 1, n)))
            .collect();
        tail.record(events);
        // The first two events were dropped: a reader before the third goes to the database.
        assert!(matches!(tail.serve(at(2, 1), 10), Served::Unavailable));
        assert_eq!(positions(tail.serve(at(3, 2), 2)), [3, 4]);
    }
}
