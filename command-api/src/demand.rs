//! What a quote observes in the car's pricing zone: free cars (from `vehicles_view`) and the
//! other customers who asked for a quote or reserved there lately (from `demand_activity`), as
//! counted by the read models' owner, `projectors::demand::observe`.
//!
//! These are the one input of a command that comes from read models. They are observations, not
//! rules: the quote records them in `QuoteIssued`, with the multiplier they gave, so the price is
//! explained by the event alone, and a read model a moment behind only shifts a price by the
//! demand of that moment.

use crate::pipeline::CommandError;
use chrono::{DateTime, Utc};
use domain::ids::CustomerId;
use domain::pricing::{DemandObservation, PricingPolicy, PricingZone};
use event_store::StoreError;
use sqlx::PgPool;

/// Counts free cars and other recent customers in `zone` at `now`.
pub(crate) async fn observe(
    pool: &PgPool,
    policy: &PricingPolicy,
    zone: PricingZone,
    customer_id: CustomerId,
    now: DateTime<Utc>,
) -> Result<DemandObservation, CommandError> {
    projectors::demand::observe(pool, policy, zone, Some(customer_id), now)
        .await
        .map_err(|error| CommandError::Store(StoreError::from(error)))
}
