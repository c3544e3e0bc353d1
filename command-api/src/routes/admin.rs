//! Operating the clock in tests and demos. Only a manual clock (`VELKA_CLOCK=manual`) moves;
//! with the real clock these routes say so and change nothing.

use crate::CommandContext;
use axum::Json;
use axum::extract::State;
use http_edge::openapi::CommandProblems;
use http_edge::{Authorized, JsonBody, Problem, ProblemType, roles};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most the clock may be moved in one call: 30 days.
const MAX_ADVANCE_S: i64 = 30 * 24 * 3600;

/// `POST /v1/admin/clock` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvanceClock {
    /// Seconds to move forward, 0 to 2,592,000 (30 days).
    #[schema(example = 1020)]
    advance_seconds: i64,
}

/// The time the server decides with.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClockReading {
    now: chrono::DateTime<chrono::Utc>,
    /// Whether the clock is manual (`VELKA_CLOCK=manual`).
    manual: bool,
}

/// Moves a manual clock forward (service role).
#[utoipa::path(
    post,
    path = "/v1/admin/clock",
    operation_id = "advance_clock",
    tag = "admin",
    request_body = AdvanceClock,
    responses((status = 200, description = "The new time", body = ClockReading), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn advance_clock(
    State(context): State<CommandContext>,
    Authorized { caller, .. }: Authorized<roles::Service>,
    body: JsonBody<AdvanceClock>,
) -> Result<Json<ClockReading>, Problem> {
    let Some(clock) = &context.manual_clock else {
        return Err(Problem::new(
            ProblemType::ClockNotManual,
            "start the server with VELKA_CLOCK=manual to move the clock",
        ));
    };
    let seconds = body.value.advance_seconds;
    if !(0..=MAX_ADVANCE_S).contains(&seconds) {
        return Err(Problem::invalid_field(
            "advance_seconds",
            format!("must be between 0 and {MAX_ADVANCE_S} (the clock never goes back)"),
        ));
    }
    let now = clock.advance(chrono::Duration::seconds(seconds));
    tracing::info!(%now, seconds, actor = %caller.actor(), "manual clock advanced");
    Ok(Json(ClockReading { now, manual: true }))
}

/// Tells the time the server decides with (service role).
#[utoipa::path(
    get,
    path = "/v1/admin/clock",
    operation_id = "read_clock",
    tag = "admin",
    responses((status = 200, description = "The time", body = ClockReading), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn read_clock(
    State(context): State<CommandContext>,
    _: Authorized<roles::Service>,
) -> Json<ClockReading> {
    Json(ClockReading {
        now: context.clock.now(),
        manual: context.manual_clock.is_some(),
    })
}
