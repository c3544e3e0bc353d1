//! The in-process cache of stream prefixes that [`EventStore::read_stream`] and
//! [`EventStore::read_streams`] keep, so loading an aggregate reads only the events appended
//! since this process last read its stream, not its whole history again.
//!
//! Why it is safe: a committed event never changes (the log is append-only), and a stream's
//! versions become visible in order (appends to one stream are serialized by its head row, so
//! version n+1 cannot commit before version n), so "the cached events up to version v, then
//! whatever the database has after v" is exactly what a full read would return. Only reads of
//! committed rows through the pool fill it. It is bounded by a number of events; when full it
//! starts over empty, which costs one full read per stream and nothing else.
//!
//! [`EventStore::read_stream`]: crate::EventStore::read_stream
//! [`EventStore::read_streams`]: crate::EventStore::read_streams

use crate::model::RecordedEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Events kept by default (about a kilobyte each in memory).
pub const DEFAULT_CAPACITY: usize = 50_000;

/// Committed stream prefixes by stream id.
#[derive(Debug)]
pub(crate) struct StreamCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    streams: HashMap<String, Arc<Vec<RecordedEvent>>>,
    events: usize,
}

impl StreamCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The cached prefix of a stream, if any.
    pub(crate) fn get(&self, stream_id: &str) -> Option<Arc<Vec<RecordedEvent>>> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.streams.get(stream_id).cloned()
    }

    /// Remembers a stream's events (all of them, from version 1, in order). A longer prefix
    /// replaces a shorter one; a shorter one (a concurrent reader that was slower) is ignored.
    pub(crate) fn put(&self, stream_id: &str, events: Arc<Vec<RecordedEvent>>) {
        if self.capacity == 0 || events.is_empty() || events.len() > self.capacity / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let old = inner.streams.get(stream_id).map_or(0, |old| old.len());
        if old >= events.len() {
            return;
        }
        if inner.events - old + events.len() > self.capacity {
            inner.streams.clear();
            inner.events = 0;
        } else {
            inner.events -= old;
        }
        inner.events += events.len();
        inner.streams.insert(stream_id.to_owned(), events);
    }
}
