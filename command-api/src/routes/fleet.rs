//! Fleet operations: service tasks (opened on a car, assigned to a staff member, started and
//! completed by them) and damage reports with photos referenced by URL.

use crate::CommandContext;
use crate::load::{Streams, load};
use crate::pipeline::{CommandError, Decision, execute, write};
use crate::request::{Command, PathCommand, customer_of, path_id};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::Decider;
use domain::damage::{DamageReport, PhotoUrl, Reporter};
use domain::fleet::{self, CompleteServiceTask, OpenServiceTask, ReportDamage};
use domain::ids::{DamageReportId, ServiceTaskId, TripId, VehicleId};
use domain::service_task::{
    ServiceTask, ServiceTaskCommand, ServiceTaskContext, ServiceTaskKind, StaffId,
};
use domain::trip::Trip;
use domain::vehicle::Vehicle;
use event_store::Claims;
use http_edge::openapi::CommandProblems;
use http_edge::{Caller, Problem, ProblemType, Role, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// The staff member a fleet caller is: their token's subject.
fn staff_of(caller: &Caller) -> Result<StaffId, Problem> {
    caller.require(&[Role::Fleet])?;
    StaffId::parse("sub", &caller.subject)
        .map_err(|_| Problem::forbidden("the token's subject is not a staff id"))
}

fn task_in_path(raw_id: &str) -> Result<ServiceTaskId, Problem> {
    path_id(raw_id, ProblemType::ServiceTaskNotFound, "service task").map(ServiceTaskId)
}

/// `POST /v1/vehicles/{id}/service-tasks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenTaskBody {
    /// What to do.
    kind: ServiceTaskKind,
    /// Free text for the staff member (at most 1000 characters).
    #[serde(default)]
    #[schema(example = "Left mirror cracked")]
    note: Option<String>,
}

/// A task and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceTaskAnswer {
    task_id: ServiceTaskId,
    vehicle_id: VehicleId,
    /// `open`, `assigned`, `in_progress` or `completed`.
    status: &'static str,
    /// The car's status after the command: `in_service` while it has open tasks, then
    /// `available`.
    vehicle_status: &'static str,
}

/// Fleet staff open a service task on a car, taking it out of rotation. A car in a trip or
/// reserved cannot be sent to service.
#[utoipa::path(
    post,
    path = "/v1/vehicles/{vehicle_id}/service-tasks",
    operation_id = "open_service_task",
    tag = "fleet",
    request_body = OpenTaskBody,
    params(("vehicle_id" = Uuid, Path, description = "The car"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Opened; the car is in service", body = ServiceTaskAnswer), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn open_task(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command { envelope, body, .. }: Command<OpenTaskBody, roles::Fleet>,
) -> Result<Response, Problem> {
    let vehicle_id = VehicleId(path_id(&raw_id, ProblemType::VehicleNotFound, "vehicle")?);
    let task_id = ServiceTaskId(Uuid::now_v7());
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let (vehicle_stream, task_stream) = (vehicle_id.stream_id(), task_id.stream_id());
        let streams = Streams::read(
            &context.store,
            &[vehicle_stream.clone(), task_stream.clone()],
        )
        .await?;
        let vehicle = streams.fold::<Vehicle>(&vehicle_stream).await?;
        let task = streams.fold::<ServiceTask>(&task_stream).await?;
        let now = context.clock.now();
        let decision = fleet::open_service_task(OpenServiceTask {
            task_id,
            now,
            task: &task.state,
            vehicle_id,
            vehicle: &vehicle.state,
            kind: body.kind,
            note: body.note.clone(),
            after_trip_id: None,
        })?;
        Ok(Decision {
            writes: vec![
                write(task_stream, task.expected(), &decision.task, now)?,
                write(vehicle_stream, vehicle.expected(), &decision.vehicle, now)?,
            ],
            claims: Claims::default(),
            status: StatusCode::CREATED,
            body: json!(ServiceTaskAnswer {
                task_id,
                vehicle_id,
                status: "open",
                vehicle_status: "in_service",
            }),
        })
    })
    .await;
    Ok(response)
}

/// `POST /v1/service-tasks/{id}/assign` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignBody {
    /// The staff member (the subject of their fleet token).
    #[schema(example = "fleet-7")]
    staff_id: String,
}

