//! The command routes, one file per resource, registered together with their OpenAPI
//! descriptions so that a route cannot exist without its documentation. Each route's
//! `operation_id` is also its command name on NATS (`velka.commands.<operation_id>`).
//!
//! A route takes its caller, body and envelope from one extractor of [`crate::request`], which
//! names the roles that may use it, and returns `Result<_, Problem>`.

mod accounts;
mod admin;
mod companies;
mod customers;
mod fines;
mod fleet;
mod kyc;
mod penalties;
mod quotes;
mod reservations;
mod trips;
mod vehicles;

use crate::CommandContext;
use http_edge::Problem;
use http_edge::openapi::BearerAuth;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The command side's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "customers", description = "Registration and verification"),
        (name = "vehicles", description = "The fleet and its telemetry"),
        (name = "trips", description = "Taking, driving, parking and handing back a car"),
        (name = "admin", description = "Operating the system"),
        (name = "accounts", description = "Charges on a payer's account, their refunds and waivers"),
        (name = "penalties", description = "Penalties support issues against a trip"),
        (name = "fines", description = "Traffic fines imported from the fine feed"),
        (name = "companies", description = "Business accounts and their employees"),
        (name = "fleet", description = "Service tasks and damage reports"),
        (name = "quotes", description = "Prices for a car, multiplied by the demand in its zone"),
        (name = "reservations", description = "Holding a car before the trip"),
    )
)]
struct CommandDoc;

pub(crate) fn router() -> OpenApiRouter<CommandContext> {
    OpenApiRouter::with_openapi(CommandDoc::openapi())
        .routes(routes!(customers::register))
        .routes(routes!(customers::decide_verification))
        .routes(routes!(vehicles::add))
        .routes(routes!(vehicles::telemetry))
        .routes(routes!(trips::start))
        .routes(routes!(trips::park))
        .routes(routes!(trips::resume))
        .routes(routes!(trips::end))
        .routes(routes!(admin::advance_clock, admin::read_clock))
        .routes(routes!(accounts::refund_charge))
        .routes(routes!(accounts::waive_charge))
        .routes(routes!(accounts::record_payment))
        .routes(routes!(penalties::issue))
        .routes(routes!(fines::import))
        .routes(routes!(fines::match_fine))
        .routes(routes!(kyc::record_kyc_check))
        .routes(routes!(kyc::request_manual_review))
        .routes(routes!(customers::submit_documents))
        .routes(routes!(customers::block))
        .routes(routes!(customers::unblock))
        .routes(routes!(customers::erase))
        .routes(routes!(companies::register))
        .routes(routes!(companies::add_employee))
        .routes(routes!(companies::remove_employee))
        .routes(routes!(fleet::open_task))
        .routes(routes!(fleet::assign))
        .routes(routes!(fleet::start))
        .routes(routes!(fleet::complete))
        .routes(routes!(fleet::report_damage))
        .routes(routes!(quotes::request))
        .routes(routes!(reservations::reserve))
        .routes(routes!(reservations::cancel))
}

pub use reservations::expire_reservation;
