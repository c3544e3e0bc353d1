//! Loading aggregates from their streams: decode each stored event and fold it into state.

use crate::pipeline::CommandError;
use domain::Decider;
use domain::decider::decode;
use event_store::{EventStore, ExpectedVersion, RecordedEvent};

/// An aggregate's state and the version it was read at.
#[derive(Debug)]
pub struct Loaded<S> {
    /// The folded state.
    pub state: S,
    /// How many events the stream held (0 = none).
    pub version: u64,
}

impl<S> Loaded<S> {
    /// The expected version for appending after what was loaded.
    pub fn expected(&self) -> ExpectedVersion {
        ExpectedVersion::after(self.version)
    }
}

/// Folds the events of one stream (in version order) into state.
pub fn fold<'a, D: Decider>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<Loaded<D::State>, CommandError> {
    let mut state = D::State::default();
    let mut version = 0;
    for event in events {
        let decoded: D::Event =
            decode(&event.event_type, event.schema_version, event.data.clone())?;
        state = D::evolve(state, &decoded);
        version = event.stream_version;
    }
    Ok(Loaded { state, version })
}

/// Loads one aggregate.
pub async fn load<D: Decider>(
    store: &EventStore,
    stream_id: &str,
) -> Result<Loaded<D::State>, CommandError> {
    let events = store.read_stream(stream_id, 0).await?;
    fold::<D>(&events)
}

/// Loads several streams in one round trip and hands each stream's events out by id.
pub struct Streams(Vec<RecordedEvent>);

impl Streams {
    /// Reads the given streams.
    pub async fn read(store: &EventStore, stream_ids: &[String]) -> Result<Self, CommandError> {
        Ok(Self(store.read_streams(stream_ids).await?))
    }

    /// Folds one of them.
    pub fn fold<D: Decider>(&self, stream_id: &str) -> Result<Loaded<D::State>, CommandError> {
        fold::<D>(self.0.iter().filter(|e| e.stream_id == stream_id))
    }
}