/// Runs a single-stream task command (assign, start) and answers with the task's new status.
async fn task_step(
    context: &CommandContext,
    task_id: ServiceTaskId,
    command: &ServiceTaskCommand,
) -> Result<Decision, CommandError> {
    let stream_id = task_id.stream_id();
    let task = load::<ServiceTask>(&context.store, &stream_id).await?;
    let now = context.clock.now();
    let events = ServiceTask::decide(&task.state, command, &ServiceTaskContext { task_id, now })?;
    let after = events.iter().fold(task.state.clone(), |state, event| {
        ServiceTask::evolve(state, event)
    });
    let Some(opened) = &after.opened else {
        return Err(domain::Rejection::ServiceTaskNotFound { task_id }.into());
    };
    Ok(Decision {
        writes: vec![write(stream_id, task.expected(), &events, now)?],
        claims: Claims::default(),
        status: StatusCode::OK,
        body: json!(ServiceTaskAnswer {
            task_id,
            vehicle_id: opened.vehicle_id,
            status: after.status.as_str(),
            vehicle_status: "in_service",
        }),
    })
}

/// Fleet staff give a task to a staff member (or hand it to another before work starts).
#[utoipa::path(
    post,
    path = "/v1/service-tasks/{task_id}/assign",
    operation_id = "assign_service_task",
    tag = "fleet",
    request_body = AssignBody,
    params(("task_id" = Uuid, Path, description = "The task"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Assigned", body = ServiceTaskAnswer), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn assign(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command { envelope, body, .. }: Command<AssignBody, roles::Fleet>,
) -> Result<Response, Problem> {
    let task_id = task_in_path(&raw_id)?;
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let staff_id = StaffId::parse("staff_id", &body.staff_id)?;
        task_step(context, task_id, &ServiceTaskCommand::Assign { staff_id }).await
    })
    .await;
    Ok(response)
}

/// The assigned staff member starts work on the task.
#[utoipa::path(
    post,
    path = "/v1/service-tasks/{task_id}/start",
    operation_id = "start_service_task",
    tag = "fleet",
    params(("task_id" = Uuid, Path, description = "The task, assigned to the caller"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "In progress", body = ServiceTaskAnswer), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn start(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    PathCommand {
        caller, envelope, ..
    }: PathCommand<roles::Fleet>,
) -> Result<Response, Problem> {
    let staff_id = staff_of(&caller)?;
    let task_id = task_in_path(&raw_id)?;
    let context = &context;
    let command = &ServiceTaskCommand::Start { staff_id };
    let response = execute(context, envelope, || async move {
        task_step(context, task_id, command).await
    })
    .await;
    Ok(response)
}

/// `POST /v1/service-tasks/{id}/complete` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    /// What was done (at most 1000 characters).
    #[serde(default)]
    #[schema(example = "Washed, interior vacuumed")]
    note: Option<String>,
}

/// The staff member who started the task completes it; when it was the car's last open task,
/// the car is available again.
#[utoipa::path(
    post,
    path = "/v1/service-tasks/{task_id}/complete",
    operation_id = "complete_service_task",
    tag = "fleet",
    request_body = CompleteBody,
    params(("task_id" = Uuid, Path, description = "The task, started by the caller"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Completed", body = ServiceTaskAnswer), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn complete(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command {
        caller,
        envelope,
        body,
        ..
    }: Command<CompleteBody, roles::Fleet>,
) -> Result<Response, Problem> {
    let staff_id = staff_of(&caller)?;
    let task_id = task_in_path(&raw_id)?;
    let context = &context;
    let (staff_id, note) = (&staff_id, &body.note);
    let response = execute(context, envelope, || async move {
        let task_stream = task_id.stream_id();
        let task = load::<ServiceTask>(&context.store, &task_stream).await?;
        let Some(opened) = &task.state.opened else {
            return Err(domain::Rejection::ServiceTaskNotFound { task_id }.into());
        };
        let vehicle_id = opened.vehicle_id;
        let vehicle_stream = vehicle_id.stream_id();
        let vehicle = load::<Vehicle>(&context.store, &vehicle_stream).await?;
        let now = context.clock.now();
        let decision = fleet::complete_service_task(CompleteServiceTask {
            task_id,
            now,
            task: &task.state,
            vehicle: &vehicle.state,
            staff_id: staff_id.clone(),
            note: note.clone(),
        })?;
        let car = decision
            .vehicle
            .iter()
            .fold(vehicle.state.clone(), |state, event| {
                Vehicle::evolve(state, event)
            });
        Ok(Decision {
            writes: vec![
                write(task_stream, task.expected(), &decision.task, now)?,
                write(vehicle_stream, vehicle.expected(), &decision.vehicle, now)?,
            ],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!(ServiceTaskAnswer {
                task_id,
                vehicle_id,
                status: "completed",
                vehicle_status: car.status.as_str(),
            }),
        })
    })
    .await;
    Ok(response)
}

