//! In-process snapshots of aggregate state: what loading a stream folded, at the version it
//! folded to, so the next load folds only the events appended since instead of decoding the
//! stream's whole history again. A car's stream grows with every trip and telemetry report, so
//! without this a command's cost grows with the age of the car.
//!
//! The store keeps the states opaque (`Arc<dyn Any>`): it knows nothing of the domain, and the
//! caller (`command-api`'s `load`) puts and takes its own types. Why it is safe: a state folded
//! from a stream's committed events `1..=v` is the same whenever it is folded, because committed
//! events never change; so "state at v, then the events after v" equals a fold of everything.
//! A shorter (older) state never replaces a longer one.
//!
//! Bounded by a number of streams, in two generations: new and used states go to the young one;
//! when it holds half the capacity, it becomes the old one and the old one is dropped. A state
//! used at least once a generation (a car in service) therefore stays, and one nobody asks for
//! again (a trip that ended) goes after two. Losing a state costs one full fold of its stream
//! and nothing else.

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
    inner: Mutex<Generations>,
}

/// The states put or asked for since the last turn (`young`), and those of the generation
/// before (`old`). A stream is in at most one of them.
#[derive(Debug, Default)]
struct Generations {
    young: HashMap<String, Snapshot>,
    old: HashMap<String, Snapshot>,
}

impl Generations {
    /// Makes room in `young` for one more stream, turning the generations if it is full.
    fn room(&mut self, half: usize) {
        if self.young.len() >= half {
            self.old = std::mem::take(&mut self.young);
        }
    }
}

impl StateCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Generations::default()),
        }
    }

    fn half(&self) -> usize {
        (self.capacity / 2).max(1)
    }

    pub(crate) fn get(&self, stream_id: &str) -> Option<Snapshot> {
        if self.capacity == 0 {
            return None;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(snapshot) = inner.young.get(stream_id) {
            return Some(snapshot.clone());
        }
        // Asked for again: it moves to the young generation.
        let snapshot = inner.old.remove(stream_id)?;
        inner.room(self.half());
        inner.young.insert(stream_id.to_owned(), snapshot.clone());
        Some(snapshot)
    }

    /// Keeps `snapshot` unless the cache already has a later one of the same type.
    pub(crate) fn put(&self, stream_id: &str, snapshot: Snapshot) {
        if self.capacity == 0 || snapshot.version == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.young.get_mut(stream_id) {
            if replaces(old, &snapshot) {
                *old = snapshot;
            }
            return;
        }
        let snapshot = match inner.old.remove(stream_id) {
            Some(old) if !replaces(&old, &snapshot) => old,
            _ => snapshot,
        };
        inner.room(self.half());
        inner.young.insert(stream_id.to_owned(), snapshot);
    }
}

/// Whether `new` should replace `old`: a later state, or one of another type (the stream is
/// folded differently now, and the old type is of no use to that reader).
fn replaces(old: &Snapshot, new: &Snapshot) -> bool {
    (*old.state).type_id() != (*new.state).type_id() || old.version < new.version
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
    fn keeps_what_is_used_and_lets_go_of_what_is_not() {
        // Room for four: two a generation.
        let cache = StateCache::new(4);
        cache.put("car-1", at(1, 1));
        for trip in 1..=20 {
            // Every trip is a new stream nobody asks for again; the car is used on each.
            cache.put(&format!("trip-{trip}"), at(1, trip));
            assert_eq!(
                held(&cache, "car-1").map(|(v, _)| v),
                Some(1),
                "trip {trip}"
            );
        }
        assert_eq!(held(&cache, "trip-1"), None, "an unused state is let go");
        assert_eq!(held(&cache, "trip-20"), Some((1, 20)));
        let inner = cache.inner.lock().unwrap();
        assert!(inner.young.len() + inner.old.len() <= 4);
    }

    #[test]
    fn a_state_from_the_old_generation_is_not_replaced_by_an_older_one() {
        let cache = StateCache::new(2);
        cache.put("car-1", at(5, 50));
        cache.put("trip-1", at(1, 1)); // car-1 is now in the old generation
        cache.put("car-1", at(3, 30));
        assert_eq!(held(&cache, "car-1"), Some((5, 50)));
    }

    #[test]
    fn keeps_nothing_when_off() {
        let off = StateCache::new(0);
        off.put("car-1", at(1, 1));
        assert_eq!(held(&off, "car-1"), None);
    }
}
