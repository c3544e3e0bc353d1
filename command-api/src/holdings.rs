//! What a customer holds: their active trip and the car they reserved, read from the exclusive
//! claims they hold (`active-trip:customer:…`, `holds-car:customer:…`), which the same appends
//! that start and end them take and release. Starting a trip and reserving a car both decide on
//! it.

use crate::pipeline::CommandError;
use domain::ids::{CustomerId, ReservationId, TripId};
use domain::rental::{customer_holds_car_claim, customer_trip_claim};
use event_store::EventStore;

/// The customer's active trip and active reservation, from the claims they hold.
pub(crate) async fn customer_holdings(
    store: &EventStore,
    customer_id: CustomerId,
) -> Result<(Option<TripId>, Option<ReservationId>), CommandError> {
    let trip = store
        .claim_holder(&customer_trip_claim(customer_id))
        .await?
        .and_then(|holder| TripId::from_stream_id(&holder));
    let reservation = store
        .claim_holder(&customer_holds_car_claim(customer_id))
        .await?
        .and_then(|holder| ReservationId::from_stream_id(&holder));
    Ok((trip, reservation))
}
