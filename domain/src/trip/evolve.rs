//! How trip events move a trip through its phases and accumulate its time.

use super::{TripEvent, TripPhase, TripState};
use chrono::{DateTime, Utc};

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_seconds()).unwrap_or(0)
}

pub(super) fn evolve(mut state: TripState, event: &TripEvent) -> TripState {
    match event {
        TripEvent::TripStarted { start, started_at } => {
            state.started = Some(start.clone());
            state.phase = TripPhase::Driving { since: *started_at };
        }
        TripEvent::TripParked { parked_at, .. } => {
            if let TripPhase::Driving { since } = state.phase {
                state.driving_s += seconds_between(since, *parked_at);
            }
            state.phase = TripPhase::Parked { since: *parked_at };
        }
        TripEvent::TripResumed { resumed_at, .. } => {
            if let TripPhase::Parked { since } = state.phase {
                state.parking_s += seconds_between(since, *resumed_at);
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
