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
use http_edge::openapi::CommandProblems;
use http_edge::{Caller, JsonBody, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/customers` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterCustomer {
    /// Full name, as in the passport.
    #[schema(example = "Иван Петров")]
    name: String,
    /// Mobile number; `+7 916 123-45-67` and `89161234567` are read as `+79161234567`.
    #[schema(example = "+79161234567")]
    phone: String,
    #[schema(example = "ivan.petrov@example.ru")]
    email: String,
    birth_date: NaiveDate,
    licence: LicenceBody,
}

/// A driving licence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LicenceBody {
    #[schema(example = "77 12 345678")]
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

/// A registered customer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerCreated {
    customer_id: CustomerId,
}

/// Open: anyone may register; the new customer is the actor of their own registration.
#[utoipa::path(
    post,
    path = "/v1/customers",
    operation_id = "register_customer",
    tag = "customers",
    request_body = RegisterCustomer,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Registered; verification is pending", body = CustomerCreated), CommandProblems),
)]
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
            body: json!(CustomerCreated { customer_id }),
        })
    })
    .await
}

/// `POST /v1/customers/{id}/verification` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerificationBody {
    decision: DecisionWord,
    /// Required when rejecting: why, for the customer and the record.
    #[serde(default)]
    reason: Option<String>,
}

/// Support's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum DecisionWord {
    Approved,
    Rejected,
}

/// The customer's verification state after the decision.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerificationRecorded {
    customer_id: CustomerId,
    /// `verified` or `rejected`.
    verification: &'static str,
}

/// Support approves or rejects a customer's documents.
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/verification",
    operation_id = "decide_verification",
    tag = "customers",
    request_body = VerificationBody,
    params(("customer_id" = Uuid, Path, description = "The customer"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Decision recorded", body = VerificationRecorded), CommandProblems),
    security(("bearer" = [])),
)]
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
            body: json!(VerificationRecorded {
                customer_id,
                verification: status,
            }),
        })
    })
    .await
}
