//! Operating endpoints: liveness, readiness, Prometheus metrics and the admin views.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

/// What the operating endpoints look at.
#[derive(Clone)]
pub struct OpsContext {
    pub pool: sqlx::PgPool,
    pub store: event_store::EventStore,
    pub projections: projectors::Projections,
    pub prometheus: PrometheusHandle,
    /// Checks the bearer tokens of the admin routes.
    pub keys: http_edge::TokenKeys,
    /// Business time: what counts as an overdue saga timer.
    pub clock: std::sync::Arc<dyn event_store::clock::Clock>,
}

impl std::fmt::Debug for OpsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsContext").finish_non_exhaustive()
    }
}

impl axum::extract::FromRef<OpsContext> for http_edge::TokenKeys {
    fn from_ref(context: &OpsContext) -> http_edge::TokenKeys {
        context.keys.clone()
    }
}

/// The operating routes' part of the OpenAPI document (`/openapi.json` is listed here; the other
/// routes add themselves through `routes!`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(http_edge::openapi::openapi_json),
    tags((name = "operations", description = "Health, readiness, metrics and this document"))
)]
struct OpsDoc;

pub fn router(context: OpsContext) -> (Router, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(OpsDoc::openapi())
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
        .routes(utoipa_axum::routes!(metrics))
        .routes(utoipa_axum::routes!(projections))
        .routes(utoipa_axum::routes!(sagas))
        .with_state(context)
        .split_for_parts()
}

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", content_type = "application/json")),
)]
async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Ready for traffic: the database answers and every projector has caught up with the log.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", content_type = "application/json"),
        (status = 503, description = "Not ready: the database is unreachable or a projector is behind", content_type = "application/json"),
    ),
)]
async fn readyz(State(context): State<OpsContext>) -> Response {
    let database = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&context.pool)
        .await
        .is_ok();
    let projections = if database {
        context.projections.caught_up(&context.store).await.ok()
    } else {
        None
    };
    let ready = database
        && projections
            .as_ref()
            .is_some_and(|p| p.iter().all(|(_, up)| *up));
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": if database { "reachable" } else { "unreachable" },
        "projectors": projections
            .unwrap_or_default()
            .into_iter()
            .map(|(name, up)| (name, if up { "caught up" } else { "behind" }))
            .collect::<std::collections::BTreeMap<_, _>>(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Prometheus text format: request latency, append rate, projector position and lag.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus exposition format", content_type = "text/plain")),
)]
async fn metrics(State(context): State<OpsContext>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        context.prometheus.render(),
    )
        .into_response()
}

/// One projector as `GET /v1/admin/projections` shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct ProjectionReport {
    name: String,
    /// `starting`, `running`, `retrying` (failing: see `last_error`) or `stopped`.
    status: &'static str,
    /// The committed checkpoint's log position (every event up to it is in the read model).
    position: i64,
    /// The last committed event's position.
    head: i64,
    /// Roughly how many events are still to apply (0: caught up).
    lag_events: u64,
    /// How long ago (wall clock) the oldest event not yet applied was stored; 0 when caught up.
    lag_ms: i64,
    /// Events applied since the process started.
    events_applied: u64,
    /// Batches committed since the process started.
    batches_committed: u64,
    /// Failed attempts since the last committed batch.
    consecutive_failures: u32,
    /// The most recent failure, kept after recovery for diagnosis.
    last_error: Option<ProjectionErrorReport>,
}

/// A projector's most recent failure and the event it stopped at.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct ProjectionErrorReport {
    error: String,
    failed_at: chrono::DateTime<chrono::Utc>,
    /// The event being applied, when the failure was in applying one.
    event: Option<serde_json::Value>,
}

/// Every projector's position, lag (in events and in milliseconds) and health, for operators.
#[utoipa::path(
    get,
    path = "/v1/admin/projections",
    operation_id = "list_projections",
    tag = "operations",
    responses(
        (status = 200, description = "Every projector, by name", body = [ProjectionReport]),
        http_edge::openapi::QueryProblems,
    ),
    security(("bearer" = [])),
)]
async fn projections(
    State(context): State<OpsContext>,
    caller: http_edge::Caller,
) -> Result<axum::Json<Vec<ProjectionReport>>, http_edge::Problem> {
    use http_edge::Role;
    use projectors::RunnerState;
    caller.require(&[Role::Service, Role::Support, Role::Auditor])?;
    let unavailable = |error: event_store::StoreError| {
        http_edge::Problem::unavailable(&format!("reading the event log failed: {error}"))
    };
    let head = context.store.head().await.map_err(unavailable)?;
    let now = chrono::Utc::now();
    let mut reports = Vec::new();
    for status in context.projections.statuses() {
        let snapshot = status.snapshot();
        let lag = projectors::lag_between(snapshot.position, head);
        let lag_ms = if lag.caught_up() {
            0
        } else {
            let next = context
                .store
                .read_log(snapshot.position, 1)
                .await
                .map_err(unavailable)?;
            next.first()
                .map(|event| (now - event.recorded_at).num_milliseconds().max(0))
                .unwrap_or(0)
        };
        reports.push(ProjectionReport {
            name: snapshot.name.to_string(),
            status: match snapshot.state {
                RunnerState::Starting => "starting",
                RunnerState::Running => "running",
                RunnerState::Retrying => "retrying",
                RunnerState::Stopped => "stopped",
                RunnerState::Standby => "standby",
            },
            position: snapshot.position.position,
            head: head.position,
            lag_events: lag.behind_events,
            lag_ms,
            events_applied: snapshot.events_applied,
            batches_committed: snapshot.batches_committed,
            consecutive_failures: snapshot.consecutive_failures,
            last_error: snapshot.last_error.map(|failure| ProjectionErrorReport {
                error: failure.error,
                failed_at: failure.failed_at,
                event: failure.event.map(|event| {
                    json!({
                        "position": event.log_position.position,
                        "stream_id": event.stream_id,
                        "stream_version": event.stream_version,
                        "event_type": event.event_type,
                        "event_id": event.event_id,
                    })
                }),
            }),
        });
    }
    Ok(axum::Json(reports))
}

/// Every saga's instances by status, its overdue and failing timers, its pending and failed
/// commands, and its last failure, for operators.
#[utoipa::path(
    get,
    path = "/v1/admin/sagas",
    operation_id = "list_sagas",
    tag = "operations",
    responses(
        (status = 200, description = "Every saga that has run, by name", body = [Object]),
        http_edge::openapi::QueryProblems,
    ),
    security(("bearer" = [])),
)]
async fn sagas(
    State(context): State<OpsContext>,
    caller: http_edge::Caller,
) -> Result<axum::Json<serde_json::Value>, http_edge::Problem> {
    use http_edge::Role;
    caller.require(&[Role::Service, Role::Support, Role::Auditor])?;
    let now = context.clock.now();
    let summaries = sagas::overview(&context.pool, now).await.map_err(|error| {
        http_edge::Problem::unavailable(&format!("reading the sagas failed: {error}"))
    })?;
    Ok(axum::Json(json!(summaries)))
}
