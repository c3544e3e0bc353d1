//! The command routes, one file per resource.

mod admin;
mod customers;
mod trips;
mod vehicles;

use crate::CommandContext;
use crate::pipeline::Envelope;
use axum::Router;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::post;
use http_edge::{Caller, Problem};

pub(crate) fn router() -> Router<CommandContext> {
    Router::new()
        .route("/v1/customers", post(customers::register))
        .route(
            "/v1/customers/{customer_id}/verification",
            post(customers::decide_verification),
        )
        .route("/v1/vehicles", post(vehicles::add))
        .route(
            "/v1/vehicles/{vehicle_id}/telemetry",
            post(vehicles::telemetry),
        )
        .route("/v1/trips", post(trips::start))
        .route("/v1/trips/{trip_id}/park", post(trips::park))
        .route("/v1/trips/{trip_id}/resume", post(trips::resume))
        .route("/v1/trips/{trip_id}/end", post(trips::end))
        .route(
            "/v1/admin/clock",
            post(admin::advance_clock).get(admin::read_clock),
        )
}

/// The envelope of a request, for routes that need a caller.
pub(crate) fn envelope_of(
    caller: &Caller,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Envelope, Problem> {
    Envelope::read(Some(caller), "", headers, &format!("{method} {uri}"), body)
}

/// Parses an id from the path; a malformed one names nothing that exists, so it is a 404.
pub(crate) fn path_id(raw: &str, rule: &str, what: &str) -> Result<uuid::Uuid, Problem> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| Problem::not_found(rule, format!("{what} {raw:?} does not exist")))
}
