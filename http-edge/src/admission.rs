//! Admission control: at most N requests inside the server at once; the rest are refused at the
//! door with `503` and `Retry-After`, instead of queueing.
//!
//! Without it every request is admitted and waits for one of the few database connections, so
//! under more load than the pool can serve the queue (and memory, and latency) grows without
//! bound: the peak benchmark saw 1.9 GB and a p99 of over a minute. With it the server holds at
//! most `--max-in-flight` requests, answers the rest in microseconds, and a client that retries
//! after the `Retry-After` gets served once the burst has passed. The operating routes
//! (`/healthz`, `/readyz`, `/metrics`, `/v1/admin/projections`) are never refused, so the server
//! can be watched while it sheds.

use crate::ProblemType;
use crate::problem::Problem;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Routes answered whatever the load.
const ALWAYS_ADMITTED: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/v1/admin/projections"];

/// The door: how many requests may be inside at once.
#[derive(Clone, Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Admission {
    /// Admits at most `limit` requests at once (at least one).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

/// The middleware: runs the request if a place is free, else answers `503 overloaded`.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    if ALWAYS_ADMITTED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(permit) = admission.permits.clone().try_acquire_owned() else {
        metrics::counter!("velka_http_shed_total").increment(1);
        let mut response = Problem::new(
            ProblemType::Overloaded,
            format!(
                "{} requests are already in progress (--max-in-flight); retry after the \
                 Retry-After seconds",
                admission.limit
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    /// A router whose `/slow` waits for a permit of `release`, behind a door of `limit`.
    fn app(limit: usize, entered: Arc<AtomicUsize>, release: Arc<Semaphore>) -> Router {
        let slow = move || {
            let entered = entered.clone();
            let release = release.clone();
            async move {
                entered.fetch_add(1, Ordering::SeqCst);
                if let Ok(permit) = release.acquire().await {
                    permit.forget();
                }
                "done"
            }
        };
        Router::new()
            .route("/slow", get(slow))
            .route("/fast", get(|| async { "fast" }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Admission::new(limit),
                admit,
            ))
    }

    fn get_request(path: &str) -> Request {
        Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("a request")
    }

    async fn wait_until(deadline_ms: u64, condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(deadline_ms);
        while !condition() {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met in time"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn beyond_the_limit_requests_are_refused_with_retry_after_and_admitted_again_after() {
        let entered = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Semaphore::new(0));
        let app = app(2, entered.clone(), release.clone());

        // Two slow requests fill the door.
        let first = tokio::spawn(app.clone().oneshot(get_request("/slow")));
        let second = tokio::spawn(app.clone().oneshot(get_request("/slow")));
        wait_until(5_000, || entered.load(Ordering::SeqCst) == 2).await;

        // A third is refused at once, as problem+json with Retry-After.
        let refused = app
            .clone()
            .oneshot(get_request("/fast"))
            .await
            .expect("an answer");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            refused.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(refused.into_body(), 1 << 16)
            .await
            .expect("the body");
        let problem: Problem = serde_json::from_slice(&body).expect("a problem");
        assert_eq!(problem.rule, "overloaded");
        assert!(problem.detail.contains("2 requests"), "{}", problem.detail);

        // The health check is answered while the door is full.
        let health = app
            .clone()
            .oneshot(get_request("/healthz"))
            .await
            .expect("an answer");
        assert_eq!(health.status(), StatusCode::OK);

        // Once the slow ones finish, requests are admitted again.
        release.add_permits(2);
        for slow in [first, second] {
            let response = slow.await.expect("the task").expect("an answer");
            assert_eq!(response.status(), StatusCode::OK);
        }
        let admitted = app.oneshot(get_request("/fast")).await.expect("an answer");
        assert_eq!(admitted.status(), StatusCode::OK);
    }
}
