//! Customers: self-registration from the app, and support's verification decision.

use super::{envelope_of, path_id};
use crate::CommandContext;
use crate::load::load;
use crate::pipeline::{Decision, Envelope, execute, write};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::Decider;
use domain::claims::Claim;
use domain::customer::{
    Customer, CustomerCommand, CustomerContext, CustomerProfile, CustomerState,
    VerificationDecision,
};
use domain::ids::CustomerId;
use domain::value::{Email, Licence, PersonName, Phone};
use event_store::{Claims, ExpectedVersion};
use http_edge::{Caller, JsonBody, Role};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// `POST /v1/customers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterCustomer {
    name: String,
    phone: String,
    email: String,
    birth_date: NaiveDate,
    licence: LicenceBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenceBody {
    number: String,
    issued_on: NaiveDate,
    expires_on: NaiveDate,
}

impl RegisterCustomer {
    fn profile(&self, customer_id: CustomerId) -> Result<CustomerProfile, domain::FieldError> {
        Ok(CustomerProfile {
            customer_id,
            name: PersonName::parse("name", &self.name)?,
            phone: Phone::parse("phone", &self.phone)?,
            email: Email::parse("email", &self.email)?,
            birth_date: self.birth_date,
            licence: Licence::parse(
                "licence",
                &self.licence.number,
                self.licence.issued_on,
                self.licence.expires_on,
            )?,
        })
    }
}

/// Open: anyone may register; the new customer is the actor of their own registration.
pub(crate) async fn register(
    State(context): State<CommandContext>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<RegisterCustomer>,
) -> Response {
    let customer_id = CustomerId(Uuid::now_v7());
    let envelope = match Envelope::read(
        None,
        &format!("customer:{customer_id}"),
        &headers,
        &format!("{method} {uri}"),
        &body.raw,
    ) {
        Ok(envelope) => envelope,
        Err(problem) => return problem.into_response(),
    };
    let context = &context;
    let body = &body.value;
    execute(context, envelope, || async move {
        let profile = body.profile(customer_id)?;
        let now = context.clock.now();
        let events = Customer::decide(
            &CustomerState::default(),
            &CustomerCommand::Register(profile),
            &CustomerContext { customer_id, now },
        )?;
        let stream_id = customer_id.stream_id();
        Ok(Decision {
            claims: Claims {
                acquire: events
                    .iter()
                    .flat_map(Claim::acquired_by_customer)
                    .map(|claim| claim.key())
                    .collect(),
                holder: Some(stream_id.clone()),
                release: Vec::new(),
            },
            writes: vec![write(stream_id, ExpectedVersion::NoStream, &events, now)?],
            status: StatusCode::CREATED,
            body: json!({ "customer_id": customer_id }),
        })
    })
    .await
}

/// `POST /v1/customers/{id}/verification` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerificationBody {
    decision: DecisionWord,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DecisionWord {
    Approved,
    Rejected,
}

/// Support approves or rejects a customer's documents.
pub(crate) async fn decide_verification(
    State(context): State<CommandContext>,
    caller: Caller,
    Path(raw_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<VerificationBody>,
) -> Response {
    if let Err(problem) = caller.require(&[Role::Support]) {
        return problem.into_response();
    }
    let customer_id = match path_id(&raw_id, "customer-not-found", "customer") {
        Ok(id) => CustomerId(id),
        Err(problem) => return problem.into_response(),
    };
    let envelope = match envelope_of(&caller, &method, &uri, &headers, &body.raw) {
        Ok(envelope) => envelope,
        Err(problem) => return problem.into_response(),
    };
    let decision = match body.value.decision {
        DecisionWord::Approved => VerificationDecision::Approved,
        DecisionWord::Rejected => VerificationDecision::Rejected {
            reason: body.value.reason.clone().unwrap_or_default(),
        },
    };
    let context = &context;
    let decision = &decision;
    execute(context, envelope, || async move {
        let stream_id = customer_id.stream_id();
        let customer = load::<Customer>(&context.store, &stream_id).await?;
        let now = context.clock.now();
        let events = Customer::decide(
            &customer.state,
            &CustomerCommand::DecideVerification(decision.clone()),
            &CustomerContext { customer_id, now },
        )?;
        let status = match decision {
            VerificationDecision::Approved => "verified",
            VerificationDecision::Rejected { .. } => "rejected",
        };
        Ok(Decision {
            writes: vec![write(stream_id, customer.expected(), &events, now)?],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!({ "customer_id": customer_id, "verification": status }),
        })
    })
    .await
}
