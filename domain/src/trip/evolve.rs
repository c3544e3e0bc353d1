//! How trip events move a trip through its phases and accumulate its time.

use super::{TripEvent, TripPhase, TripState, spell_s};

pub(super) fn evolve(mut state: TripState, event: &TripEvent) -> TripState {
    match event {
        TripEvent::TripStarted { start, started_at } => {
            state.started = Some(start.clone());
            state.phase = TripPhase::Driving { since: *started_at };
        }
        TripEvent::TripParked { parked_at, .. } => {
            if let TripPhase::Driving { since } = state.phase {
                state.driving_s += spell_s(since, *parked_at);
            }
            state.phase = TripPhase::Parked { since: *parked_at };
        }
        TripEvent::TripResumed { resumed_at, .. } => {
            if let TripPhase::Parked { since } = state.phase {
                state.parking_s += spell_s(since, *resumed_at);
            }
            state.phase = TripPhase::Driving { since: *resumed_at };
        }
        TripEvent::TripEnded {
            ended_at, price, ..
        } => {
            let (driving_s, parking_s) = state.durations_until(*ended_at);
            state.driving_s = driving_s;
            state.parking_s = parking_s;
            state.phase = TripPhase::Ended {
                ended_at: *ended_at,
            };
            state.price = Some(price.clone());
        }
    }
    state
}
