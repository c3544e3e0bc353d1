//! Support, CRM and app reads over the read models of issue 4: who had a car at a time (for
//! traffic fines), search by phone, e-mail, licence or plate, a customer's trips a page at a
//! time, the customer 360 of the support console, and the fleet's status by zone.

pub(crate) mod customer;
pub(crate) mod fleet;
pub(crate) mod holder;
pub(crate) mod search;
pub(crate) mod trips;

use crate::params::InvalidParam;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use uuid::Uuid;

/// A UUID path parameter, or a 422 naming it.
pub(crate) fn uuid_param(
    name: &str,
    path: Result<Path<String>, PathRejection>,
) -> Result<Uuid, InvalidParam> {
    let Path(raw) = path.map_err(|rejection| InvalidParam::new(name, rejection.body_text()))?;
    raw.parse().map_err(|_| {
        InvalidParam::new(
            name,
            format!("must be a UUID (like 0194f5a0-0000-7000-8000-000000000001), not {raw:?}"),
        )
    })
}
