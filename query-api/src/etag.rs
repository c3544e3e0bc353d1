//! Conditional GETs for polled reads: every successful JSON answer of the query API carries an
//! `ETag` (a hash of its body), and a poller that sends it back in `If-None-Match` gets an empty
//! 304 instead of the same body again. Answers depend on the token, so they are marked
//! `private, no-cache` (a cache must ask again each time) and vary by `Authorization`. Routes
//! that set their own `ETag` (the public GBFS feed) are left as they are.

use crate::gbfs::{hex, matches_etag};
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, ETAG, VARY};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Answers at most this large are hashed; larger ones pass through without an `ETag`.
const MAX_HASHED_BODY: usize = 8 * 1024 * 1024;

/// The middleware: adds `ETag` to 200 answers to `GET` and turns a matching `If-None-Match` into
/// 304 Not Modified.
pub(crate) async fn conditional(request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let if_none_match = request.headers().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(ETAG) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_HASHED_BODY).await {
        Ok(bytes) => bytes,
        Err(error) => return http_edge::Problem::internal(&error).into_response(),
    };
    let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)[..16]));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        parts.headers.insert(ETAG, value);
    }
    parts
        .headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    parts
        .headers
        .insert(VARY, HeaderValue::from_static("Authorization"));
    if matches_etag(&if_none_match, &etag) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(axum::http::header::CONTENT_TYPE);
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}
