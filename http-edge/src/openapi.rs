//! Pieces of the OpenAPI document that every route shares: the bearer-token security scheme and
//! the problem+json error responses.

use std::collections::BTreeMap;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// Adds the `bearer` security scheme (HS256 JWT with `sub` and `role`).
#[derive(Debug)]
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        scheme.description = Some(
            "HS256 JWT with `sub` (a customer id for customers) and `role` (customer, support, \
             fleet, auditor, service); `velka token --role R --sub S` prints one."
                .to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// The error answers of a command route: each a `Problem` whose `rule` names the refusal.
#[derive(Debug)]
pub struct CommandProblems;

impl utoipa::IntoResponses for CommandProblems {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("400", "The body is not JSON of the expected shape, or a header is malformed; `field` names the culprit"),
            ("401", "No valid bearer token"),
            ("403", "The caller's role may not do this, or the object is someone else's"),
            ("404", "An id in the path or body names nothing that exists"),
            ("409", "A business rule refused the command (`rule` says which); nothing was appended"),
            ("415", "The body is not sent as JSON"),
            ("422", "A field has an invalid value (`field` names it), or an Idempotency-Key was reused for another request"),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), problem(description)))
        .collect()
    }
}

/// The error answers of a query route.
#[derive(Debug)]
pub struct QueryProblems;

impl utoipa::IntoResponses for QueryProblems {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("401", "No valid bearer token"),
            (
                "403",
                "The caller's role may not read this, or it is someone else's",
            ),
            ("404", "Nothing with this id exists"),
            ("422", "A parameter has an invalid value; `field` names it"),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), problem(description)))
        .collect()
    }
}

/// The whole HTTP API's OpenAPI 3.1 document, from the parts each API crate generates from its
/// own routes.
pub fn document(parts: Vec<utoipa::openapi::OpenApi>) -> utoipa::openapi::OpenApi {
    let mut document = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Velka")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Event-sourced core of a car-sharing operator. Errors are \
                     application/problem+json with a stable `type`; every POST takes an \
                     `Idempotency-Key`; each POST's operationId is also its command name on NATS \
                     (`velka.commands.<operationId>`).",
                ))
                .build(),
        )
        .build();
    for part in parts {
        document.merge(part);
    }
    document
}

/// Serves `document` at `/openapi.json`.
pub fn document_router(
    document: &utoipa::openapi::OpenApi,
) -> Result<axum::Router, serde_json::Error> {
    let json = std::sync::Arc::new(document.to_pretty_json()?);
    Ok(axum::Router::new()
        .route("/openapi.json", axum::routing::get(openapi_json))
        .with_state(json))
}

/// The OpenAPI 3.1 document of every route, generated from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", content_type = "application/json")),
)]
pub async fn openapi_json(
    axum::extract::State(json): axum::extract::State<std::sync::Arc<String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json.as_str().to_owned(),
    )
        .into_response()
}