/// `POST /v1/vehicles/{id}/damage-reports` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DamageBody {
    /// What and where (1 to 2000 characters).
    #[schema(example = "Scratch on the rear bumper, left side")]
    description: String,
    /// 1 to 10 `https` URLs of photos already uploaded (each at most 2048 characters).
    #[schema(example = json!(["https://photos.velka.example/d/1.jpg"]))]
    photo_urls: Vec<String>,
    /// The trip during or after which the damage was found. A customer's report is tied to
    /// their current or just-ended trip in the car whether or not they name it.
    #[serde(default)]
    trip_id: Option<Uuid>,
}

/// A filed damage report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DamageReported {
    report_id: DamageReportId,
    vehicle_id: VehicleId,
    trip_id: Option<TripId>,
}

/// Someone reports damage on a car: a customer for the car they have in a trip or handed back
/// a moment ago, fleet staff or support for any car.
#[utoipa::path(
    post,
    path = "/v1/vehicles/{vehicle_id}/damage-reports",
    operation_id = "report_damage",
    tag = "fleet",
    request_body = DamageBody,
    params(("vehicle_id" = Uuid, Path, description = "The car"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Reported", body = DamageReported), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn report_damage(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command {
        caller,
        envelope,
        body,
        ..
    }: Command<DamageBody, (roles::Customer, roles::Fleet, roles::Support)>,
) -> Result<Response, Problem> {
    let reporter = match caller.role {
        Role::Customer => Reporter::Customer {
            customer_id: customer_of(&caller)?,
        },
        _ => Reporter::Staff,
    };
    let vehicle_id = VehicleId(path_id(&raw_id, ProblemType::VehicleNotFound, "vehicle")?);
    let report_id = DamageReportId(Uuid::now_v7());
    let context = &context;
    let (body, reporter) = (&body, &reporter);
    let response = execute(context, envelope, || async move {
        let photo_urls = body
            .photo_urls
            .iter()
            .enumerate()
            .map(|(index, raw)| PhotoUrl::parse(&format!("photo_urls[{index}]"), raw))
            .collect::<Result<Vec<_>, _>>()?;
        let trip_id = body.trip_id.map(TripId);
        let (vehicle_stream, report_stream) = (vehicle_id.stream_id(), report_id.stream_id());
        let mut stream_ids = vec![vehicle_stream.clone(), report_stream.clone()];
        stream_ids.extend(trip_id.map(|id| id.stream_id()));
        let streams = Streams::read(&context.store, &stream_ids).await?;
        let vehicle = streams.fold::<Vehicle>(&vehicle_stream).await?;
        let report = streams.fold::<DamageReport>(&report_stream).await?;
        let trip = match trip_id {
            Some(id) => Some((id, streams.fold::<Trip>(&id.stream_id()).await?.state)),
            None => None,
        };
        let now = context.clock.now();
        let events = fleet::report_damage(ReportDamage {
            report_id,
            now,
            report: &report.state,
            vehicle_id,
            vehicle: &vehicle.state,
            trip: trip.as_ref().map(|(id, state)| (*id, state)),
            reporter: reporter.clone(),
            description: body.description.clone(),
            photo_urls,
            policy: &context.fleet,
        })?;
        let trip_id = events.iter().find_map(|event| match event {
            domain::damage::DamageReportEvent::DamageReported { filing, .. } => filing.trip_id,
        });
        Ok(Decision {
            writes: vec![write(report_stream, report.expected(), &events, now)?],
            claims: Claims::default(),
            status: StatusCode::CREATED,
            body: json!(DamageReported {
                report_id,
                vehicle_id,
                trip_id,
            }),
        })
    })
    .await;
    Ok(response)
}
