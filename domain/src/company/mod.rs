//! B2B corporate accounts: a company registers with its tax id and billing address, and support
//! adds and removes its employees. An employee's trips are billed to the company.
//!
//! Employment is recorded on both sides, in one append: the company's stream lists its
//! employees, and the customer's stream says which company they belong to (so the customer's
//! state alone tells trip billing where a charge goes, and a customer can be in at most one
//! company — two companies racing for one customer both write the customer's stream, and the
//! store's version check lets only one win).

mod decide;
mod evolve;
#[cfg(test)]
mod tests;

use crate::customer::{self, CustomerEvent, CustomerState};
use crate::decider::{Decider, DomainEvent};
use crate::ids::{CompanyId, CustomerId};
use crate::rejection::{FieldError, Rejection};
use crate::value::Email;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The company decider.
#[derive(Debug)]
pub struct Company;

/// What a company's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompanyState {
    /// The registration, or `None` before the company registered.
    pub profile: Option<CompanyProfile>,
    /// Its current employees.
    pub employees: BTreeSet<CustomerId>,
}

impl CompanyState {
    /// Whether the company has registered.
    pub fn is_registered(&self) -> bool {
        self.profile.is_some()
    }
}

/// A company's registration data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyProfile {
    /// The company's id.
    pub company_id: CompanyId,
    /// Its name, as registered.
    pub name: CompanyName,
    /// Its tax id; one company per INN.
    pub inn: Inn,
    /// Where invoices go.
    pub billing_email: Email,
}

/// A company name: 1 to 200 printable characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CompanyName(String);

impl CompanyName {
    /// Parses a company name such as `ООО «Ромашка»`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 200
            || trimmed.chars().any(char::is_control)
        {
            return Err(FieldError::new(
                field,
                "must be 1 to 200 printable characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Russian legal entity's taxpayer number (ИНН): ten digits, the last a check digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Inn(String);

impl Inn {
    /// The weights of the first nine digits in the check digit (Federal Tax Service order
    /// No. БГ-3-09/178 of 2004).
    const WEIGHTS: [u32; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];

    /// Parses a ten-digit INN, checking its check digit: the weighted sum of the first nine
    /// digits, modulo 11, modulo 10.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        let digits: Vec<u32> = value.chars().filter_map(|c| c.to_digit(10)).collect();
        if value.len() != 10 || digits.len() != 10 {
            return Err(FieldError::new(
                field,
                "must be the 10 digits of a company's INN",
            ));
        }
        let sum: u32 = Self::WEIGHTS
            .iter()
            .zip(&digits)
            .map(|(weight, digit)| weight * digit)
            .sum();
        if sum % 11 % 10 != digits[9] {
            return Err(FieldError::new(
                field,
                "is not a valid INN: the check digit does not match",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The INN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What can be asked of a company.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum CompanyCommand {
    /// Support registers a company.
    Register(CompanyProfile),
    /// Take a customer on as an employee.
    AddEmployee {
        /// Who.
        customer_id: CustomerId,
    },
    /// Let an employee go.
    RemoveEmployee {
        /// Who.
        customer_id: CustomerId,
    },
}

/// What happened to a company.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CompanyEvent {
    /// The company registered.
    CompanyRegistered {
        #[serde(flatten)]
        profile: CompanyProfile,
        registered_at: DateTime<Utc>,
    },
    /// A customer became an employee.
    EmployeeAdded {
        company_id: CompanyId,
        customer_id: CustomerId,
        added_at: DateTime<Utc>,
    },
    /// An employee left.
    EmployeeRemoved {
        company_id: CompanyId,
        customer_id: CustomerId,
        removed_at: DateTime<Utc>,
    },
}

impl DomainEvent for CompanyEvent {}

/// What a company decision needs from outside.
#[derive(Clone, Debug)]
pub struct CompanyContext {
    /// The company the command is for.
    pub company_id: CompanyId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

impl Decider for Company {
    type State = CompanyState;
    type Command = CompanyCommand;
    type Event = CompanyEvent;
    type Context = CompanyContext;

    fn decide(
        state: &CompanyState,
        command: &CompanyCommand,
        context: &CompanyContext,
    ) -> Result<Vec<CompanyEvent>, Rejection> {
        decide::decide(state, command, context)
    }

    fn evolve(state: CompanyState, event: &CompanyEvent) -> CompanyState {
        evolve::evolve(state, event)
    }
}

/// Everything an employment decision looks at: the company's and the customer's state.
#[derive(Clone, Debug)]
pub struct Employment<'a> {
    /// The company.
    pub company_id: CompanyId,
    /// Its state.
    pub company: &'a CompanyState,
    /// The customer.
    pub customer_id: CustomerId,
    /// Their state.
    pub customer: &'a CustomerState,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

/// The events an employment change appends, by stream, in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmploymentDecision {
    /// Events for the company's stream.
    pub company: Vec<CompanyEvent>,
    /// Events for the customer's stream.
    pub customer: Vec<CustomerEvent>,
}

/// Adds a customer to a company: both must exist, and the customer must belong to no company.
pub fn add_employee(input: Employment<'_>) -> Result<EmploymentDecision, Rejection> {
    let Employment {
        company_id,
        company,
        customer_id,
        customer,
        now,
    } = input;
    let company = Company::decide(
        company,
        &CompanyCommand::AddEmployee { customer_id },
        &CompanyContext { company_id, now },
    )?;
    let customer = customer::join_company(customer, customer_id, company_id, now)?;
    Ok(EmploymentDecision { company, customer })
}

/// Removes an employee from a company.
pub fn remove_employee(input: Employment<'_>) -> Result<EmploymentDecision, Rejection> {
    let Employment {
        company_id,
        company,
        customer_id,
        customer,
        now,
    } = input;
    let company = Company::decide(
        company,
        &CompanyCommand::RemoveEmployee { customer_id },
        &CompanyContext { company_id, now },
    )?;
    let customer = customer::leave_company(customer, customer_id, company_id, now)?;
    Ok(EmploymentDecision { company, customer })
}
