//! What a projector is: a named fold of some categories of events into read-model rows, applied a
//! page at a time inside a transaction the runner owns.

use domain::DomainEvent;
use domain::decider::DecodeError;
use event_store::{RecordedEvent, StoreError};
use futures::future::BoxFuture;
use sqlx::PgConnection;

/// Folds events into read-model tables.
///
/// The runner calls [`Projector::apply`] with the page's events of the categories the projector
/// names, in delivery order, inside the batch's transaction; it commits the projector's
/// checkpoint in that same transaction. A projector folds the page in memory and writes each row
/// it touches once ([`crate::rows`]); the rows it leaves are the same whatever the page size, so
/// a rebuild in pages of ten thousand and the live runner in pages of three agree. A projector
/// never commits, never reads the clock (times come from the events, so a rebuild writes the
/// same rows) and never calls out of the database.
///
/// The trait is object-safe (`apply` returns a boxed future) so that the binary can hold a
/// `Vec<Arc<dyn Projector>>` and run them all alike.
pub trait Projector: Send + Sync + std::fmt::Debug {
    /// A stable name, the key of the projector's checkpoint. Renaming it rebuilds from scratch.
    fn name(&self) -> &'static str;

    /// The tables the projector writes, and no other projector does: what a rebuild copies and
    /// switches over ([`crate::rebuild`]).
    fn tables(&self) -> &'static [&'static str];

    /// The stream categories (`trip` of `trip-…`) the projector reads. Events of other
    /// categories are skipped by the runner without being decoded.
    fn categories(&self) -> &'static [&'static str];

    /// Whether its work can be split into segments by a hash of the stream id, each applied by
    /// a runner of its own (`velka followers segments`): true only when every row it writes
    /// comes from one stream's events, so that segments never write the same row.
    fn segmentable(&self) -> bool {
        false
    }

    /// Applies a page of events (all of the projector's categories, in delivery order) through
    /// `conn`, the batch's open transaction. An error rolls the whole batch back; the runner then
    /// retries it from the same checkpoint. An error about one event says which
    /// ([`ProjectionError::At`]).
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

/// Why a projector could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The stored event does not decode into the domain's event type.
    #[error("cannot decode {event_type} (schema version {schema_version}): {source}")]
    Decode {
        event_type: String,
        schema_version: u32,
        #[source]
        source: DecodeError,
    },
    /// A read-model query failed.
    #[error("read-model query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the log failed.
    #[error("reading the event log failed: {0}")]
    Store(#[from] StoreError),
    /// An event does not fit the read model (an update for a row that was never created, a
    /// number out of the column's range): the log and the projection disagree.
    #[error("event does not fit the read model: {0}")]
    Inconsistent(String),
    /// Any other failure, for projectors outside this crate.
    #[error("{0}")]
    Other(String),
    /// What went wrong with the event at `position` of the page.
    #[error("at position {position} ({event_type}): {source}")]
    At {
        position: i64,
        event_type: String,
        #[source]
        source: Box<ProjectionError>,
    },
}

impl ProjectionError {
    /// This error, about `event`.
    pub fn at(self, event: &RecordedEvent) -> Self {
        match self {
            Self::At { .. } => self,
            other => Self::At {
                position: event.log_position.position,
                event_type: event.event_type.clone(),
                source: Box::new(other),
            },
        }
    }

    /// The position of the event it is about, if it is about one.
    pub fn position(&self) -> Option<i64> {
        match self {
            Self::At { position, .. } => Some(*position),
            _ => None,
        }
    }
}

/// Decodes a stored event into the domain's event type `E`, upcasting old schema versions.
pub fn decode_event<E: DomainEvent>(event: &RecordedEvent) -> Result<E, ProjectionError> {
    domain::decider::decode_ref::<E>(&event.event_type, event.schema_version, &event.data).map_err(
        |source| ProjectionError::Decode {
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            source,
        },
    )
}

/// Decodes every event of a page into `E`, each beside its stored event; an error names the
/// event that failed ([`ProjectionError::At`]).
pub(crate) fn decode_page<'a, E: DomainEvent>(
    events: &[&'a RecordedEvent],
) -> Result<Vec<(&'a RecordedEvent, E)>, ProjectionError> {
    events
        .iter()
        .map(|event| {
            decode_event::<E>(event)
                .map(|decoded| (*event, decoded))
                .map_err(|error| error.at(event))
        })
        .collect()
}

/// A stream version or other count as a `bigint` column.
pub(crate) fn to_bigint(what: &str, value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value)
        .map_err(|_| ProjectionError::Inconsistent(format!("{what} {value} exceeds a bigint")))
}
