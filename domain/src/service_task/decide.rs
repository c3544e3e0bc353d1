//! Service task rules.

use super::{
    ServiceTaskCommand, ServiceTaskContext, ServiceTaskEvent, ServiceTaskOpening, ServiceTaskState,
    ServiceTaskStatus,
};
use crate::rejection::{FieldError, Rejection};

/// The longest note a task may carry.
const MAX_NOTE_CHARS: usize = 1000;

/// A note, trimmed; blank is no note.
fn note(raw: Option<&String>) -> Result<Option<String>, FieldError> {
    let Some(trimmed) = raw.map(|n| n.trim()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if trimmed.chars().count() > MAX_NOTE_CHARS {
        return Err(FieldError::new(
            "note",
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

pub(super) fn decide(
    state: &ServiceTaskState,
    command: &ServiceTaskCommand,
    context: &ServiceTaskContext,
) -> Result<Vec<ServiceTaskEvent>, Rejection> {
    let task_id = context.task_id;
    let now = context.now;
    if let ServiceTaskCommand::Open {
        vehicle_id,
        kind,
        note: text,
        after_trip_id,
    } = command
    {
        if state.opened.is_some() {
            return Err(Rejection::ServiceTaskAlreadyOpened { task_id });
        }
        return Ok(vec![ServiceTaskEvent::ServiceTaskOpened {
            opening: ServiceTaskOpening {
                task_id,
                vehicle_id: *vehicle_id,
                kind: *kind,
                note: note(text.as_ref())?,
                after_trip_id: *after_trip_id,
            },
            opened_at: now,
        }]);
    }
    let Some(opened) = &state.opened else {
        return Err(Rejection::ServiceTaskNotFound { task_id });
    };
    if matches!(state.status, ServiceTaskStatus::Completed { .. }) {
        return Err(Rejection::ServiceTaskAlreadyCompleted { task_id });
    }
    let assigned_to_another = |staff_id: &super::StaffId| Rejection::ServiceTaskAssignedToAnother {
        task_id,
        staff_id: staff_id.as_str().to_owned(),
    };
    match command {
        ServiceTaskCommand::Open { .. } => Err(Rejection::ServiceTaskAlreadyOpened { task_id }),
        ServiceTaskCommand::Assign { staff_id } => match &state.status {
            ServiceTaskStatus::Assigned { staff_id: current } if current == staff_id => {
                Err(Rejection::ServiceTaskAlreadyAssigned {
                    task_id,
                    staff_id: staff_id.as_str().to_owned(),
                })
            }
            // Work under way stays with whoever started it.
            ServiceTaskStatus::InProgress { .. } => {
                Err(Rejection::ServiceTaskAlreadyStarted { task_id })
            }
            _ => Ok(vec![ServiceTaskEvent::ServiceTaskAssigned {
                task_id,
                staff_id: staff_id.clone(),
                assigned_at: now,
            }]),
        },
        ServiceTaskCommand::Start { staff_id } => match &state.status {
            ServiceTaskStatus::Assigned { staff_id: assignee } if assignee == staff_id => {
                Ok(vec![ServiceTaskEvent::ServiceTaskStarted {
                    task_id,
                    staff_id: staff_id.clone(),
                    started_at: now,
                }])
            }
            ServiceTaskStatus::Assigned { staff_id: assignee } => {
                Err(assigned_to_another(assignee))
            }
            ServiceTaskStatus::InProgress { .. } => {
                Err(Rejection::ServiceTaskAlreadyStarted { task_id })
            }
            _ => Err(Rejection::ServiceTaskNotAssigned { task_id }),
        },
        ServiceTaskCommand::Complete {
            staff_id,
            note: text,
        } => match &state.status {
            ServiceTaskStatus::InProgress { staff_id: worker } if worker == staff_id => {
                Ok(vec![ServiceTaskEvent::ServiceTaskCompleted {
                    task_id,
                    vehicle_id: opened.vehicle_id,
                    staff_id: staff_id.clone(),
                    note: note(text.as_ref())?,
                    completed_at: now,
                }])
            }
            ServiceTaskStatus::InProgress { staff_id: worker } => Err(assigned_to_another(worker)),
            _ => Err(Rejection::ServiceTaskNotStarted { task_id }),
        },
    }
}
