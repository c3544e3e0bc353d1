//! Customers: self-registration from the app, KYC documents, support's verification decision,
//! and blocks put and lifted by support.

use crate::CommandContext;
use crate::load::load;
use crate::pipeline::{Decision, execute, write};
use crate::request::{Command, Door, OpenCommand, path_id};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::Decider;
use domain::claims::Claim;
use domain::customer::{
    BlockReason, Customer, CustomerCommand, CustomerContext, CustomerProfile, CustomerState,
    KycDocuments, LicenceCategories, Passport, VerificationDecision,
};
use domain::ids::CustomerId;
use domain::value::{Email, Licence, PersonName, Phone};
use event_store::{Claims, ExpectedVersion};
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, Role, roles};
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

/// The door of registration: anyone may come in, with a JSON body.
#[derive(Debug)]
pub(crate) struct Registration;

impl Door for Registration {
    const ACTOR: &'static str = "anonymous";
    const JSON_ONLY: bool = true;

    fn admit(_: &CommandContext, _: &HeaderMap, _: &[u8]) -> Result<(), Problem> {
        Ok(())
    }
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
    OpenCommand {
        mut envelope, body, ..
    }: OpenCommand<RegisterCustomer, Registration>,
) -> Result<Response, Problem> {
    let customer_id = CustomerId(Uuid::now_v7());
    // The new customer is the actor of their own registration.
    envelope.actor = format!("customer:{customer_id}");
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let profile = body.profile(customer_id)?;
        let now = context.clock.now();
        let events = Customer::decide(
            &CustomerState::default(),
            &CustomerCommand::Register(profile),
            &CustomerContext {
                customer_id,
                now,
                kyc: (*context.kyc).clone(),
            },
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
    .await;
    Ok(response)
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

/// Support (or the KYC saga, as a service, on the provider's verdict) approves or rejects a
/// customer's documents.
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
    Path(raw_id): Path<String>,
    // The KYC saga decides as a service on the provider's verdict.
    Command { envelope, body, .. }: Command<VerificationBody, (roles::Support, roles::Service)>,
) -> Result<Response, Problem> {
    let customer_id = customer_in_path(&raw_id)?;
    let decision = match body.decision {
        DecisionWord::Approved => VerificationDecision::Approved,
        DecisionWord::Rejected => VerificationDecision::Rejected {
            reason: body.reason.unwrap_or_default(),
        },
    };
    let context = &context;
    let decision = &decision;
    let response = execute(context, envelope, || async move {
        let stream_id = customer_id.stream_id();
        let customer = load::<Customer>(&context.store, &stream_id).await?;
        let now = context.clock.now();
        let events = Customer::decide(
            &customer.state,
            &CustomerCommand::DecideVerification(decision.clone()),
            &CustomerContext {
                customer_id,
                now,
                kyc: (*context.kyc).clone(),
            },
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
    .await;
    Ok(response)
}

/// Parses the customer id in the path.
fn customer_in_path(raw_id: &str) -> Result<CustomerId, Problem> {
    path_id(raw_id, ProblemType::CustomerNotFound, "customer").map(CustomerId)
}

/// Loads a customer, decides `command` for them and answers `body` with `status`.
async fn decide_for_customer(
    context: &CommandContext,
    customer_id: CustomerId,
    command: &CustomerCommand,
    status: StatusCode,
    answer: impl Fn(&CustomerState) -> serde_json::Value,
) -> Result<Decision, crate::pipeline::CommandError> {
    let stream_id = customer_id.stream_id();
    let customer = load::<Customer>(&context.store, &stream_id).await?;
    let now = context.clock.now();
    let events = Customer::decide(
        &customer.state,
        command,
        &CustomerContext {
            customer_id,
            now,
            kyc: (*context.kyc).clone(),
        },
    )?;
    let after = events.iter().fold(customer.state.clone(), |state, event| {
        Customer::evolve(state, event)
    });
    Ok(Decision {
        writes: vec![write(stream_id, customer.expected(), &events, now)?],
        claims: Claims::default(),
        status,
        body: answer(&after),
    })
}

/// `POST /v1/customers/{id}/documents` body: the customer's KYC documents.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentsBody {
    passport: PassportBody,
    licence: KycLicenceBody,
    /// As in the passport.
    birth_date: NaiveDate,
}

/// A Russian internal passport.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PassportBody {
    /// Four digits.
    #[schema(example = "45 10")]
    series: String,
    /// Six digits.
    #[schema(example = "123456")]
    number: String,
    issued_on: NaiveDate,
    /// The issuing authority as printed.
    #[schema(example = "ОВД Тверского района г. Москвы")]
    issued_by: String,
}

/// A driving licence with its categories.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KycLicenceBody {
    #[schema(example = "99 01 654321")]
    number: String,
    /// The day it was first issued: driving experience counts from here.
    issued_on: NaiveDate,
    expires_on: NaiveDate,
    /// The categories it opens; must include `B`.
    #[schema(example = json!(["B", "B1"]))]
    categories: Vec<String>,
}

impl DocumentsBody {
    fn documents(&self) -> Result<KycDocuments, domain::FieldError> {
        let passport = &self.passport;
        let licence = &self.licence;
        Ok(KycDocuments {
            passport: Passport::parse(
                "passport",
                &passport.series,
                &passport.number,
                passport.issued_on,
                &passport.issued_by,
            )?,
            licence: Licence::parse(
                "licence",
                &licence.number,
                licence.issued_on,
                licence.expires_on,
            )?,
            licence_categories: LicenceCategories::parse(
                "licence.categories",
                &licence.categories,
            )?,
            birth_date: self.birth_date,
        })
    }
}

/// Documents received; support reviews them next.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocumentsSubmitted {
    customer_id: CustomerId,
    /// Always `pending`: support must approve the new documents before the next trip.
    verification: &'static str,
}

