//! The auditors' HTTP routes. `GET /v1/audit/events`: the whole log for auditors (and support),
//! filtered and paged, each event with its metadata, position and chain hash. Every query is
//! itself recorded as an `AuditQueryPerformed` event on `audit-log` before the answer goes out.
//! `GET /v1/audit/money`: the money reconciliation ([`crate::money`]), recorded as
//! `AuditMoneyReconciled`. `GET /v1/audit/streams/{stream_id}/state?as_of=T`: an aggregate's
//! state as of T ([`crate::as_of`]), recorded as `AuditStateQueried`.

use crate::history::{self, AuditEvent, Filters};
use crate::record::{self, AUDIT_LOG_STREAM, QUERY_PERFORMED};
use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use chrono::{DateTime, Utc};
use event_store::clock::Clock;
use event_store::{AppendError, EventStore, LogPosition, StoreError};
use http_edge::ProblemType;
use http_edge::openapi::BearerAuth;
use http_edge::{Caller, Problem, Role, TokenKeys};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// Events per page when no limit is given.
const DEFAULT_LIMIT: u32 = 100;
/// The most events one page holds.
const MAX_LIMIT: u32 = 1_000;

/// What the audit routes need.
#[derive(Clone, Debug)]
pub struct AuditContext {
    /// The database (events and the chain).
    pub pool: sqlx::PgPool,
    /// The store as stored, to record auditor actions.
    pub store: EventStore,
    /// The store that reads events for their meaning (personal data decoded while a customer's
    /// key exists), for an aggregate's state as of a time.
    pub reader: EventStore,
    /// Checks bearer tokens.
    pub keys: TokenKeys,
    /// Stamps the recorded actions.
    pub clock: Arc<dyn Clock>,
    /// The payment gateway whose ledger the money reconciliation compares with, if any.
    pub gateway_url: Option<String>,
}

impl FromRef<AuditContext> for TokenKeys {
    fn from_ref(context: &AuditContext) -> TokenKeys {
        context.keys.clone()
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    components(schemas(http_edge::Problem)),
    modifiers(&BearerAuth),
    tags((name = "audit", description = "Event history for support and auditors"))
)]
struct AuditDoc;

/// The audit routes and their part of the OpenAPI document.
pub fn router(context: AuditContext) -> (Router, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(AuditDoc::openapi())
        .routes(utoipa_axum::routes!(audit_events))
        .routes(utoipa_axum::routes!(audit_money))
        .routes(utoipa_axum::routes!(audit_stream_state))
        .with_state(context)
        .split_for_parts()
}

/// A page of the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Matching events in delivery order (the chain's order), oldest first.
    events: Vec<AuditEvent>,
    /// Pass as `after` for the next page; absent when there is nothing more now.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The parameters this route understands; any other is refused, so a misspelt filter never
/// silently widens an auditor's query.
const PARAMETERS: [&str; 8] = [
    "category",
    "event_type",
    "actor",
    "correlation_id",
    "from",
    "to",
    "after",
    "limit",
];

