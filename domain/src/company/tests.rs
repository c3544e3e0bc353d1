//! Company rules, one test per rule: registration, and employment decided on both the company's
//! and the customer's streams.

use super::*;
use crate::customer::Customer;
use crate::rejection::FieldError;
use crate::testing::*;
use insta::assert_yaml_snapshot;

fn romashka() -> CompanyProfile {
    CompanyProfile {
        company_id: ROMASHKA,
        name: CompanyName::parse("name", "ООО «Ромашка»").unwrap(),
        inn: Inn::parse("inn", "7707083893").unwrap(),
        billing_email: Email::parse("billing_email", "billing@romashka.example").unwrap(),
    }
}

fn company_registered() -> CompanyEvent {
    CompanyEvent::CompanyRegistered {
        profile: romashka(),
        registered_at: at("2026-11-10T09:00:00Z"),
    }
}

fn employee_added(customer_id: CustomerId) -> CompanyEvent {
    CompanyEvent::EmployeeAdded {
        company_id: ROMASHKA,
        customer_id,
        added_at: at("2026-11-15T09:00:00Z"),
    }
}

fn romashka_now() -> CompanyContext {
    CompanyContext {
        company_id: ROMASHKA,
        now: at(NOW),
    }
}

#[test]
fn inn_checks_its_check_digit() {
    // Real INNs of well-known companies.
    for inn in ["7707083893", "7736207543", "7702070139"] {
        assert!(Inn::parse("inn", inn).is_ok(), "{inn}");
    }
    for bad in [
        "7707083894",
        "770708389",
        "77070838930",
        "77070838a3",
        " ",
        "７707083893",
    ] {
        assert_eq!(Inn::parse("inn", bad).unwrap_err().field, "inn", "{bad}");
    }
}

