//! Loading aggregates from their streams: decode each stored event and fold it into state.
//!
//! A load starts from the state the store remembers for the stream (see
//! `event_store::Snapshot`), when it has one of the right type, and folds only the events
//! appended since; then it remembers the new state. So a command on a car with years of trips
//! decodes the car's last few events, not its whole history. A customer's state is never kept:
//! its events carry personal data, and a state folded before an erasure would keep them
//! readable after it.

use crate::pipeline::CommandError;
use domain::Decider;
use domain::decider::decode_ref;
use event_store::{EventStore, ExpectedVersion, RecordedEvent, Snapshot};
use std::collections::HashMap;
use std::sync::Arc;

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
    fold_onto::<D>(
        Loaded {
            state: D::State::default(),
            version: 0,
        },
        events,
    )
}

/// Folds the events after `loaded.version` onto `loaded`.
fn fold_onto<'a, D: Decider>(
    mut loaded: Loaded<D::State>,
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<Loaded<D::State>, CommandError> {
    for event in events {
        if event.stream_version <= loaded.version {
            continue;
        }
        let decoded: D::Event = decode_ref(&event.event_type, event.schema_version, &event.data)?;
        loaded.state = D::evolve(loaded.state, &decoded);
        loaded.version = event.stream_version;
    }
    Ok(loaded)
}

/// Whether a stream's folded state may be kept between commands (see the module docs).
fn keeps_state(stream_id: &str) -> bool {
    !stream_id.starts_with("customer-")
}

/// The remembered state of `stream_id`, if there is one of `D`'s type.
fn remembered<D: Decider>(snapshot: Option<&Snapshot>) -> Option<Loaded<D::State>>
where
    D::State: Send + Sync + 'static,
{
    let snapshot = snapshot?;
    let state = snapshot.state.downcast_ref::<D::State>()?.clone();
    Some(Loaded {
        state,
        version: snapshot.version,
    })
}

fn remember<D: Decider>(store: &EventStore, stream_id: &str, loaded: &Loaded<D::State>)
where
    D::State: Send + Sync + 'static,
{
    if keeps_state(stream_id) {
        store.remember(
            stream_id,
            Snapshot {
                version: loaded.version,
                state: Arc::new(loaded.state.clone()),
            },
        );
    }
}

/// Loads one aggregate.
pub async fn load<D: Decider>(
    store: &EventStore,
    stream_id: &str,
) -> Result<Loaded<D::State>, CommandError>
where
    D::State: Send + Sync + 'static,
{
    let snapshot = keeps_state(stream_id)
        .then(|| store.snapshot(stream_id))
        .flatten();
    let start = remembered::<D>(snapshot.as_ref()).unwrap_or_else(|| Loaded {
        state: D::State::default(),
        version: 0,
    });
    let events = store.read_stream(stream_id, start.version).await?;
    let loaded = fold_onto::<D>(start, &events)?;
    remember::<D>(store, stream_id, &loaded);
    Ok(loaded)
}

/// Loads several streams in one round trip and hands each stream's events out by id.
pub struct Streams {
    store: EventStore,
    events: Vec<RecordedEvent>,
    /// Per stream read, the remembered state it was read after, if any.
    starts: HashMap<String, Snapshot>,
}

impl Streams {
    /// Reads the given streams: each from just after its remembered state, if it has one.
    pub async fn read(store: &EventStore, stream_ids: &[String]) -> Result<Self, CommandError> {
        let mut starts = HashMap::new();
        let mut wanted = Vec::with_capacity(stream_ids.len());
        for id in stream_ids {
            let snapshot = keeps_state(id).then(|| store.snapshot(id)).flatten();
            wanted.push((id.clone(), snapshot.as_ref().map_or(0, |s| s.version)));
            if let Some(snapshot) = snapshot {
                starts.insert(id.clone(), snapshot);
            }
        }
        Ok(Self {
            store: store.clone(),
            events: store.read_streams_after(&wanted).await?,
            starts,
        })
    }

