//! The price of a trip: started minutes of driving and of parking at the trip's tariff, plus
//! started kilometres beyond the included distance. Integer kopecks throughout.

use super::Tariff;
use crate::money::{Currency, Kopecks};
use serde::{Deserialize, Serialize};

/// A trip's price and how it was reached, kept in the `TripEnded` event so any price can be
/// explained later without the code that computed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceBreakdown {
    /// Currency of every amount.
    pub currency: Currency,
    /// Seconds driven.
    pub driving_s: u64,
    /// Started minutes driven (seconds rounded up).
    pub driving_minutes: u64,
    /// Driving minutes × driving rate.
    pub driving_kopecks: Kopecks,
    /// Seconds parked within the trip.
    pub parking_s: u64,
    /// Started minutes parked.
    pub parking_minutes: u64,
    /// Parking minutes × parking rate.
    pub parking_kopecks: Kopecks,
    /// Distance by odometer.
    pub distance_m: u64,
    /// Kilometres included in the tariff.
    pub included_km: u32,
    /// Started kilometres beyond the included distance.
    pub extra_km: u64,
    /// Extra kilometres × per-km rate.
    pub distance_kopecks: Kopecks,
    /// The sum of the parts.
    pub total_kopecks: Kopecks,
}

/// Rounds a count of units up: 61 seconds are 2 started minutes.
fn started(units: u64, per: u64) -> u64 {
    units.div_ceil(per)
}

/// Prices a trip of `driving_s` seconds driving, `parking_s` parked and `distance_m` driven.
pub fn price(tariff: &Tariff, driving_s: u64, parking_s: u64, distance_m: u64) -> PriceBreakdown {
    let driving_minutes = started(driving_s, 60);
    let parking_minutes = started(parking_s, 60);
    let included_m = u64::from(tariff.included_km) * 1000;
    let extra_km = started(distance_m.saturating_sub(included_m), 1000);
    let driving_kopecks = tariff.driving_per_minute * driving_minutes;
    let parking_kopecks = tariff.parking_per_minute * parking_minutes;
    let distance_kopecks = tariff.per_km_over_included * extra_km;
    PriceBreakdown {
        currency: Currency::Rub,
        driving_s,
        driving_minutes,
        driving_kopecks,
        parking_s,
        parking_minutes,
        parking_kopecks,
        distance_m,
        included_km: tariff.included_km,
        extra_km,
        distance_kopecks,
        total_kopecks: driving_kopecks + parking_kopecks + distance_kopecks,
    }
}
