//! The command side over HTTP: each route takes its request from one extractor
//! ([`request::Command`]: caller, role, body, envelope), parses it into domain values, loads the
//! aggregates it needs, asks the domain to decide, and appends the resulting events — all through
//! one pipeline ([`pipeline::execute`]) that handles idempotency keys, optimistic-concurrency
//! retries, claims and error responses in one place. A route returns `Result<_, Problem>`: what
//! refuses a request before the pipeline is a `?`.
//!
//! Architecture invariant: no business rule lives here (the domain decides); no read model is
//! read here (commands decide on event-sourced state only, so they never act on stale
//! projections). Three reads are the exception, and none decides a rule: a quote observes
//! supply and demand in `vehicles_view` and `demand_activity` and records those numbers in its
//! event (`demand`), the reservation expiry worker finds due reservations in
//! `reservations_view`, then expires each on its own stream (`expiry`), and matching a fine finds
//! the trip that had the car in `vehicle_possessions` (after waiting for it to reach the fine),
//! records the trip in `FineMatched`, and charges on the trip's own stream (`routes/fines.rs`).

mod charges;
mod demand;
pub mod expiry;
mod holdings;
mod load;
pub mod nats;
pub mod pii;
pub mod pipeline;
pub mod rejection;
pub mod request;
mod routes;

use axum::Router;
use axum::extract::FromRef;
use domain::customer::KycPolicy;
use domain::fleet::FleetPolicy;
use domain::pricing::{PricingPolicy, RentalTerms};
use domain::trip::Tariff;
use domain::zone::OperatingArea;
use event_store::EventStore;
use event_store::clock::{Clock, ManualClock};
use http_edge::TokenKeys;
use std::sync::Arc;

/// What every command route needs, shared by all requests.
#[derive(Clone, Debug)]
pub struct CommandContext {
    /// The event store commands append to.
    pub store: EventStore,
    /// Checks bearer tokens.
    pub keys: TokenKeys,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// The same clock when it is manual (`VELKA_CLOCK=manual`), so the admin route can move it.
    pub manual_clock: Option<Arc<ManualClock>>,
    /// Where trips may end.
    pub area: Arc<OperatingArea>,
    /// The tariff a trip is fixed to when it starts.
    pub tariff: Arc<Tariff>,
    /// The default amount of each kind of penalty (`fixtures/data/fees.json`).
    pub penalty_tariff: Arc<domain::penalty::PenaltyTariff>,
    /// Minimum age and driving experience for approving a customer (`fixtures/data/kyc.json`).
    pub kyc: Arc<KycPolicy>,
    /// Fleet thresholds: low fuel after a trip, the damage-report window
    /// (`fixtures/data/fleet.json`).
    pub fleet: Arc<FleetPolicy>,
    /// How quotes are priced, and the standard terms of reservations and quotes.
    pub pricing: Arc<Pricing>,
    /// The admin fee added to a traffic fine matched to a trip (`fixtures/data/fees.json`).
    pub fine_admin_fee_kopecks: domain::money::Kopecks,
    /// The secret the KYC provider signs its callbacks with (`POST /v1/webhooks/kyc`).
    pub kyc_webhook_secret: Arc<[u8]>,
    /// Payments: the hold at a trip's start; `None` runs without payments (trips start without
    /// a hold, and nothing is charged to a card).
    pub payments: Option<payments::Payments>,
}

/// The pricing settings of the city the server runs.
#[derive(Clone, Debug)]
pub struct Pricing {
    /// Zones, multiplier bounds, demand window, quote validity.
    pub policy: PricingPolicy,
    /// The standard trip and waiting tariffs, at 1.0×.
    pub standard: RentalTerms,
}

impl FromRef<CommandContext> for TokenKeys {
    fn from_ref(context: &CommandContext) -> TokenKeys {
        context.keys.clone()
    }
}

/// Every command route, and their part of the OpenAPI document.
pub fn router(context: CommandContext) -> (Router, utoipa::openapi::OpenApi) {
    routes::router().with_state(context).split_for_parts()
}
