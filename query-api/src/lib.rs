//! The read side over HTTP: trips from `trips_view`, available cars near a point from
//! `vehicles_view`, service tasks from `service_tasks_view`, the raw history of a stream
//! for support and audit, and the public GBFS v3.0 feed (`gbfs`).
//!
//! Every answer is built from a read model the projectors maintain (except stream history, read
//! from the event store itself), so it may lag the last command by a moment; every error is an
//! [`http_edge::Problem`].
//!
//! Architecture invariant: reads only. Never appends events, never writes a table, never calls
//! the command API, and holds no business rule (prices come from `domain::trip::price`).

mod accounts;
mod crm;
mod error;
mod etag;
mod fines;
pub mod gbfs;
mod params;
mod reservations;
mod search_area;
mod service_tasks;
mod streams;
mod trips;
mod vehicles;

use axum::Router;
use axum::extract::FromRef;
use event_store::EventStore;
use event_store::clock::Clock;
use http_edge::TokenKeys;
use http_edge::openapi::BearerAuth;
use sqlx::PgPool;
use std::sync::Arc;

/// What every query route needs, shared by all requests.
#[derive(Clone, Debug)]
pub struct QueryContext {
    /// The database holding the read models.
    pub pool: PgPool,
    /// The event store, for stream history.
    pub store: EventStore,
    /// Checks bearer tokens.
    pub keys: TokenKeys,
    /// Where "now" comes from: a running price is priced at the clock's now.
    pub clock: Arc<dyn Clock>,
    /// How demand sets the current price of a car in its pricing zone (the standard tariff is
    /// the feed's, `gbfs.tariff`).
    pub pricing: Arc<domain::pricing::PricingPolicy>,
    /// What the public GBFS feed publishes besides the cars: the system, zones, prices, and
    /// the key that rotates vehicle ids.
    pub gbfs: Arc<gbfs::GbfsConfig>,
}

impl FromRef<QueryContext> for TokenKeys {
    fn from_ref(context: &QueryContext) -> TokenKeys {
        context.keys.clone()
    }
}

/// The query side's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    components(schemas(http_edge::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "audit", description = "Event history for support and auditors"),
        (name = "gbfs", description = "The public GBFS v3.0 feed: no token, cacheable")
    )
)]
struct QueryDoc;

/// Every query route, ready to merge with the command router, and their part of the OpenAPI
/// document.
pub fn router(context: QueryContext) -> (Router, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(QueryDoc::openapi())
        .routes(utoipa_axum::routes!(trips::get_trip))
        .routes(utoipa_axum::routes!(vehicles::available))
        .routes(utoipa_axum::routes!(streams::stream_events))
        .routes(utoipa_axum::routes!(accounts::get_account))
        .routes(utoipa_axum::routes!(fines::get_fine))
        .routes(utoipa_axum::routes!(service_tasks::get_service_task))
        .routes(utoipa_axum::routes!(reservations::get_reservation))
        .routes(utoipa_axum::routes!(gbfs::discovery))
        .routes(utoipa_axum::routes!(gbfs::system_information))
        .routes(utoipa_axum::routes!(gbfs::vehicle_types))
        .routes(utoipa_axum::routes!(gbfs::vehicle_status))
        .routes(utoipa_axum::routes!(gbfs::geofencing_zones))
        .routes(utoipa_axum::routes!(gbfs::system_pricing_plans))
        .routes(utoipa_axum::routes!(crm::holder::vehicle_holder))
        .routes(utoipa_axum::routes!(crm::holder::vehicle_holder_by_plate))
        .routes(utoipa_axum::routes!(crm::search::support_search))
        .routes(utoipa_axum::routes!(crm::trips::customer_trips))
        .routes(utoipa_axum::routes!(crm::customer::customer_360))
        .routes(utoipa_axum::routes!(crm::fleet::fleet_status))
        .with_state(context)
        .layer(axum::middleware::from_fn(etag::conditional))
        .split_for_parts()
}
