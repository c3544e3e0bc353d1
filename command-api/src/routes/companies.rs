//! Companies (B2B accounts): support registers a company and adds or removes its employees.
//! Employment is appended to the company's and the customer's streams in one transaction.

use crate::CommandContext;
use crate::load::Streams;
use crate::pipeline::{Decision, Envelope, execute, write};
use crate::request::{Command, PathCommand, path_id};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
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
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, roles};
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
    Command { envelope, body, .. }: Command<RegisterCompany, roles::Support>,
) -> Result<Response, Problem> {
    let company_id = CompanyId(Uuid::now_v7());
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
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
    .await;
    Ok(response)
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
    envelope: Envelope,
    company_id: CompanyId,
    customer_id: CustomerId,
    change: Change,
) -> Response {
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
    Path(raw_company): Path<String>,
    Command { envelope, body, .. }: Command<AddEmployeeBody, roles::Support>,
) -> Result<Response, Problem> {
    let company_id = company_in_path(&raw_company)?;
    let customer_id = CustomerId(body.customer_id);
    Ok(change_employment(context, envelope, company_id, customer_id, Change::Add).await)
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
    Path((raw_company, raw_customer)): Path<(String, String)>,
    PathCommand { envelope, .. }: PathCommand<roles::Support>,
) -> Result<Response, Problem> {
    let customer_id = CustomerId(path_id(
        &raw_customer,
        ProblemType::CustomerNotFound,
        "customer",
    )?);
    let company_id = company_in_path(&raw_company)?;
    Ok(change_employment(context, envelope, company_id, customer_id, Change::Remove).await)
}

/// Parses the company id in the path.
fn company_in_path(raw_company: &str) -> Result<CompanyId, Problem> {
    path_id(raw_company, ProblemType::CompanyNotFound, "company").map(CompanyId)
}
