//! Service tasks: the jobs fleet staff do on a car — refuel, wash, relocate, repair. A task is
//! opened (taking the car out of rotation), assigned to a staff member, started and completed
//! by them; when a car's last open task is completed, the car is available again.
//!
//! The task's own rules live here; opening and completing also change the car, and those
//! cross-aggregate steps live in [`crate::fleet`], which calls this decider for the task's part.

mod decide;
mod evolve;
#[cfg(test)]
mod tests;

use crate::decider::{Decider, DomainEvent};
use crate::ids::{ServiceTaskId, TripId, VehicleId};
use crate::rejection::{FieldError, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The service task decider.
#[derive(Debug)]
pub struct ServiceTask;

/// What kind of work a task is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceTaskKind {
    /// Fill the tank or charge the battery.
    Refuel,
    /// Clean the car inside and out.
    Wash,
    /// Move the car to where it is needed (or out of a place it may not stay).
    Relocate,
    /// Fix something broken.
    Repair,
}

impl ServiceTaskKind {
    /// The kind as a word, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refuel => "refuel",
            Self::Wash => "wash",
            Self::Relocate => "relocate",
            Self::Repair => "repair",
        }
    }
}

/// A fleet staff member, as named by the subject of their token (`fleet-7`, `a.smirnov`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StaffId(String);

impl StaffId {
    /// Parses a staff id: 1 to 100 characters, no whitespace or control characters.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        if value.is_empty()
            || value.chars().count() > 100
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(FieldError::new(
                field,
                "must be 1 to 100 characters without spaces",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is fixed when a task is opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTaskOpening {
    /// The task.
    pub task_id: ServiceTaskId,
    /// The car it is about.
    pub vehicle_id: VehicleId,
    /// What to do.
    pub kind: ServiceTaskKind,
    /// Free text for the staff member.
    pub note: Option<String>,
    /// The trip after which the task was opened automatically (low fuel), if it was.
    pub after_trip_id: Option<TripId>,
}

/// Where a task is in its life.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ServiceTaskStatus {
    /// No task with this id was opened.
    #[default]
    NotOpened,
    /// Opened, waiting for someone to take it.
    Open,
    /// Assigned to a staff member who has not started.
    Assigned { staff_id: StaffId },
    /// Being worked on.
    InProgress { staff_id: StaffId },
    /// Done.
    Completed { staff_id: StaffId },
}

impl ServiceTaskStatus {
    /// The status as a word, as the API shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotOpened => "not_opened",
            Self::Open => "open",
            Self::Assigned { .. } => "assigned",
            Self::InProgress { .. } => "in_progress",
            Self::Completed { .. } => "completed",
        }
    }
}

/// What a task's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceTaskState {
    /// What was fixed at opening, or `None` before.
    pub opened: Option<ServiceTaskOpening>,
    /// Where the task is.
    pub status: ServiceTaskStatus,
}

/// What can be asked of a service task.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum ServiceTaskCommand {
    /// Open a task on a car.
    Open {
        vehicle_id: VehicleId,
        kind: ServiceTaskKind,
        note: Option<String>,
        after_trip_id: Option<TripId>,
    },
    /// Give the task to a staff member (again, to hand it to someone else before they start).
    Assign { staff_id: StaffId },
    /// The assigned staff member starts work.
    Start { staff_id: StaffId },
    /// The staff member who started the work finishes it.
    Complete {
        staff_id: StaffId,
        note: Option<String>,
    },
}

/// What happened to a service task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ServiceTaskEvent {
    /// The task was opened; the car is out of rotation.
    ServiceTaskOpened {
        #[serde(flatten)]
        opening: ServiceTaskOpening,
        opened_at: DateTime<Utc>,
    },
    /// The task was given to a staff member.
    ServiceTaskAssigned {
        task_id: ServiceTaskId,
        staff_id: StaffId,
        assigned_at: DateTime<Utc>,
    },
    /// The staff member started work.
    ServiceTaskStarted {
        task_id: ServiceTaskId,
        staff_id: StaffId,
        started_at: DateTime<Utc>,
    },
    /// The work is done.
    ServiceTaskCompleted {
        task_id: ServiceTaskId,
        vehicle_id: VehicleId,
        staff_id: StaffId,
        note: Option<String>,
        completed_at: DateTime<Utc>,
    },
}

impl DomainEvent for ServiceTaskEvent {}

/// What a service task decision needs from outside.
#[derive(Clone, Debug)]
pub struct ServiceTaskContext {
    /// The task the command is for.
    pub task_id: ServiceTaskId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

impl Decider for ServiceTask {
    type State = ServiceTaskState;
    type Command = ServiceTaskCommand;
    type Event = ServiceTaskEvent;
    type Context = ServiceTaskContext;

    fn decide(
        state: &ServiceTaskState,
        command: &ServiceTaskCommand,
        context: &ServiceTaskContext,
    ) -> Result<Vec<ServiceTaskEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(state: ServiceTaskState, event: &ServiceTaskEvent) -> ServiceTaskState {
        evolve::evolve(state, event)
    }
}
