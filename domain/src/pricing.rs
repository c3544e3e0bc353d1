//! Dynamic pricing: the demand multiplier a quote applies to the per-minute rates, the pricing
//! zones it is computed for, and the terms (trip tariff and reservation waiting) it multiplies.
//!
//! **Zones** are cells of a fixed latitude/longitude grid (`ZoneGrid`, its cell size is fixture
//! data): a car at `(lat, lon)` is in the cell `row = ⌊lat / lat_deg⌋`, `col = ⌊lon / lon_deg⌋`.
//! A grid needs no list of districts to maintain, every point of the planet has exactly one
//! cell, and PostgreSQL computes the same cell with the same IEEE division, so the command side
//! can count the free cars of a cell in SQL. With Moscow's 0.02° × 0.03° cells a zone is about
//! 2.2 km × 1.9 km: a walk of a few minutes to the next zone's cars.
//!
//! **The multiplier** is a pure function of two observations in the car's zone: how many cars
//! are free (`free_cars`), and how many *other* customers asked for a quote or reserved a car
//! there within the demand window (`recent_customers`). The customer asking is one more who
//! wants a car, so the ratio is "customers who want a car here per free car":
//!
//! ```text
//! multiplier_permille = clamp(1000 × (recent_customers + 1) / max(free_cars, 1), min, max)
//! ```
//!
//! rounded down, bounded by the policy (0.8×–2.5× in Moscow). It never falls when demand grows
//! and never rises when supply grows. It is an integer in permille (1250 = 1.25×) so that money
//! stays integer; the observations that produced it are recorded in the `QuoteIssued` event, so
//! every price can be explained later without the read models it was observed in.
//!
//! **Applying it** multiplies the per-minute rates only (driving, parking, paid waiting); the
//! per-kilometre rate, the included distance, the free waiting minutes and zone surcharges are
//! not demand-priced. Each multiplied rate is rounded to the nearest kopeck, halves up:
//! `(rate × permille + 500) / 1000` in integers.

use crate::geo::GeoPoint;
use crate::money::Kopecks;
use crate::trip::Tariff;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The multiplier of an undisturbed market: 1.0×.
pub const NEUTRAL_PERMILLE: u32 = 1000;

/// The pricing settings of a city (fixture data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PricingPolicy {
    /// The grid pricing zones are cells of.
    pub zone_grid: ZoneGrid,
    /// The lowest multiplier, in permille (800 = 0.8×).
    pub min_multiplier_permille: u32,
    /// The highest multiplier, in permille (2500 = 2.5×).
    pub max_multiplier_permille: u32,
    /// How far back quotes and reservations count as demand, in seconds.
    pub demand_window_s: u32,
    /// How long a quote can be used after it was issued, in seconds.
    pub quote_valid_s: u32,
}

impl PricingPolicy {
    /// The multiplier for what was observed in a zone.
    pub fn multiplier_permille(&self, observed: &DemandObservation) -> u32 {
        demand_multiplier_permille(
            observed.free_cars,
            observed.recent_customers,
            self.min_multiplier_permille,
            self.max_multiplier_permille,
        )
    }
}

/// A grid of `lat_deg` × `lon_deg` cells.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneGrid {
    /// Cell height in degrees of latitude.
    pub lat_deg: f64,
    /// Cell width in degrees of longitude.
    pub lon_deg: f64,
}

impl ZoneGrid {
    /// The cell `point` lies in.
    pub fn zone_of(&self, point: &GeoPoint) -> PricingZone {
        // `as` saturates for out-of-range floats; a sane grid and a parsed point never reach it.
        PricingZone {
            row: (point.lat / self.lat_deg).floor() as i64,
            col: (point.lon / self.lon_deg).floor() as i64,
        }
    }
}

/// One cell of the pricing grid.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricingZone {
    /// `⌊lat / lat_deg⌋`.
    pub row: i64,
    /// `⌊lon / lon_deg⌋`.
    pub col: i64,
}