/// The customer (or support on their behalf) submits KYC documents; they replace the birth date
/// and licence given at registration, and verification is pending review again.
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/documents",
    operation_id = "submit_kyc_documents",
    tag = "customers",
    request_body = DocumentsBody,
    params(("customer_id" = Uuid, Path, description = "The customer"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Documents recorded; verification is pending", body = DocumentsSubmitted), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn submit_documents(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command {
        caller,
        envelope,
        body,
        ..
    }: Command<DocumentsBody, (roles::Customer, roles::Support)>,
) -> Result<Response, Problem> {
    let customer_id = customer_in_path(&raw_id)?;
    // A customer submits only their own documents.
    if caller.role == Role::Customer && !caller.is_customer(&customer_id.to_string()) {
        return Err(Problem::forbidden(
            "a customer may submit only their own documents",
        ));
    }
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let command = CustomerCommand::SubmitDocuments(body.documents()?);
        decide_for_customer(context, customer_id, &command, StatusCode::OK, |after| {
            json!(DocumentsSubmitted {
                customer_id,
                verification: after.verification.as_str(),
            })
        })
        .await
    })
    .await;
    Ok(response)
}

/// `POST /v1/customers/{id}/blocks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockBody {
    /// Which block: each reason is put and lifted on its own.
    reason: BlockReason,
    /// Why, for the record (at most 1000 characters).
    #[schema(example = "Chargeback on trip 0194…")]
    note: String,
}

/// `POST /v1/customers/{id}/blocks/{reason}/lift` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiftBody {
    /// Why, for the record (at most 1000 characters).
    #[schema(example = "Documents re-checked")]
    note: String,
}

/// The customer's blocks after the change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlocksChanged {
    customer_id: CustomerId,
    /// The reason put or lifted.
    reason: BlockReason,
    /// Every reason still active; the customer may rent only when this is empty.
    active_blocks: Vec<BlockReason>,
}

