//! Which telemetry readings are worth an event. A unit reports every few seconds; recording each
//! report would flood the log with noise (GPS jitter of a parked car, fuel wobbling on a slope), so
//! a reading becomes an event only when it tells something new:
//!
//! - the car moved at least [`MIN_MOVE_M`] from the last recorded position;
//! - the fuel (or charge) level crossed into another [`FUEL_BAND_PERCENT`]-point band;
//! - the doors were locked or unlocked;
//! - the odometer advanced at least [`MIN_ODOMETER_STEP_M`] (or [`MIN_ODOMETER_STEP_IN_TRIP_M`]
//!   during a trip, because a trip's distance is billed from the last recorded reading).
//!
//! So the recorded state of a car is at most a few metres, one fuel band and 100 m of odometer
//! behind its unit while it is rented.

use super::Telemetry;

/// Movement smaller than this is GPS jitter.
pub const MIN_MOVE_M: f64 = 25.0;
/// Fuel is recorded by bands of this many percentage points (0–4, 5–9, …).
pub const FUEL_BAND_PERCENT: u8 = 5;
/// Odometer steps smaller than this are not recorded on their own while the car is free.
pub const MIN_ODOMETER_STEP_M: u64 = 1_000;
/// During a trip the odometer is recorded in finer steps: the trip's distance is billed from it.
pub const MIN_ODOMETER_STEP_IN_TRIP_M: u64 = 100;

/// Whether `reading` differs meaningfully from `last`.
pub fn is_meaningful(last: &Telemetry, reading: &Telemetry, in_trip: bool) -> bool {
    let moved = last.position.distance_m(&reading.position) >= MIN_MOVE_M;
    let band = |t: &Telemetry| t.fuel_percent.get() / FUEL_BAND_PERCENT;
    let fuel_band_changed = band(last) != band(reading);
    let lock_changed = last.doors_locked != reading.doors_locked;
    let step = if in_trip {
        MIN_ODOMETER_STEP_IN_TRIP_M
    } else {
        MIN_ODOMETER_STEP_M
    };
    let odometer_advanced = reading
        .odometer_m
        .get()
        .saturating_sub(last.odometer_m.get())
        >= step;
    moved || fuel_band_changed || lock_changed || odometer_advanced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::GeoPoint;
    use crate::value::{FuelPercent, OdometerM};

    fn reading(lat: f64, fuel: f64, odometer_m: u64, locked: bool) -> Telemetry {
        Telemetry {
            position: GeoPoint { lat, lon: 37.62 },
            fuel_percent: FuelPercent::parse("fuel_percent", fuel).unwrap(),
            odometer_m: OdometerM::from_m(odometer_m),
            doors_locked: locked,
        }
    }

    #[test]
    fn jitter_and_small_fuel_wobble_are_not_meaningful() {
        let last = reading(55.76000, 52.0, 10_000, true);
        // ~11 m north, fuel 52 → 54 (same 50–54 band), 50 m on the odometer.
        let jitter = reading(55.76010, 54.0, 10_050, true);
        assert!(!is_meaningful(&last, &jitter, false));
        assert!(!is_meaningful(&last, &last, true));
    }

    #[test]
    fn each_kind_of_change_is_meaningful_on_its_own() {
        let last = reading(55.76000, 52.0, 10_000, true);
        assert!(
            is_meaningful(&last, &reading(55.76030, 52.0, 10_000, true), false),
            "~33 m"
        );
        assert!(
            is_meaningful(&last, &reading(55.76000, 49.0, 10_000, true), false),
            "band"
        );
        assert!(
            is_meaningful(&last, &reading(55.76000, 52.0, 10_000, false), false),
            "unlocked"
        );
        assert!(
            is_meaningful(&last, &reading(55.76000, 52.0, 11_000, true), false),
            "1 km"
        );
    }

    #[test]
    fn during_a_trip_the_odometer_is_recorded_in_finer_steps() {
        let last = reading(55.76000, 52.0, 10_000, true);
        let crept = reading(55.76000, 52.0, 10_150, true);
        assert!(!is_meaningful(&last, &crept, false));
        assert!(is_meaningful(&last, &crept, true));
    }
}
