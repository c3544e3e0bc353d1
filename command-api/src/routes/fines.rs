//! Fines: the traffic-fine feed imports each fine once per resolution number.
//!
//! The import decides against the fine that already holds the resolution number's claim, if any
//! (a fresh fine otherwise), and a new fine takes the claim in the append that records it. So a
//! repeated import is answered 200 with the first fine and appends nothing, a contradicting one
//! is a 409, and of two concurrent imports exactly one lands: the other loses the claim, decides
//! again against the winner's fine and becomes the repeat.

use super::envelope_of;
use crate::CommandContext;
use crate::load::load;
use crate::pipeline::{Decision, execute, write};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use domain::Decider;
use domain::account::positive_amount;
use domain::claims::Claim;
use domain::fine::{Fine, FineCommand, FineContext, FineDetails, ResolutionNumber};
use domain::geo::GeoPoint;
use domain::ids::FineId;
use domain::value::Plate;
use event_store::Claims;
use http_edge::openapi::CommandProblems;
use http_edge::{Caller, JsonBody, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/fines` body: one resolution from the feed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportFineBody {
    /// The fined car's plate.
    #[schema(example = "А123ВС777")]
    plate: String,
    /// When the offence happened; not in the future.
    occurred_at: DateTime<Utc>,
    /// Where.
    #[schema(example = 55.7648)]
    lat: f64,
    #[schema(example = 37.6056)]
    lon: f64,
    /// The fine as resolved: positive.
    #[schema(example = 50_000)]
    amount_kopecks: i64,
    /// The resolution's number (its UIN): 20 or 25 digits.
    #[schema(example = "18810177231125000017")]
    resolution_number: String,
    /// The day the resolution was issued: not before the offence.
    issued_on: NaiveDate,
}

impl ImportFineBody {
    fn details(&self) -> Result<FineDetails, domain::FieldError> {
        Ok(FineDetails {
            resolution_number: ResolutionNumber::parse(
                "resolution_number",
                &self.resolution_number,
            )?,
            plate: Plate::parse("plate", &self.plate)?,
            occurred_at: self.occurred_at,
            place: GeoPoint::parse("lat", self.lat, "lon", self.lon)?,
            amount_kopecks: positive_amount("amount_kopecks", self.amount_kopecks)?,
            issued_on: self.issued_on,
        })
    }
}

/// The imported fine.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FineImported {
    fine_id: FineId,
    /// `open`: not yet matched to a driver.
    status: &'static str,
    /// Whether this resolution had been imported before (nothing was appended this time).
    duplicate: bool,
}

/// The fine feed imports a fine; a resolution number already imported is answered with its fine.
#[utoipa::path(
    post,
    path = "/v1/fines",
    operation_id = "import_fine",
    tag = "fines",
    request_body = ImportFineBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses(
        (status = 201, description = "Imported: the fine is open", body = FineImported),
        (status = 200, description = "Imported before with the same details: the existing fine, nothing appended", body = FineImported),
        CommandProblems,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn import(
    State(context): State<CommandContext>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<ImportFineBody>,
) -> Response {
    if let Err(problem) = caller.require(&[Role::Service]) {
        return problem.into_response();
    }
    let envelope = match envelope_of(&caller, &method, &uri, &headers, &body.raw) {
        Ok(envelope) => envelope,
        Err(problem) => return problem.into_response(),
    };
    let new_fine_id = FineId(Uuid::now_v7());
    let context = &context;
    let body = &body.value;
    execute(context, envelope, || async move {
        let details = body.details()?;
        let claim = Claim::FineResolution(details.resolution_number.to_string()).key();
        let holder = context
            .store
            .claim_holder(&claim)
            .await?
            .and_then(|stream| FineId::from_stream_id(&stream));
        let fine_id = holder.unwrap_or(new_fine_id);
        let stream_id = fine_id.stream_id();
        let fine = load::<Fine>(&context.store, &stream_id).await?;
        let now = context.clock.now();
        let events = Fine::decide(
            &fine.state,
            &FineCommand::Receive(details),
            &FineContext { fine_id, now },
        )?;
        let status = fine.state.status.as_str();
        if events.is_empty() {
            return Ok(Decision {
                writes: Vec::new(),
                claims: Claims::default(),
                status: StatusCode::OK,
                body: json!(FineImported {
                    fine_id,
                    status,
                    duplicate: true,
                }),
            });
        }
        Ok(Decision {
            claims: Claims {
                acquire: events
                    .iter()
                    .flat_map(Claim::acquired_by_fine)
                    .map(|claim| claim.key())
                    .collect(),
                holder: Some(stream_id.clone()),
                release: Vec::new(),
            },
            writes: vec![write(stream_id, fine.expected(), &events, now)?],
            status: StatusCode::CREATED,
            body: json!(FineImported {
                fine_id,
                status: domain::fine::FineStatus::Open.as_str(),
                duplicate: false,
            }),
        })
    })
    .await
}