#[test]
fn register_records_the_company() {
    let scenario = Company::given([])
        .when(CompanyCommand::Register(romashka()), romashka_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CompanyEvent::CompanyRegistered { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn register_twice_is_rejected() {
    let scenario = Company::given([company_registered()])
        .when(CompanyCommand::Register(romashka()), romashka_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CompanyAlreadyRegistered {
            company_id: ROMASHKA
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn register_a_profile_of_another_company_is_rejected() {
    let mut other = romashka();
    other.company_id = LUTIK;
    let scenario = Company::given([])
        .when(CompanyCommand::Register(other), romashka_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "company_id"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn add_an_employee_to_an_unregistered_company_is_rejected() {
    let scenario = Company::given([])
        .when(
            CompanyCommand::AddEmployee { customer_id: IVAN },
            romashka_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CompanyNotFound {
            company_id: ROMASHKA
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn add_an_employee_twice_is_rejected() {
    let scenario = Company::given([company_registered(), employee_added(IVAN)])
        .when(
            CompanyCommand::AddEmployee { customer_id: IVAN },
            romashka_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerAlreadyEmployee {
            customer_id: IVAN,
            company_id: ROMASHKA,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn remove_someone_who_is_not_an_employee_is_rejected() {
    let scenario = Company::given([company_registered(), employee_added(MARIA)])
        .when(
            CompanyCommand::RemoveEmployee { customer_id: IVAN },
            romashka_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotEmployee {
            customer_id: IVAN,
            company_id: ROMASHKA,
        }
    );
    assert_yaml_snapshot!(scenario);
}

// Employment across the company's and the customer's streams.

/// The histories of both sides and what an employment change decided about them.
#[derive(Debug, serde::Serialize)]
struct EmploymentScenario {
    given: GivenBoth,
    when: &'static str,
    then: Result<EmploymentDecision, Rejection>,
}

#[derive(Debug, serde::Serialize)]
struct GivenBoth {
    company: Vec<CompanyEvent>,
    customer: Vec<CustomerEvent>,
}

fn employment(
    company: Vec<CompanyEvent>,
    customer: Vec<CustomerEvent>,
    when: &'static str,
) -> EmploymentScenario {
    let input = Employment {
        company_id: ROMASHKA,
        company: &Company::fold(&company),
        customer_id: IVAN,
        customer: &Customer::fold(&customer),
        now: at(NOW),
    };
    let then = match when {
        "add_employee" => add_employee(input),
        _ => remove_employee(input),
    };
    EmploymentScenario {
        given: GivenBoth { company, customer },
        when,
        then,
    }
}

fn ivan_joined(company_id: CompanyId) -> CustomerEvent {
    CustomerEvent::CustomerJoinedCompany {
        customer_id: IVAN,
        company_id,
        joined_at: at("2026-11-15T09:00:00Z"),
    }
}

#[test]
fn add_employee_records_it_on_the_company_and_on_the_customer() {
    let scenario = employment(
        vec![company_registered()],
        verified_customer(IVAN),
        "add_employee",
    );
    let decision = scenario.then.as_ref().unwrap();
    assert!(matches!(
        decision.company[..],
        [CompanyEvent::EmployeeAdded { .. }]
    ));
    let customer = Customer::fold(scenario.given.customer.iter().chain(&decision.customer));
    assert_eq!(customer.company_id, Some(ROMASHKA));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn add_employee_who_works_for_another_company_is_rejected() {
    let mut customer = verified_customer(IVAN);
    customer.push(ivan_joined(LUTIK));
    let scenario = employment(vec![company_registered()], customer, "add_employee");
    assert_eq!(
        scenario.then,
        Err(Rejection::CustomerInAnotherCompany {
            customer_id: IVAN,
            company_id: LUTIK,
        })
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn add_employee_who_never_registered_is_rejected() {
    let scenario = employment(vec![company_registered()], vec![], "add_employee");
    assert_eq!(
        scenario.then,
        Err(Rejection::CustomerNotFound { customer_id: IVAN })
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn remove_employee_frees_the_customer() {
    let mut customer = verified_customer(IVAN);
    customer.push(ivan_joined(ROMASHKA));
    let scenario = employment(
        vec![company_registered(), employee_added(IVAN)],
        customer,
        "remove_employee",
    );
    let decision = scenario.then.as_ref().unwrap();
    let company = Company::fold(scenario.given.company.iter().chain(&decision.company));
    let customer = Customer::fold(scenario.given.customer.iter().chain(&decision.customer));
    assert!(company.employees.is_empty());
    assert_eq!(customer.company_id, None);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn remove_employee_from_an_unregistered_company_is_rejected() {
    let scenario = employment(vec![], verified_customer(IVAN), "remove_employee");
    assert_eq!(
        scenario.then,
        Err(Rejection::CompanyNotFound {
            company_id: ROMASHKA
        })
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn every_company_and_new_customer_event_round_trips_through_the_store_encoding() {
    use crate::decider::{decode, encode};
    fn round_trip<E: crate::DomainEvent + PartialEq>(event: &E) {
        let encoded = encode(event).unwrap();
        let decoded: E = decode(&encoded.event_type, encoded.schema_version, encoded.data).unwrap();
        assert_eq!(&decoded, event);
    }
    [
        company_registered(),
        employee_added(IVAN),
        CompanyEvent::EmployeeRemoved {
            company_id: ROMASHKA,
            customer_id: IVAN,
            removed_at: at(NOW),
        },
    ]
    .iter()
    .for_each(round_trip);
    [
        ivan_joined(ROMASHKA),
        CustomerEvent::CustomerLeftCompany {
            customer_id: IVAN,
            company_id: ROMASHKA,
            left_at: at(NOW),
        },
    ]
    .iter()
    .for_each(round_trip);
}

#[test]
fn an_unblock_stored_before_it_took_a_note_still_decodes() {
    let data = serde_json::json!({
        "customer_id": IVAN,
        "reason": "debt",
        "unblocked_at": "2026-11-25T10:00:00Z",
    });
    let event: CustomerEvent = crate::decider::decode("CustomerUnblocked", 1, data).unwrap();
    assert!(matches!(event, CustomerEvent::CustomerUnblocked { ref note, .. } if note.is_empty()));
}