/// The whole log, filtered, in delivery order (auditor, support). Every query is recorded as
/// an `AuditQueryPerformed` event.
#[utoipa::path(
    get,
    path = "/v1/audit/events",
    operation_id = "audit_events",
    tag = "audit",
    params(
        ("category" = Option<String>, Query, description = "Stream category (`trip` of `trip-…`)"),
        ("event_type" = Option<String>, Query, description = "Event type, for example `TripEnded`"),
        ("actor" = Option<String>, Query, description = "Actor as recorded: `customer:<id>`, `support:<agent>`, `service:<name>`"),
        ("correlation_id" = Option<Uuid>, Query, description = "Everything caused by one outside request"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Recorded at or after (RFC 3339)"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Recorded before (RFC 3339)"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "At most this many events, 1 to 1000 (default 100)"),
    ),
    responses((status = 200, description = "A page of the log", body = AuditPage), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn audit_events(
    State(context): State<AuditContext>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, Problem> {
    caller.require(&[Role::Auditor, Role::Support])?;
    let Query(pairs) = query
        .map_err(|rejection| Problem::new(ProblemType::MalformedQuery, rejection.body_text()))?;
    let request = parse(&pairs)?;
    let page = history::page(
        &context.pool,
        &request.filters,
        request.after,
        request.limit,
    )
    .await
    .map_err(internal)?;
    let next = page.next.map(history::format_cursor);
    record::append(
        &context.store,
        AUDIT_LOG_STREAM,
        QUERY_PERFORMED,
        json!({
            "by": caller.actor(),
            "filters": request.filters,
            "after": request.after_text,
            "limit": request.limit,
            "returned": page.events.len(),
        }),
        &caller.actor(),
        context.clock.now(),
    )
    .await
    .map_err(|error| match error {
        AppendError::Store(StoreError::Database(
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
        )) => Problem::unavailable(&error),
        other => Problem::internal(&other),
    })?;
    Ok(Json(AuditPage {
        events: page.events,
        next,
    }))
}

/// Every account recomputed from its events and compared with the read models and the payment
/// gateway's ledger (auditor). Recorded as an `AuditMoneyReconciled` event.
#[utoipa::path(
    get,
    path = "/v1/audit/money",
    operation_id = "audit_money",
    tag = "audit",
    responses(
        (status = 200, description = "The reconciliation: every difference with the events behind it", body = crate::money::Reconciliation),
        http_edge::openapi::QueryProblems,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn audit_money(
    State(context): State<AuditContext>,
    caller: Caller,
) -> Result<Json<crate::money::Reconciliation>, Problem> {
    caller.require(&[Role::Auditor])?;
    crate::money::run(
        &context.store,
        &context.pool,
        context.gateway_url.as_deref(),
        &caller.actor(),
        context.clock.now(),
    )
    .await
    .map(Json)
    .map_err(|error| match &error {
        crate::money::MoneyError::Gateway { .. }
        | crate::money::MoneyError::Database(
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
        ) => Problem::unavailable(&error),
        _ => Problem::internal(&error),
    })
}

/// The state of an aggregate (customer, vehicle, trip, account, …) as of a time: its events
/// recorded at or before `as_of`, folded with the domain's own rules (auditor). Recorded as an
/// `AuditStateQueried` event.
#[utoipa::path(
    get,
    path = "/v1/audit/streams/{stream_id}/state",
    operation_id = "audit_stream_state",
    tag = "audit",
    params(
        ("stream_id" = String, Path, description = "The aggregate's stream, for example `trip-<uuid>`"),
        ("as_of" = DateTime<Utc>, Query, description = "The time (RFC 3339): events recorded at or before it are included"),
    ),
    responses(
        (status = 200, description = "The state as of the time", body = crate::as_of::StateAsOf),
        http_edge::openapi::QueryProblems,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn audit_stream_state(
    State(context): State<AuditContext>,
    caller: Caller,
    Path(stream_id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<crate::as_of::StateAsOf>, Problem> {
    use crate::as_of::{AsOfError, STATE_QUERIED};
    caller.require(&[Role::Auditor])?;
    let Query(pairs) = query
        .map_err(|rejection| Problem::new(ProblemType::MalformedQuery, rejection.body_text()))?;
    if let Some((name, _)) = pairs.iter().find(|(name, _)| name != "as_of") {
        return Err(Problem::invalid_field(
            name.clone(),
            "unknown parameter; the only one is as_of",
        ));
    }
    let as_of = match pairs.iter().find(|(name, _)| name == "as_of") {
        None => return Err(Problem::invalid_field("as_of", "is required (RFC 3339)")),
        Some((_, value)) => DateTime::parse_from_rfc3339(value.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Problem::invalid_field(
                    "as_of",
                    format!("must be an RFC 3339 time such as 2026-11-26T10:00:00Z, not {value:?}"),
                )
            })?,
    };
    let state = crate::as_of::load(&context.reader, &stream_id, as_of)
        .await
        .map_err(|error| match &error {
            AsOfError::UnknownCategory { .. } => {
                Problem::invalid_field("stream_id", error.to_string())
            }
            AsOfError::NoStream(_) => Problem::new(ProblemType::NotFound, error.to_string()),
            AsOfError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => Problem::unavailable(&error),
            _ => Problem::internal(&error),
        })?;
    record::append(
        &context.store,
        AUDIT_LOG_STREAM,
        STATE_QUERIED,
        json!({
            "by": caller.actor(),
            "stream_id": stream_id,
            "as_of": as_of,
            "version": state.version,
            "last_position": state.last_position,
        }),
        &caller.actor(),
        context.clock.now(),
    )
    .await
    .map_err(|error| Problem::unavailable(&error))?;
    Ok(Json(state))
}

fn internal(error: crate::AuditError) -> Problem {
    match &error {
        crate::AuditError::Database(
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
        ) => Problem::unavailable(&error),
        _ => Problem::internal(&error),
    }
}

struct Request {
    filters: Filters,
    after: LogPosition,
    after_text: Option<String>,
    limit: u32,
}

fn parse(pairs: &[(String, String)]) -> Result<Request, Problem> {
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in pairs {
        if !PARAMETERS.contains(&name.as_str()) {
            return Err(Problem::invalid_field(
                name.clone(),
                format!(
                    "unknown parameter; the filters are {}",
                    PARAMETERS.join(", ")
                ),
            ));
        }
        if seen.contains(&name.as_str()) {
            return Err(Problem::invalid_field(
                name.clone(),
                "must be given at most once",
            ));
        }
        seen.push(name);
    }
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
    };
    let text = |name: &str, max: usize| -> Result<Option<String>, Problem> {
        match get(name) {
            None => Ok(None),
            Some(value) if value.is_empty() || value.len() > max => Err(Problem::invalid_field(
                name,
                format!("must be 1 to {max} characters"),
            )),
            Some(value) => Ok(Some(value.to_owned())),
        }
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, Problem> {
        get(name)
            .map(|value| {
                DateTime::parse_from_rfc3339(value)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        Problem::invalid_field(
                            name,
                            format!(
                                "must be an RFC 3339 time such as 2026-11-26T10:00:00Z, not {value:?}"
                            ),
                        )
                    })
            })
            .transpose()
    };
    let category = text("category", 100)?;
    if let Some(category) = &category
        && !category.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        return Err(Problem::invalid_field(
            "category",
            format!(
                "a category is lower-case letters and '_' (the part of a stream id before '-'), not {category:?}"
            ),
        ));
    }
    let correlation_id = get("correlation_id")
        .map(|value| {
            Uuid::parse_str(value).map_err(|_| {
                Problem::invalid_field("correlation_id", format!("must be a UUID, not {value:?}"))
            })
        })
        .transpose()?;
    let from = time("from")?;
    let to = time("to")?;
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        return Err(Problem::invalid_field("to", "must be later than from"));
    }
    let after_text = get("after").map(str::to_owned);
    let after = match &after_text {
        None => LogPosition::START,
        Some(value) => history::parse_cursor(value).ok_or_else(|| {
            Problem::invalid_field(
                "after",
                "must be the `next` of a previous page, passed back unchanged",
            )
        })?,
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(value) => value
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Problem::invalid_field(
                    "limit",
                    format!("must be a number from 1 to {MAX_LIMIT}, not {value:?}"),
                )
            })?,
    };
    Ok(Request {
        filters: Filters {
            category,
            event_type: text("event_type", 200)?,
            actor: text("actor", 500)?,
            correlation_id,
            from,
            to,
        },
        after,
        after_text,
        limit,
    })
}
