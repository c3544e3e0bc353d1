//! How company events change what we know about the company.

use super::{CompanyEvent, CompanyState};

pub(super) fn evolve(mut state: CompanyState, event: &CompanyEvent) -> CompanyState {
    match event {
        CompanyEvent::CompanyRegistered { profile, .. } => state.profile = Some(profile.clone()),
        CompanyEvent::EmployeeAdded { customer_id, .. } => {
            state.employees.insert(*customer_id);
        }
        CompanyEvent::EmployeeRemoved { customer_id, .. } => {
            state.employees.remove(customer_id);
        }
    }
    state
}
