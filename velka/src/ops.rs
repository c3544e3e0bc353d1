//! Operating endpoints: liveness, readiness, Prometheus metrics, and the request-metrics layer.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::time::Instant;

/// What the operating endpoints look at.
#[derive(Clone)]
pub struct OpsContext {
    pub pool: sqlx::PgPool,
    pub store: event_store::EventStore,
    pub projections: projectors::Projections,
    pub prometheus: PrometheusHandle,
}

pub fn router(context: OpsContext) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(context)
}

/// The process is up and serving.
async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Ready for traffic: the database answers and every projector has caught up with the log.
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

/// Prometheus text format.
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

/// Any path no route matches: a problem, like every other error.
pub async fn no_route(uri: axum::http::Uri) -> Response {
    http_edge::Problem::not_found("route-not-found", format!("no route for {}", uri.path()))
        .into_response()
}

/// A known path asked with a method it does not take.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    http_edge::Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "The route does not take this method",
        format!("{} does not take {method}", uri.path()),
    )
    .into_response()
}

/// Records every request's latency by method, route template and status.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "velka_http_request_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    response
}
