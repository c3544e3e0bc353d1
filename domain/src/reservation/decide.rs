//! A reservation's own rules: made once; converted or cancelled only while active and before its
//! limit; expired only while active and once the limit has passed. Whatever ends it charges the
//! waiting up to then.

use super::{
    ReservationCommand, ReservationContext, ReservationDetails, ReservationEvent, ReservationState,
    WaitingCharge,
};
use crate::rejection::{FieldError, Rejection};
use chrono::{DateTime, Duration, Utc};

/// The waiting of a reservation made at `made_at` that ends at `end`: free minutes first, then
/// every started minute at the waiting rate, never counting past the limit. Seconds are counted
/// as ticks of the clock (whole seconds of each end subtracted), as trips count theirs.
pub fn waiting_charge(details: &ReservationDetails, end: DateTime<Utc>) -> WaitingCharge {
    let end = end.min(details.expires_at);
    let waited_s = u64::try_from(end.timestamp() - details.made_at.timestamp()).unwrap_or(0);
    let waiting = &details.terms.waiting;
    let free_s = u64::from(waiting.free_minutes) * 60;
    let paid_limit = u64::from(waiting.max_minutes.saturating_sub(waiting.free_minutes));
    let paid_minutes = waited_s.saturating_sub(free_s).div_ceil(60).min(paid_limit);
    WaitingCharge {
        waited_s,
        free_minutes: waiting.free_minutes,
        paid_minutes,
        waiting_kopecks_per_minute: waiting.kopecks_per_minute,
        paid_waiting_kopecks: waiting.kopecks_per_minute * paid_minutes,
    }
}

pub(super) fn decide(
    state: &ReservationState,
    command: &ReservationCommand,
    context: &ReservationContext,
) -> Result<Vec<ReservationEvent>, Rejection> {
    let reservation_id = context.reservation_id;
    let now = context.now;
    if let ReservationCommand::Make {
        customer_id,
        vehicle_id,
        position,
        quote_id,
        terms,
    } = command
    {
        if state.made.is_some() {
            return Err(Rejection::ReservationAlreadyMade { reservation_id });
        }
        if terms.waiting.max_minutes < terms.waiting.free_minutes {
            return Err(FieldError::new(
                "terms.waiting.max_minutes",
                "must not be shorter than the free minutes",
            )
            .into());
        }
        let minutes = |m: u32| Duration::minutes(i64::from(m));
        return Ok(vec![ReservationEvent::ReservationMade {
            details: ReservationDetails {
                reservation_id,
                customer_id: *customer_id,
                vehicle_id: *vehicle_id,
                position: *position,
                quote_id: *quote_id,
                terms: terms.clone(),
                made_at: now,
                free_until: now + minutes(terms.waiting.free_minutes),
                expires_at: now + minutes(terms.waiting.max_minutes),
            },
        }]);
    }
    let Some(details) = &state.made else {
        return Err(Rejection::ReservationNotFound { reservation_id });
    };
    if !state.is_active() {
        return Err(Rejection::ReservationNotActive {
            reservation_id,
            status: state.status.as_str().to_owned(),
        });
    }
    let (customer_id, vehicle_id) = (details.customer_id, details.vehicle_id);
    let due = now >= details.expires_at;
    let waiting = waiting_charge(details, now);
    match command {
        ReservationCommand::Make { .. } => {
            Err(Rejection::ReservationAlreadyMade { reservation_id })
        }
        ReservationCommand::Expire if !due => Err(Rejection::ReservationNotDue {
            reservation_id,
            expires_at: details.expires_at,
        }),
        ReservationCommand::Expire => Ok(vec![ReservationEvent::ReservationExpired {
            reservation_id,
            customer_id,
            vehicle_id,
            expired_at: now,
            waiting,
        }]),
        // Past the limit the reservation is over, recorded or not: the worker records it.
        ReservationCommand::Convert { .. } | ReservationCommand::Cancel if due => {
            Err(Rejection::ReservationExpired {
                reservation_id,
                expired_at: details.expires_at,
            })
        }
        ReservationCommand::Convert { trip_id } => {
            Ok(vec![ReservationEvent::ReservationConverted {
                reservation_id,
                customer_id,
                vehicle_id,
                trip_id: *trip_id,
                converted_at: now,
                waiting,
            }])
        }
        ReservationCommand::Cancel => Ok(vec![ReservationEvent::ReservationCancelled {
            reservation_id,
            customer_id,
            vehicle_id,
            cancelled_at: now,
            waiting,
        }]),
    }
}