impl fmt::Display for PricingZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}c{}", self.row, self.col)
    }
}

/// What the command side saw in a zone when it priced a quote.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DemandObservation {
    /// Cars available in the zone (the quoted car among them).
    pub free_cars: u32,
    /// Other customers who asked for a quote or reserved in the zone within the window.
    pub recent_customers: u32,
    /// The window, in seconds.
    pub window_s: u32,
}

/// The demand multiplier in permille: customers who want a car (the asking one included) per
/// free car, rounded down and clamped to `[min, max]`.
pub fn demand_multiplier_permille(
    free_cars: u32,
    recent_customers: u32,
    min_permille: u32,
    max_permille: u32,
) -> u32 {
    let customers = u64::from(recent_customers) + 1;
    let cars = u64::from(free_cars.max(1));
    let raw = customers * u64::from(NEUTRAL_PERMILLE) / cars;
    let raw = u32::try_from(raw).unwrap_or(u32::MAX);
    raw.clamp(min_permille, max_permille.max(min_permille))
}

/// A per-minute rate times a multiplier, to the nearest kopeck (halves up).
pub fn apply_multiplier(rate: Kopecks, permille: u32) -> Kopecks {
    let scaled = i128::from(rate.get()) * i128::from(permille) + 500;
    Kopecks(i64::try_from(scaled.div_euclid(1000)).unwrap_or(i64::MAX))
}

/// What waiting in a reservation costs: free minutes, then a rate per started minute, up to a
/// limit after which the reservation expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitingTariff {
    /// Minutes of waiting that cost nothing.
    pub free_minutes: u32,
    /// Per started minute of waiting after the free ones.
    pub kopecks_per_minute: Kopecks,
    /// Minutes after which the reservation expires (free ones included).
    pub max_minutes: u32,
}

/// Everything a customer is charged at: the trip tariff and the waiting tariff of a
/// reservation. A quote fixes both; a reservation carries them into its trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RentalTerms {
    /// Driving, parking and distance rates of the trip.
    pub tariff: Tariff,
    /// Free and paid waiting of a reservation.
    pub waiting: WaitingTariff,
}

impl RentalTerms {
    /// These terms with every per-minute rate multiplied by `permille`.
    pub fn multiplied(&self, permille: u32) -> RentalTerms {
        let mut terms = self.clone();
        terms.tariff.driving_kopecks_per_minute =
            apply_multiplier(self.tariff.driving_kopecks_per_minute, permille);
        terms.tariff.parking_kopecks_per_minute =
            apply_multiplier(self.tariff.parking_kopecks_per_minute, permille);
        terms.waiting.kopecks_per_minute =
            apply_multiplier(self.waiting.kopecks_per_minute, permille);
        terms
    }
}

#[cfg(test)]
mod tests {
    //! The multiplier's bounds and monotonicity over any observation, the grid, and rounding.

    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    const MIN: u32 = 800;
    const MAX: u32 = 2500;

    proptest! {
        #[test]
        fn the_multiplier_stays_within_its_bounds(
            free_cars in 0u32..100_000,
            recent in 0u32..100_000,
        ) {
            let m = demand_multiplier_permille(free_cars, recent, MIN, MAX);
            prop_assert!((MIN..=MAX).contains(&m), "{m}");
        }

        #[test]
        fn more_demand_never_lowers_the_multiplier(
            free_cars in 0u32..10_000,
            recent in 0u32..10_000,
            more in 0u32..10_000,
        ) {
            prop_assert!(
                demand_multiplier_permille(free_cars, recent + more, MIN, MAX)
                    >= demand_multiplier_permille(free_cars, recent, MIN, MAX)
            );
        }

        #[test]
        fn more_free_cars_never_raise_the_multiplier(
            free_cars in 0u32..10_000,
            recent in 0u32..10_000,
            more in 0u32..10_000,
        ) {
            prop_assert!(
                demand_multiplier_permille(free_cars + more, recent, MIN, MAX)
                    <= demand_multiplier_permille(free_cars, recent, MIN, MAX)
            );
        }

        #[test]
        fn a_multiplied_rate_is_the_exact_product_rounded_to_the_nearest_kopeck(
            rate in 0i64..1_000_000,
            permille in MIN..=MAX,
        ) {
            let exact = rate as f64 * f64::from(permille) / 1000.0;
            let got = apply_multiplier(Kopecks(rate), permille).get() as f64;
            prop_assert!((got - exact).abs() <= 0.5, "{rate} × {permille}‰ = {got}, exact {exact}");
        }
    }

