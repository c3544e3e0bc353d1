//! The price of a trip: started minutes of driving and of parking at the trip's tariff, plus
//! started kilometres beyond the included distance, plus the surcharge of the zone it ended in
//! (an airport), if any. Integer kopecks throughout.

use super::Tariff;
use crate::money::{Currency, Kopecks};
use crate::zone::ZoneSurcharge;
use serde::{Deserialize, Serialize};

/// A trip's price and how it was reached, kept in the `TripEnded` event so any price can be
/// explained later without the code that computed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The surcharge zone the trip ended in, if any. Absent in events recorded before surcharge
    /// zones existed.
    #[serde(default)]
    pub surcharge_zone: Option<String>,
    /// That zone's fee; zero elsewhere.
    #[serde(default)]
    pub surcharge_kopecks: Kopecks,
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
    let driving_kopecks = tariff.driving_kopecks_per_minute * driving_minutes;
    let parking_kopecks = tariff.parking_kopecks_per_minute * parking_minutes;
    let distance_kopecks = tariff.kopecks_per_extra_km * extra_km;
    PriceBreakdown {
        currency: tariff.currency,
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
        surcharge_zone: None,
        surcharge_kopecks: Kopecks::ZERO,
        total_kopecks: driving_kopecks + parking_kopecks + distance_kopecks,
    }
}

impl PriceBreakdown {
    /// This price with the surcharge of the zone the trip ended in added to the total.
    pub fn with_surcharge(mut self, surcharge: Option<&ZoneSurcharge>) -> PriceBreakdown {
        if let Some(surcharge) = surcharge {
            self.surcharge_zone = Some(surcharge.zone.clone());
            self.surcharge_kopecks = surcharge.amount_kopecks;
            self.total_kopecks += surcharge.amount_kopecks;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    //! Properties of the price over any tariff and any trip, not only the examples.

    use super::*;
    use proptest::prelude::*;

    /// A week of seconds: longer than any trip the operator allows.
    const WEEK_S: u64 = 7 * 24 * 3600;
    /// Five thousand kilometres, in metres.
    const FAR_M: u64 = 5_000_000;

    fn tariffs() -> impl Strategy<Value = Tariff> {
        (0i64..=10_000, 0i64..=10_000, 0u32..=500, 0i64..=10_000).prop_map(
            |(driving, parking, included_km, per_km)| Tariff {
                name: "any".to_owned(),
                currency: Currency::Rub,
                driving_kopecks_per_minute: Kopecks(driving),
                parking_kopecks_per_minute: Kopecks(parking),
                included_km,
                kopecks_per_extra_km: Kopecks(per_km),
            },
        )
    }

    /// `count` started `per`-unit blocks cover `units`, and one block fewer would not.
    fn covers_exactly(count: u64, units: u64, per: u64) -> bool {
        count * per >= units && (count == 0 || (count - 1) * per < units)
    }

    proptest! {
        #[test]
        fn total_is_the_sum_of_the_parts(
            tariff in tariffs(),
            driving_s in 0..WEEK_S,
            parking_s in 0..WEEK_S,
            distance_m in 0..FAR_M,
        ) {
            let p = price(&tariff, driving_s, parking_s, distance_m);
            prop_assert_eq!(p.driving_kopecks, tariff.driving_kopecks_per_minute * p.driving_minutes);
            prop_assert_eq!(p.parking_kopecks, tariff.parking_kopecks_per_minute * p.parking_minutes);
            prop_assert_eq!(p.distance_kopecks, tariff.kopecks_per_extra_km * p.extra_km);
            prop_assert_eq!(
                p.total_kopecks.get(),
                p.driving_kopecks.get() + p.parking_kopecks.get() + p.distance_kopecks.get()
            );
            prop_assert_eq!(p.surcharge_kopecks, Kopecks::ZERO);
            let surcharge = ZoneSurcharge { zone: "airport".to_owned(), amount_kopecks: Kopecks(30_000) };
            let with = p.clone().with_surcharge(Some(&surcharge));
            prop_assert_eq!(with.total_kopecks.get(), p.total_kopecks.get() + 30_000);
            prop_assert_eq!(with.surcharge_zone.as_deref(), Some("airport"));
            prop_assert_eq!(p.currency, tariff.currency);
            prop_assert_eq!(
                (p.driving_s, p.parking_s, p.distance_m, p.included_km),
                (driving_s, parking_s, distance_m, tariff.included_km)
            );
        }

        #[test]
        fn a_started_minute_or_kilometre_is_charged_whole_and_no_more(
            tariff in tariffs(),
            driving_s in 0..WEEK_S,
            parking_s in 0..WEEK_S,
            distance_m in 0..FAR_M,
        ) {
            let p = price(&tariff, driving_s, parking_s, distance_m);
            prop_assert!(covers_exactly(p.driving_minutes, driving_s, 60));
            prop_assert!(covers_exactly(p.parking_minutes, parking_s, 60));
            let over_m = distance_m.saturating_sub(u64::from(tariff.included_km) * 1000);
            prop_assert!(covers_exactly(p.extra_km, over_m, 1000));
        }

        #[test]
        fn price_never_falls_when_driving_parking_or_distance_grows(
            tariff in tariffs(),
            driving_s in 0..WEEK_S,
            parking_s in 0..WEEK_S,
            distance_m in 0..FAR_M,
            more_s in 0..WEEK_S,
            more_m in 0..FAR_M,
        ) {
            let base = price(&tariff, driving_s, parking_s, distance_m).total_kopecks;
            let longer_drive = price(&tariff, driving_s + more_s, parking_s, distance_m);
            let longer_park = price(&tariff, driving_s, parking_s + more_s, distance_m);
            let farther = price(&tariff, driving_s, parking_s, distance_m + more_m);
            prop_assert!(longer_drive.total_kopecks >= base);
            prop_assert!(longer_park.total_kopecks >= base);
            prop_assert!(farther.total_kopecks >= base);
        }

        #[test]
        fn nothing_driven_parked_or_travelled_costs_nothing(tariff in tariffs()) {
            let p = price(&tariff, 0, 0, 0);
            prop_assert_eq!((p.driving_minutes, p.parking_minutes, p.extra_km), (0, 0, 0));
            prop_assert_eq!(p.total_kopecks, Kopecks::ZERO);
        }
    }

    #[test]
    fn one_second_over_a_minute_is_two_minutes() {
        let tariff = Tariff {
            name: "standard".to_owned(),
            currency: Currency::Rub,
            driving_kopecks_per_minute: Kopecks(1_200),
            parking_kopecks_per_minute: Kopecks(300),
            included_km: 70,
            kopecks_per_extra_km: Kopecks(1_500),
        };
        let p = price(&tariff, 61, 60, 70_001);
        assert_eq!(
            (p.driving_minutes, p.parking_minutes, p.extra_km),
            (2, 1, 1)
        );
        assert_eq!(p.total_kopecks, Kopecks(2 * 1_200 + 300 + 1_500));
    }
}