    /// Folds one of them.
    pub async fn fold<D: Decider>(&self, stream_id: &str) -> Result<Loaded<D::State>, CommandError>
    where
        D::State: Send + Sync + 'static,
    {
        let events = self.events.iter().filter(|e| e.stream_id == stream_id);
        let loaded = match self.starts.get(stream_id) {
            None => fold::<D>(events)?,
            Some(snapshot) => match remembered::<D>(Some(snapshot)) {
                Some(start) => fold_onto::<D>(start, events)?,
                // The state remembered is of another type: this read began after it, so the
                // stream's earlier events are needed after all.
                None => return load::<D>(&self.store, stream_id).await,
            },
        };
        remember::<D>(&self.store, stream_id, &loaded);
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use domain::{DomainEvent, Rejection};
    use event_store::testing::TestDatabase;
    use event_store::{AppendRequest, Claims, Metadata, NewEvent, StreamWrite};
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Noted {
        Noted { text: String },
    }

    impl DomainEvent for Noted {}

    /// The texts noted on a stream, in order.
    struct Notes;

    impl Decider for Notes {
        type State = Vec<String>;
        type Command = ();
        type Event = Noted;
        type Context = ();

        fn decide(_: &Self::State, _: &(), _: &()) -> Result<Vec<Noted>, Rejection> {
            Ok(Vec::new())
        }

        fn evolve(mut state: Self::State, event: &Noted) -> Self::State {
            let Noted::Noted { text } = event;
            state.push(text.clone());
            state
        }
    }

    /// How many events a stream has: another fold of the same events, to a different type.
    struct Count;

    impl Decider for Count {
        type State = usize;
        type Command = ();
        type Event = Noted;
        type Context = ();

        fn decide(_: &usize, _: &(), _: &()) -> Result<Vec<Noted>, Rejection> {
            Ok(Vec::new())
        }

        fn evolve(state: usize, _: &Noted) -> usize {
            state + 1
        }
    }

    async fn note(store: &EventStore, stream_id: &str, after: u64, texts: &[&str]) {
        let events = texts
            .iter()
            .map(|text| NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "Noted".to_owned(),
                schema_version: 1,
                data: serde_json::json!({ "text": text }),
                occurred_at: chrono::Utc::now(),
            })
            .collect();
        store
            .append(&AppendRequest {
                writes: vec![StreamWrite {
                    stream_id: stream_id.to_owned(),
                    expected: ExpectedVersion::after(after),
                    events,
                }],
                metadata: Metadata {
                    correlation_id: uuid::Uuid::now_v7(),
                    causation_id: None,
                    actor: "test".to_owned(),
                    command_id: None,
                },
                recorded_at: chrono::Utc::now(),
                claims: Claims::default(),
                result: None,
            })
            .await
            .unwrap();
    }

    fn remembered_version(store: &EventStore, stream_id: &str) -> Option<u64> {
        store.snapshot(stream_id).map(|s| s.version)
    }

    #[tokio::test]
    async fn a_load_folds_only_what_follows_the_remembered_state() {
        let db = TestDatabase::new().await;
        let store = db.store();
        // Another process: its own caches on the same database.
        let other = EventStore::new(store.pool().clone());
        note(&store, "vehicle-1", 0, &["a", "b"]).await;

        let loaded = load::<Notes>(&store, "vehicle-1").await.unwrap();
        assert_eq!(
            (loaded.state, loaded.version),
            (vec!["a".into(), "b".into()], 2)
        );
        assert_eq!(remembered_version(&store, "vehicle-1"), Some(2));

        // What the other process appends is folded on top.
        note(&other, "vehicle-1", 2, &["c"]).await;
        let loaded = load::<Notes>(&store, "vehicle-1").await.unwrap();
        assert_eq!(loaded.state, ["a", "b", "c"]);
        assert_eq!(remembered_version(&store, "vehicle-1"), Some(3));

        // A remembered state is where the fold starts: the events before it are not read again
        // (a state that differs from their fold shows it). A third process, which has not
        // folded the stream yet, is given that state.
        let store = EventStore::new(store.pool().clone());
        store.remember(
            "vehicle-1",
            Snapshot {
                version: 3,
                state: Arc::new(vec!["remembered".to_owned()]),
            },
        );
        note(&other, "vehicle-1", 3, &["d"]).await;
        let loaded = load::<Notes>(&store, "vehicle-1").await.unwrap();
        assert_eq!(
            (loaded.state, loaded.version),
            (vec!["remembered".into(), "d".into()], 4)
        );
        let streams = Streams::read(&store, &["vehicle-1".to_owned()])
            .await
            .unwrap();
        let folded = streams.fold::<Notes>("vehicle-1").await.unwrap();
        assert_eq!(folded.state, ["remembered", "d"]);

        // A state of another type is no start for this one: it reads the whole stream.
        let count = streams.fold::<Count>("vehicle-1").await.unwrap();
        assert_eq!((count.state, count.version), (4, 4));
        let whole = load::<Notes>(&other, "vehicle-1").await.unwrap();
        assert_eq!(whole.state, ["a", "b", "c", "d"]);
    }

    #[tokio::test]
    async fn a_customers_state_is_never_remembered() {
        let db = TestDatabase::new().await;
        let store = db.store();
        note(&store, "customer-1", 0, &["personal"]).await;
        note(&store, "trip-1", 0, &["not personal"]).await;
        let streams = Streams::read(&store, &["customer-1".to_owned(), "trip-1".to_owned()])
            .await
            .unwrap();
        assert_eq!(
            streams.fold::<Notes>("customer-1").await.unwrap().state,
            ["personal"]
        );
        assert_eq!(streams.fold::<Notes>("trip-1").await.unwrap().version, 1);
        load::<Notes>(&store, "customer-1").await.unwrap();
        assert_eq!(remembered_version(&store, "customer-1"), None);
        assert_eq!(remembered_version(&store, "trip-1"), Some(1));
    }

    #[test]
    fn only_customer_streams_are_excluded() {
        assert!(!keeps_state(
            "customer-0194f5a0-0000-7000-8000-000000000001"
        ));
        assert!(keeps_state("vehicle-0194f5a0-0000-7000-8000-000000000001"));
        assert!(keeps_state("trip-0194f5a0-0000-7000-8000-000000000001"));
    }
}