    #[test]
    fn one_customer_per_free_car_is_neutral_and_the_extremes_are_clamped() {
        assert_eq!(demand_multiplier_permille(1, 0, MIN, MAX), 1000);
        assert_eq!(demand_multiplier_permille(4, 4, MIN, MAX), 1250);
        assert_eq!(demand_multiplier_permille(10, 0, MIN, MAX), MIN);
        assert_eq!(demand_multiplier_permille(0, 0, MIN, MAX), 1000);
        assert_eq!(demand_multiplier_permille(1, 9, MIN, MAX), MAX);
        assert_eq!(demand_multiplier_permille(3, 3, MIN, MAX), 1333);
    }

    #[test]
    fn halves_of_a_kopeck_round_up() {
        assert_eq!(apply_multiplier(Kopecks(990), 1250), Kopecks(1238)); // 1237.5
        assert_eq!(apply_multiplier(Kopecks(990), 1333), Kopecks(1320)); // 1319.67
        assert_eq!(apply_multiplier(Kopecks(350), 800), Kopecks(280));
        assert_eq!(apply_multiplier(Kopecks(1), 1500), Kopecks(2)); // 1.5
        assert_eq!(apply_multiplier(Kopecks(1), 1499), Kopecks(1));
    }

    #[test]
    fn the_grid_puts_nearby_points_in_one_cell_and_a_boundary_in_the_next() {
        let grid = ZoneGrid {
            lat_deg: 0.02,
            lon_deg: 0.03,
        };
        let tverskaya = grid.zone_of(&GeoPoint {
            lat: 55.7648,
            lon: 37.6056,
        });
        let pushkinskaya = grid.zone_of(&GeoPoint {
            lat: 55.7652,
            lon: 37.6040,
        });
        assert_eq!(tverskaya, pushkinskaya);
        assert_eq!(
            tverskaya,
            PricingZone {
                row: 2788,
                col: 1253
            }
        );
        assert_eq!(tverskaya.to_string(), "r2788c1253");
        let north = grid.zone_of(&GeoPoint {
            lat: 55.7801,
            lon: 37.6056,
        });
        assert_eq!(north.row, tverskaya.row + 1);
    }

    #[test]
    fn multiplying_terms_touches_only_the_per_minute_rates() {
        let terms = RentalTerms {
            tariff: Tariff {
                name: "standard".to_owned(),
                currency: Currency::Rub,
                driving_kopecks_per_minute: Kopecks(990),
                parking_kopecks_per_minute: Kopecks(350),
                included_km: 70,
                kopecks_per_extra_km: Kopecks(1200),
            },
            waiting: WaitingTariff {
                free_minutes: 15,
                kopecks_per_minute: Kopecks(300),
                max_minutes: 35,
            },
        };
        let surged = terms.multiplied(1250);
        assert_eq!(surged.tariff.driving_kopecks_per_minute, Kopecks(1238));
        assert_eq!(surged.tariff.parking_kopecks_per_minute, Kopecks(438));
        assert_eq!(surged.waiting.kopecks_per_minute, Kopecks(375));
        assert_eq!(surged.tariff.kopecks_per_extra_km, Kopecks(1200));
        assert_eq!(surged.tariff.included_km, 70);
        assert_eq!(
            (surged.waiting.free_minutes, surged.waiting.max_minutes),
            (15, 35)
        );
        assert_eq!(terms.multiplied(NEUTRAL_PERMILLE), terms);
    }
}
