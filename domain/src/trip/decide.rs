//! A trip's own rules: the order of start, park, resume and end, and the price at the end.

use super::{TripCommand, TripContext, TripEvent, TripPhase, TripState, price};
use crate::rejection::{FieldError, Rejection};

pub(super) fn decide(
    state: &TripState,
    command: &TripCommand,
    context: &TripContext,
) -> Result<Vec<TripEvent>, Rejection> {
    let trip_id = context.trip_id;
    let now = context.now;
    if let TripCommand::Start(start) = command {
        if state.started.is_some() {
            return Err(Rejection::TripAlreadyStarted { trip_id });
        }
        // The start is appended to this trip's stream; another trip's id in it would make the
        // history disagree with the stream it is in.
        if start.trip_id != trip_id {
            return Err(
                FieldError::new("trip_id", "must be the id of the trip being started").into(),
            );
        }
        return Ok(vec![TripEvent::TripStarted {
            start: start.clone(),
            started_at: now,
        }]);
    }
    let Some(start) = &state.started else {
        return Err(Rejection::TripNotFound { trip_id });
    };
    if let TripPhase::Ended { .. } = state.phase {
        return Err(Rejection::TripAlreadyEnded { trip_id });
    }
    match command {
        TripCommand::Start(_) => Err(Rejection::TripAlreadyStarted { trip_id }),
        TripCommand::Park => match state.phase {
            TripPhase::Parked { .. } => Err(Rejection::TripAlreadyParked { trip_id }),
            _ => Ok(vec![TripEvent::TripParked {
                trip_id,
                parked_at: now,
            }]),
        },
        TripCommand::Resume => match state.phase {
            TripPhase::Parked { .. } => Ok(vec![TripEvent::TripResumed {
                trip_id,
                resumed_at: now,
            }]),
            _ => Err(Rejection::TripNotParked { trip_id }),
        },
        TripCommand::End {
            end_position,
            end_odometer_m,
            surcharge,
        } => {
            let (driving_s, parking_s) = state.durations_until(now);
            let distance_m = end_odometer_m
                .get()
                .saturating_sub(start.start_odometer_m.get());
            Ok(vec![TripEvent::TripEnded {
                trip_id,
                customer_id: start.customer_id,
                vehicle_id: start.vehicle_id,
                end_position: *end_position,
                end_odometer_m: *end_odometer_m,
                ended_at: now,
                price: price(&start.tariff, driving_s, parking_s, distance_m)
                    .with_surcharge(surcharge.as_ref()),
            }])
        }
    }
}
