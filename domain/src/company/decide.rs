//! Company rules.

use super::{CompanyCommand, CompanyContext, CompanyEvent, CompanyState};
use crate::rejection::{FieldError, Rejection};

pub(super) fn decide(
    state: &CompanyState,
    command: &CompanyCommand,
    context: &CompanyContext,
) -> Result<Vec<CompanyEvent>, Rejection> {
    let company_id = context.company_id;
    let now = context.now;
    if !state.is_registered() && !matches!(command, CompanyCommand::Register(_)) {
        return Err(Rejection::CompanyNotFound { company_id });
    }
    match command {
        CompanyCommand::Register(profile) => {
            if state.is_registered() {
                return Err(Rejection::CompanyAlreadyRegistered { company_id });
            }
            // The profile is appended to this company's stream: another id in it would file one
            // company's registration under another's history.
            if profile.company_id != company_id {
                return Err(FieldError::new(
                    "company_id",
                    "must be the id of the company being registered",
                )
                .into());
            }
            Ok(vec![CompanyEvent::CompanyRegistered {
                profile: profile.clone(),
                registered_at: now,
            }])
        }
        CompanyCommand::AddEmployee { customer_id } => {
            if state.employees.contains(customer_id) {
                return Err(Rejection::CustomerAlreadyEmployee {
                    customer_id: *customer_id,
                    company_id,
                });
            }
            Ok(vec![CompanyEvent::EmployeeAdded {
                company_id,
                customer_id: *customer_id,
                added_at: now,
            }])
        }
        CompanyCommand::RemoveEmployee { customer_id } => {
            if !state.employees.contains(customer_id) {
                return Err(Rejection::CustomerNotEmployee {
                    customer_id: *customer_id,
                    company_id,
                });
            }
            Ok(vec![CompanyEvent::EmployeeRemoved {
                company_id,
                customer_id: *customer_id,
                removed_at: now,
            }])
        }
    }
}
