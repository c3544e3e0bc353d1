//! `GET /v1/streams/{stream_id}/events?after_version=&limit=`: a stream's events exactly as
//! stored, with who caused them and why, for support and auditors. Read from the event store
//! itself, not a read model: this is the record the read models are built from.

use crate::QueryContext;
use crate::error::QueryError;
use crate::params::QueryParams;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use event_store::{Metadata, RecordedEvent};
use http_edge::ProblemType;
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use uuid::Uuid;

/// Events per page when no limit is given.
const DEFAULT_LIMIT: usize = 100;
/// The most events one page holds.
const MAX_LIMIT: usize = 1_000;

/// Why and by whom an event was written.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EventMetadata {
    /// Groups everything caused by one outside request.
    correlation_id: Uuid,
    /// The event or command that caused this one.
    causation_id: Option<Uuid>,
    /// Who: `customer:<id>`, `support:<agent>`, `service:<name>`.
    actor: String,
    /// The command that produced the event.
    command_id: Option<Uuid>,
}

impl From<Metadata> for EventMetadata {
    fn from(metadata: Metadata) -> Self {
        Self {
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            actor: metadata.actor,
            command_id: metadata.command_id,
        }
    }
}

/// One stored event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StreamEvent {
    /// Its position in the whole log.
    position: i64,
    /// Its version within the stream (1-based).
    version: u64,
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    /// The event's fields, as stored.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    /// Correlation, causation, actor and command.
    metadata: EventMetadata,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
}

impl From<RecordedEvent> for StreamEvent {
    fn from(event: RecordedEvent) -> Self {
        Self {
            position: event.position,
            version: event.stream_version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            data: event.data,
            metadata: event.metadata.into(),
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
        }
    }
}

/// A page of a stream.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StreamPage {
    stream_id: String,
    /// Events after `after_version`, oldest first; ask again with the last one's version for
    /// the next page.
    events: Vec<StreamEvent>,
}

/// A stream's events with their metadata, oldest first (support, auditor).
#[utoipa::path(
    get,
    path = "/v1/streams/{stream_id}/events",
    operation_id = "stream_events",
    tag = "audit",
    params(
        ("stream_id" = String, Path, description = "`<category>-<id>`, for example `trip-0194…`"),
        ("after_version" = Option<u64>, Query, description = "Only events after this version (default 0)"),
        ("limit" = Option<u32>, Query, description = "At most this many events, 1 to 1000 (default 100)"),
    ),
    responses((status = 200, description = "A page of the stream", body = StreamPage), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn stream_events(
    State(context): State<QueryContext>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    params: QueryParams,
) -> Result<Json<StreamPage>, Problem> {
    caller.require(&[Role::Support, Role::Auditor])?;
    let Path(stream_id) =
        path.map_err(|rejection| Problem::invalid_field("stream_id", rejection.body_text()))?;
    let after_version: u64 = params
        .number_in("after_version", 0..=i64::MAX as u64)?
        .unwrap_or(0);
    let limit = params
        .number_in("limit", 1..=MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);

    // Read from one version earlier: the event at `after_version`, when there is one, proves
    // the stream exists even if the page after it is empty.
    let mut events = context
        .store
        .read_stream(&stream_id, after_version.saturating_sub(1))
        .await
        .map_err(QueryError::from)?;
    let exists = !events.is_empty()
        || (after_version > 1
            && !context
                .store
                .read_stream(&stream_id, 0)
                .await
                .map_err(QueryError::from)?
                .is_empty());
    if !exists {
        return Err(Problem::not_found(
            ProblemType::StreamNotFound,
            format!("there is no stream {stream_id:?}"),
        ));
    }
    events.retain(|event| event.stream_version > after_version);
    events.truncate(limit);
    Ok(Json(StreamPage {
        stream_id,
        events: events.into_iter().map(StreamEvent::from).collect(),
    }))
}
