//! How reservation events move a reservation through its life.

use super::{ReservationEvent, ReservationState, ReservationStatus};

pub(super) fn evolve(mut state: ReservationState, event: &ReservationEvent) -> ReservationState {
    match event {
        ReservationEvent::ReservationMade { details } => {
            state.made = Some(details.clone());
            state.status = ReservationStatus::Active;
        }
        ReservationEvent::ReservationConverted { trip_id, .. } => {
            state.status = ReservationStatus::Converted { trip_id: *trip_id };
        }
        ReservationEvent::ReservationCancelled { .. } => {
            state.status = ReservationStatus::Cancelled;
        }
        ReservationEvent::ReservationExpired { .. } => state.status = ReservationStatus::Expired,
    }
    state
}
