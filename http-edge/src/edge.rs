//! What every router of the server shares at its edge: a problem for a path no route matches or
//! a method a path does not take, and the request-latency metric.

use crate::{Problem, ProblemType};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Any path no route matches: a problem, like every other error.
pub async fn no_route(uri: axum::http::Uri) -> Response {
    Problem::not_found(
        ProblemType::RouteNotFound,
        format!("no route for {}", uri.path()),
    )
    .into_response()
}

/// A known path asked with a method it does not take.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    Problem::new(
        ProblemType::MethodNotAllowed,
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
