//! In-process snapshots of aggregate state: what loading a stream folded, at the version it
//! folded to, so the next load folds only the events appended since instead of decoding the
//! stream's whole history again. A car's stream grows with every trip and telemetry report, so
//! without this a command's cost grows with the age of the car.
//!
//! The store keeps the states opaque (`Arc<dyn Any>`): it knows nothing of the domain, and the
//! caller (`command-api`'s `load`) puts and takes its own types. Why it is safe: a state folded
//! from a stream's committed events `1..=v` is the same whenever it is folded, because committed
//! events never change; so "state at v, then the events after v" equals a fold of everything.
//! A shorter (older) state never replaces a longer one. Bounded by a number of streams; when
//! full it starts over empty, which costs one full fold per stream and nothing else.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Streams whose state is kept by default: the seed's 5,500 cars and their open trips and
/// reservations fit a few times over, in a few tens of megabytes at most.
pub const DEFAULT_CAPACITY: usize = 20_000;

/// A folded state and the stream version it was folded to.
#[derive(Clone)]
pub struct Snapshot {
    /// The number of events folded into `state` (the stream's version then).
    pub version: u64,
    /// The state, of the type its caller put.
    pub state: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Snapshots by stream id.
#[derive(Debug)]
pub(crate) struct StateCache {
    capacity: usize,
    inner: Mutex<HashMap<String, Snapshot>>,
}

impl StateCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, stream_id: &str) -> Option<Snapshot> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.get(stream_id).cloned()
    }

    /// Keeps `snapshot` unless the cache already has a later one of the same type.
    pub(crate) fn put(&self, stream_id: &str, snapshot: Snapshot) {
        if self.capacity == 0 || snapshot.version == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.get_mut(stream_id) {
            let same_type = (*old.state).type_id() == (*snapshot.state).type_id();
            if !same_type || old.version < snapshot.version {
                *old = snapshot;
            }
            return;
        }
        if inner.len() >= self.capacity {
            inner.clear();
        }
        inner.insert(stream_id.to_owned(), snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: u64, state: u32) -> Snapshot {
        Snapshot {
            version,
            state: Arc::new(state),
        }
    }

    fn held(cache: &StateCache, stream_id: &str) -> Option<(u64, u32)> {
        let snapshot = cache.get(stream_id)?;
        Some((snapshot.version, *snapshot.state.downcast_ref::<u32>()?))
    }

    #[test]
    fn keeps_the_latest_state_of_each_stream() {
        let cache = StateCache::new(10);
        cache.put("car-1", at(3, 30));
        cache.put("car-1", at(2, 20));
        assert_eq!(
            held(&cache, "car-1"),
            Some((3, 30)),
            "an older state is ignored"
        );
        cache.put("car-1", at(5, 50));
        assert_eq!(held(&cache, "car-1"), Some((5, 50)));
        assert_eq!(held(&cache, "car-2"), None);
        // A state of another type replaces it whatever its version: the stream is folded
        // differently now, and the old type is of no use to that reader.
        cache.put(
            "car-1",
            Snapshot {
                version: 1,
                state: Arc::new("other"),
            },
        );
        assert_eq!(cache.get("car-1").map(|s| s.version), Some(1));
    }

    #[test]
    fn starts_over_when_full_and_keeps_nothing_when_off() {
        let cache = StateCache::new(2);
        cache.put("car-1", at(1, 1));
        cache.put("car-2", at(1, 2));
        cache.put("car-3", at(1, 3));
        assert_eq!(held(&cache, "car-1"), None);
        assert_eq!(held(&cache, "car-3"), Some((1, 3)));
        let off = StateCache::new(0);
        off.put("car-1", at(1, 1));
        assert_eq!(held(&off, "car-1"), None);
    }
}
