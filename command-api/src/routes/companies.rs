//! Companies (B2B accounts): support registers a company and adds or removes its employees.
//! Employment is appended to the company's and the customer's streams in one transaction.

use super::{envelope_of, path_id};
use crate::CommandContext;
use crate::load::Streams;
use crate::pipeline::{Decision, execute, write};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use domain::Decider;
use domain::claims::Claim;
use domain::company::{
    self, Company, CompanyCommand, CompanyContext, CompanyName, CompanyProfile, CompanyState,
    Employment, EmploymentDecision, Inn,
};
use domain::customer::Customer;
use domain::ids::{CompanyId, CustomerId};
use domain::value::Email;
use event_store::{Claims, ExpectedVersion};
use http_edge::ProblemType;
use http_edge::openapi::CommandProblems;
use http_edge::{Caller, JsonBody, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/companies` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterCompany {
    /// The company's name as registered.
    #[schema(example = "ООО «Ромашка»")]
    name: String,
    /// Its 10-digit taxpayer number (INN), check digit included; one company per INN.
    #[schema(example = "7707083893")]
    inn: String,
    /// Where invoices for employees' trips go.
    #[schema(example = "billing@romashka.example")]
    billing_email: String,
}

/// A registered company.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CompanyCreated {
    company_id: CompanyId,
}

/// Support registers a business customer.
#[utoipa::path(
    post,
    path = "/v1/companies",
    operation_id = "register_company",
    tag = "companies",
    request_body = RegisterCompany,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 201, description = "Registered", body = CompanyCreated), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn register(
    State(context): State<CommandContext>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<RegisterCompany>,
) -> Response {
    if let Err(problem) = caller.require(&[Role::Support]) {
        return problem.into_response();
    }
    let envelope = match envelope_of(&caller, &method, &uri, &headers, &body.raw) {
        Ok(envelope) => envelope,
        Err(problem) => return problem.into_response(),
    };
    let company_id = CompanyId(Uuid::now_v7());
    let context = &context;
    let body = &body.value;
    execute(context, envelope, || async move {
        let profile = CompanyProfile {
            company_id,
            name: CompanyName::parse("name", &body.name)?,
            inn: Inn::parse("inn", &body.inn)?,
            billing_email: Email::parse("billing_email", &body.billing_email)?,
        };
        let now = context.clock.now();
        let events = Company::decide(
            &CompanyState::default(),
            &CompanyCommand::Register(profile),
            &CompanyContext { company_id, now },
        )?;
        let stream_id = company_id.stream_id();
        Ok(Decision {
            claims: Claims {
                acquire: events
                    .iter()
                    .flat_map(Claim::acquired_by_company)
                    .map(|claim| claim.key())
                    .collect(),
                holder: Some(stream_id.clone()),
                release: Vec::new(),
            },
            writes: vec![write(stream_id, ExpectedVersion::NoStream, &events, now)?],
            status: StatusCode::CREATED,
            body: json!(CompanyCreated { company_id }),
        })
    })
    .await
}

/// `POST /v1/companies/{id}/employees` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddEmployeeBody {
    /// The registered customer to take on; they may belong to no other company.
    customer_id: Uuid,
}

/// An employment change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EmploymentChanged {
    company_id: CompanyId,
    customer_id: CustomerId,
    /// Whether the customer is now an employee (their trips billed to the company).
    employee: bool,
}

/// Which employment change.
#[derive(Clone, Copy, Debug)]
enum Change {
    Add,
    Remove,
}

/// Loads the company and the customer in one read, decides the change, and writes both streams.
async fn change_employment(
    context: CommandContext,
    caller: Caller,
    raw_company: &str,
    customer_id: CustomerId,
    change: Change,
    (method, uri, headers, raw): (Method, Uri, HeaderMap, &[u8]),
) -> Response {
    if let Err(problem) = caller.require(&[Role::Support]) {
        return problem.into_response();
    }
    let company_id = match path_id(raw_company, ProblemType::CompanyNotFound, "company") {
        Ok(id) => CompanyId(id),
        Err(problem) => return problem.into_response(),
    };
    let envelope = match envelope_of(&caller, &method, &uri, &headers, raw) {
        Ok(envelope) => envelope,
        Err(problem) => return problem.into_response(),
    };
    let context = &context;
    execute(context, envelope, || async move {
        let (company_stream, customer_stream) = (company_id.stream_id(), customer_id.stream_id());
        let streams = Streams::read(
            &context.store,
            &[company_stream.clone(), customer_stream.clone()],
        )
        .await?;
        let company = streams.fold::<Company>(&company_stream).await?;
        let customer = streams.fold::<Customer>(&customer_stream).await?;
        let now = context.clock.now();
        let input = Employment {
            company_id,
            company: &company.state,
            customer_id,
            customer: &customer.state,
            now,
        };
        let EmploymentDecision {
            company: company_events,
            customer: customer_events,
        } = match change {
            Change::Add => company::add_employee(input)?,
            Change::Remove => company::remove_employee(input)?,
        };
        Ok(Decision {
            writes: vec![
                write(company_stream, company.expected(), &company_events, now)?,
                write(customer_stream, customer.expected(), &customer_events, now)?,
            ],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!(EmploymentChanged {
                company_id,
                customer_id,
                employee: matches!(change, Change::Add),
            }),
        })
    })
    .await
}

/// Support adds a customer to a company: from now on their trips are billed to it.
#[utoipa::path(
    post,
    path = "/v1/companies/{company_id}/employees",
    operation_id = "add_employee",
    tag = "companies",
    request_body = AddEmployeeBody,
    params(("company_id" = Uuid, Path, description = "The company"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Added", body = EmploymentChanged), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn add_employee(
    State(context): State<CommandContext>,
    caller: Caller,
    Path(raw_company): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<AddEmployeeBody>,
) -> Response {
    let customer_id = CustomerId(body.value.customer_id);
    change_employment(
        context,
        caller,
        &raw_company,
        customer_id,
        Change::Add,
        (method, uri, headers, &body.raw),
    )
    .await
}

/// Support removes an employee: their trips are their own again.
#[utoipa::path(
    post,
    path = "/v1/companies/{company_id}/employees/{customer_id}/remove",
    operation_id = "remove_employee",
    tag = "companies",
    params(("company_id" = Uuid, Path, description = "The company"), ("customer_id" = Uuid, Path, description = "The employee"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "Removed", body = EmploymentChanged), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn remove_employee(
    State(context): State<CommandContext>,
    caller: Caller,
    Path((raw_company, raw_customer)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(problem) = caller.require(&[Role::Support]) {
        return problem.into_response();
    }
    let customer_id = match path_id(&raw_customer, ProblemType::CustomerNotFound, "customer") {
        Ok(id) => CustomerId(id),
        Err(problem) => return problem.into_response(),
    };
    change_employment(
        context,
        caller,
        &raw_company,
        customer_id,
        Change::Remove,
        (method, uri, headers, &body),
    )
    .await
}
