//! `GET /v1/support/search?q=`: one box for support that finds customers by phone, e-mail or
//! licence number and cars by plate. The query is read the way the domain reads each field
//! (`+7 916 123-45-67`, `8 916 1234567` and `+79161234567` are one phone; `a123bc777` is the plate
//! `А123ВС777`), so an exact match on the stored, already normalised values is enough and each
//! lookup uses its index.

use crate::QueryContext;
use crate::error::QueryError;
use crate::params::{InvalidParam, QueryParams};
use axum::Json;
use axum::extract::State;
use domain::value::{Email, LicenceNumber, Phone, Plate};
use http_edge::{Caller, Problem, Role};
use serde::Serialize;
use uuid::Uuid;

/// The most hits of each kind.
const MAX_HITS: i64 = 20;

/// One thing found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Hit {
    /// `customer` or `vehicle`.
    kind: &'static str,
    /// The customer's or the car's id.
    id: Uuid,
    /// What to show: the customer's name and phone, or the car's plate and model.
    label: String,
    /// The field that matched: `phone`, `email`, `licence_number` or `plate`.
    matched: &'static str,
}

/// The hits of a search.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SearchResponse {
    /// The query as given.
    q: String,
    /// Customers first, then cars.
    hits: Vec<Hit>,
}

/// Finds customers by phone, e-mail or licence number and cars by plate (support).
#[utoipa::path(
    get,
    path = "/v1/support/search",
    operation_id = "support_search",
    tag = "support",
    params(("q" = String, Query, description = "A phone, e-mail, driving licence number or plate")),
    responses((status = 200, description = "What matched", body = SearchResponse), http_edge::openapi::QueryProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn support_search(
    State(context): State<QueryContext>,
    caller: Caller,
    params: QueryParams,
) -> Result<Json<SearchResponse>, Problem> {
    caller.require(&[Role::Support])?;
    let q = params
        .text("q")?
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| InvalidParam::new("q", "q is required"))?
        .to_owned();
    // Each reading the query admits; a licence number and a plate can look alike, so both are
    // tried.
    let phone = Phone::parse("q", &q).ok();
    let email = Email::parse("q", &q).ok();
    let licence = LicenceNumber::parse("q", &q).ok();
    let plate = Plate::parse("q", &q).ok();
    if phone.is_none() && email.is_none() && licence.is_none() && plate.is_none() {
        return Err(InvalidParam::new(
            "q",
            "must be a phone (+79161234567), an e-mail, a driving licence number or a plate",
        )
        .into());
    }

    let mut hits = Vec::new();
    let fields = [
        ("phone", phone.map(|v| v.as_str().to_owned())),
        ("email", email.map(|v| v.as_str().to_owned())),
        ("licence_number", licence.map(|v| v.as_str().to_owned())),
    ];
    for (field, value) in fields {
        let Some(value) = value else { continue };
        let rows: Vec<(Uuid, String, String)> = sqlx::query_as(&format!(
            "SELECT customer_id, name, phone FROM customers_view WHERE {field} = $1
             ORDER BY registered_at, customer_id LIMIT $2"
        ))
        .bind(&value)
        .bind(MAX_HITS)
        .fetch_all(&context.pool)
        .await
        .map_err(QueryError::from)?;
        for (id, name, phone) in rows {
            if hits.iter().any(|hit: &Hit| hit.id == id) {
                continue;
            }
            hits.push(Hit {
                kind: "customer",
                id,
                label: format!("{name}, {phone}"),
                matched: field,
            });
        }
    }
    if let Some(plate) = plate {
        let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
            "SELECT vehicle_id, plate, model FROM vehicle_plates WHERE plate = $1
             ORDER BY added_at, vehicle_id LIMIT $2",
        )
        .bind(plate.as_str())
        .bind(MAX_HITS)
        .fetch_all(&context.pool)
        .await
        .map_err(QueryError::from)?;
        hits.extend(rows.into_iter().map(|(id, plate, model)| Hit {
            kind: "vehicle",
            id,
            label: format!("{plate}, {model}"),
            matched: "plate",
        }));
    }
    Ok(Json(SearchResponse { q, hits }))
}