/// Support blocks a customer for a reason; a blocked customer cannot start trips.
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/blocks",
    operation_id = "block_customer",
    tag = "customers",
    request_body = BlockBody,
    params(("customer_id" = Uuid, Path, description = "The customer"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Blocked", body = BlocksChanged), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn block(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    // Support by hand; the payment saga (a service) for debts.
    Command { envelope, body, .. }: Command<BlockBody, (roles::Support, roles::Service)>,
) -> Result<Response, Problem> {
    let customer_id = customer_in_path(&raw_id)?;
    let reason = body.reason;
    let command = CustomerCommand::Block {
        reason,
        note: body.note,
    };
    let context = &context;
    let command = &command;
    let response = execute(context, envelope, || async move {
        decide_for_customer(
            context,
            customer_id,
            command,
            StatusCode::CREATED,
            |after| {
                json!(BlocksChanged {
                    customer_id,
                    reason,
                    active_blocks: after.blocks.iter().copied().collect(),
                })
            },
        )
        .await
    })
    .await;
    Ok(response)
}

/// Support lifts one block; the customer's other blocks stay.
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/blocks/{reason}/lift",
    operation_id = "unblock_customer",
    tag = "customers",
    request_body = LiftBody,
    params(("customer_id" = Uuid, Path, description = "The customer"), ("reason" = BlockReason, Path, description = "The block to lift"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Lifted", body = BlocksChanged), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn unblock(
    State(context): State<CommandContext>,
    Path((raw_id, raw_reason)): Path<(String, String)>,
    // Support by hand; the payment saga (a service) for debts.
    Command { envelope, body, .. }: Command<LiftBody, (roles::Support, roles::Service)>,
) -> Result<Response, Problem> {
    let customer_id = customer_in_path(&raw_id)?;
    let reason = serde_json::from_value::<BlockReason>(json!(raw_reason)).map_err(|_| {
        crate::rejection::problem(&domain::Rejection::InvalidField(domain::FieldError::new(
            "reason",
            "must be one of debt, fraud, documents, support",
        )))
    })?;
    let command = CustomerCommand::Unblock {
        reason,
        note: body.note,
    };
    let context = &context;
    let command = &command;
    let response = execute(context, envelope, || async move {
        decide_for_customer(context, customer_id, command, StatusCode::OK, |after| {
            json!(BlocksChanged {
                customer_id,
                reason,
                active_blocks: after.blocks.iter().copied().collect(),
            })
        })
        .await
    })
    .await;
    Ok(response)
}

/// `POST /v1/customers/{id}/erase` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseBody {
    /// Why the personal data is erased (the customer's request, a regulator's order): recorded
    /// for the auditors. Required.
    #[schema(example = "the customer's request of 2026-11-20, ticket 4711")]
    reason: String,
}

/// The customer's personal data is erased (the shape `pii::erase::answer` writes, which is
/// also recorded under an idempotency key).
#[allow(dead_code)]
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerErasedBody {
    customer_id: CustomerId,
    erased_at: chrono::DateTime<chrono::Utc>,
}

/// Support erases a customer's personal data (152-FZ, GDPR): their key is destroyed, so the
/// personal fields of their events no longer decrypt; `CustomerErased` records who and why.
/// Trips, charges and payments stay. Erasing twice is refused (409 `customer-erased`).
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/erase",
    operation_id = "erase_customer",
    tag = "customers",
    request_body = EraseBody,
    params(("customer_id" = Uuid, Path, description = "The customer"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Erased", body = CustomerErasedBody), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn erase(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command { envelope, body, .. }: Command<EraseBody, roles::Support>,
) -> Result<Response, Problem> {
    use crate::pii::erase::EraseError;
    let customer_id = customer_in_path(&raw_id)?;
    if let Some(key) = &envelope.key
        && let Some(stored) = context
            .store
            .find_result(&envelope.scope, key)
            .await
            .map_err(|error| Problem::unavailable(&error))?
    {
        return crate::pipeline::replay(&envelope, stored);
    }
    if body.reason.trim().is_empty() {
        return Err(Problem::invalid_field(
            "reason",
            "must say why the data is erased",
        ));
    }
    let erasure = crate::pii::erase::Erasure {
        customer_id,
        reason: body.reason,
        actor: envelope.actor.clone(),
        correlation_id: envelope.correlation_id,
        idempotency: envelope
            .key
            .clone()
            .map(|key| (envelope.scope.clone(), key, envelope.request_hash.clone())),
    };
    let erased = crate::pii::erase::erase(
        &context.store,
        context.clock.as_ref(),
        &context.kyc,
        &erasure,
    )
    .await
    .map_err(|error| match error {
        EraseError::Rejected(rejection) => crate::rejection::problem(&rejection),
        EraseError::Conflict => Problem::new(
            ProblemType::ConcurrencyConflict,
            "the customer kept changing while the erasure was decided; retry",
        ),
        EraseError::Failed(error) => Problem::unavailable(&error),
    })?;
    Ok((
        StatusCode::OK,
        axum::Json(crate::pii::erase::answer(customer_id, erased.erased_at)),
    )
        .into_response())
}
