//! How service task events change what we know about the task.

use super::{ServiceTaskEvent, ServiceTaskState, ServiceTaskStatus};

pub(super) fn evolve(mut state: ServiceTaskState, event: &ServiceTaskEvent) -> ServiceTaskState {
    match event {
        ServiceTaskEvent::ServiceTaskOpened { opening, .. } => {
            state.opened = Some(opening.clone());
            state.status = ServiceTaskStatus::Open;
        }
        ServiceTaskEvent::ServiceTaskAssigned { staff_id, .. } => {
            state.status = ServiceTaskStatus::Assigned {
                staff_id: staff_id.clone(),
            };
        }
        ServiceTaskEvent::ServiceTaskStarted { staff_id, .. } => {
            state.status = ServiceTaskStatus::InProgress {
                staff_id: staff_id.clone(),
            };
        }
        ServiceTaskEvent::ServiceTaskCompleted { staff_id, .. } => {
            state.status = ServiceTaskStatus::Completed {
                staff_id: staff_id.clone(),
            };
        }
    }
    state
}
