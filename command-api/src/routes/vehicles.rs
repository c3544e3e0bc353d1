//! Vehicles: fleet staff add cars; telematics units report their state.

use crate::CommandContext;
use crate::load::load;
use crate::pipeline::{Decision, execute, write};
use crate::request::{Command, path_id};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::Decider;
use domain::claims::Claim;
use domain::geo::GeoPoint;
use domain::ids::VehicleId;
use domain::value::{FuelPercent, ModelName, OdometerM, Plate, Vin};
use domain::vehicle::{
    Telemetry, Vehicle, VehicleCommand, VehicleContext, VehicleDetails, VehicleState,
};
use event_store::{Claims, ExpectedVersion};
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/vehicles` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddVehicle {
    /// Registration plate; unique in the fleet.
    #[schema(example = "А123ВС777")]
    plate: String,
    /// Vehicle identification number; unique in the fleet.
    #[schema(example = "XW8ZZZ61ZKG012345")]
    vin: String,
    #[schema(example = "Kia Rio")]
    model: String,
    /// Where the car stands, WGS 84 degrees.
    #[schema(example = 55.7648)]
    lat: f64,
    #[schema(example = 37.6056)]
    lon: f64,
    /// Fuel or charge, 0 to 100.
    #[schema(example = 80)]
    fuel_percent: f64,
    #[schema(example = 12000.0)]
    odometer_km: f64,
}

/// A car added to the fleet.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VehicleAdded {
    vehicle_id: VehicleId,
}

/// Fleet staff add a car to the fleet; it is available at once, locked.
#[utoipa::path(
    post,
    path = "/v1/vehicles",
    operation_id = "add_vehicle",
    tag = "vehicles",
    request_body = AddVehicle,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Added", body = VehicleAdded), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn add(
    State(context): State<CommandContext>,
    Command { envelope, body, .. }: Command<AddVehicle, roles::Fleet>,
) -> Result<Response, Problem> {
    let vehicle_id = VehicleId(Uuid::now_v7());
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let details = VehicleDetails {
            vehicle_id,
            plate: Plate::parse("plate", &body.plate)?,
            vin: Vin::parse("vin", &body.vin)?,
            model: ModelName::parse("model", &body.model)?,
        };
        let command = VehicleCommand::AddToFleet {
            details,
            position: GeoPoint::parse("lat", body.lat, "lon", body.lon)?,
            fuel_percent: FuelPercent::parse("fuel_percent", body.fuel_percent)?,
            odometer_m: OdometerM::from_km("odometer_km", body.odometer_km)?,
        };
        let now = context.clock.now();
        let events = Vehicle::decide(
            &VehicleState::default(),
            &command,
            &VehicleContext { vehicle_id, now },
        )?;
        let stream_id = vehicle_id.stream_id();
        Ok(Decision {
            claims: Claims {
                acquire: events
                    .iter()
                    .flat_map(Claim::acquired_by_vehicle)
                    .map(|claim| claim.key())
                    .collect(),
                holder: Some(stream_id.clone()),
                release: Vec::new(),
            },
            writes: vec![write(stream_id, ExpectedVersion::NoStream, &events, now)?],
            status: StatusCode::CREATED,
            body: json!(VehicleAdded { vehicle_id }),
        })
    })
    .await;
    Ok(response)
}

/// `POST /v1/vehicles/{id}/telemetry` body: a reading of the car's telematics unit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TelemetryBody {
    lat: f64,
    lon: f64,
    fuel_percent: f64,
    odometer_km: f64,
    doors_locked: bool,
}

/// What became of a reading.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TelemetryAccepted {
    vehicle_id: VehicleId,
    /// Whether the reading differed enough from the last one to be recorded as an event.
    recorded: bool,
}

/// A telematics unit (service role) reports; only a meaningful change becomes an event.
#[utoipa::path(
    post,
    path = "/v1/vehicles/{vehicle_id}/telemetry",
    operation_id = "record_telemetry",
    tag = "vehicles",
    request_body = TelemetryBody,
    params(("vehicle_id" = Uuid, Path, description = "The car"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Accepted", body = TelemetryAccepted), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn telemetry(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command { envelope, body, .. }: Command<TelemetryBody, roles::Service>,
) -> Result<Response, Problem> {
    let vehicle_id = VehicleId(path_id(&raw_id, ProblemType::VehicleNotFound, "vehicle")?);
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let reading = Telemetry {
            position: GeoPoint::parse("lat", body.lat, "lon", body.lon)?,
            fuel_percent: FuelPercent::parse("fuel_percent", body.fuel_percent)?,
            odometer_m: OdometerM::from_km("odometer_km", body.odometer_km)?,
            doors_locked: body.doors_locked,
        };
        let stream_id = vehicle_id.stream_id();
        let vehicle = load::<Vehicle>(&context.store, &stream_id).await?;
        let now = context.clock.now();
        let events = Vehicle::decide(
            &vehicle.state,
            &VehicleCommand::RecordTelemetry(reading),
            &VehicleContext { vehicle_id, now },
        )?;
        let recorded = !events.is_empty();
        Ok(Decision {
            writes: vec![write(stream_id, vehicle.expected(), &events, now)?],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!(TelemetryAccepted {
                vehicle_id,
                recorded
            }),
        })
    })
    .await;
    Ok(response)
}
