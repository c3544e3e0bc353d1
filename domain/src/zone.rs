//! Where cars may be left. The operating area is data (loaded from fixtures by the binary), not
//! code; this module only knows how to ask it questions.
//!
//! A trip may end inside the boundary and outside every forbidden zone, or inside a surcharge
//! zone (an airport), which may lie outside the boundary: the operator serves it for a fee. A
//! forbidden zone wins over a surcharge zone that overlaps it.

use crate::geo::{GeoPoint, Polygon};
use crate::money::Kopecks;
use serde::{Deserialize, Serialize};

/// The area in which a trip may end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatingArea {
    /// A name for people (`Moscow`).
    pub name: String,
    /// The outer boundary of the area.
    pub boundary: Polygon,
    /// Places inside the boundary where a trip may not end (closed territories, parks).
    #[serde(default)]
    pub forbidden: Vec<Polygon>,
    /// Places where a trip may end for an extra fee, inside or outside the boundary.
    #[serde(default)]
    pub surcharge: Vec<SurchargeZone>,
}

/// A place where ending a trip costs a fixed extra amount.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurchargeZone {
    /// A name for people and for the price breakdown (`Sheremetyevo`).
    pub name: String,
    /// Added to the price of a trip that ends inside `area`.
    pub surcharge_kopecks: Kopecks,
    /// Where it applies.
    pub area: Polygon,
}

/// Why a trip may not end at a point.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EndingRefused {
    /// Outside the boundary and outside every surcharge zone.
    OutsideArea,
    /// Inside a forbidden zone.
    Forbidden,
}

/// Where a trip may end, and what it costs extra there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneSurcharge {
    /// The surcharge zone's name.
    pub zone: String,
    /// Its fee.
    pub amount_kopecks: Kopecks,
}

impl OperatingArea {
    /// Whether a car standing at `point` may be handed back there.
    pub fn allows_ending_at(&self, point: &GeoPoint) -> bool {
        self.ending_at(point).is_ok()
    }

    /// Whether a trip may end at `point`, and the surcharge it then costs, if any. When
    /// surcharge zones overlap, the first listed applies.
    pub fn ending_at(&self, point: &GeoPoint) -> Result<Option<ZoneSurcharge>, EndingRefused> {
        if self.forbidden.iter().any(|zone| zone.contains(point)) {
            return Err(EndingRefused::Forbidden);
        }
        let surcharge = self
            .surcharge
            .iter()
            .find(|zone| zone.area.contains(point))
            .map(|zone| ZoneSurcharge {
                zone: zone.name.clone(),
                amount_kopecks: zone.surcharge_kopecks,
            });
        if surcharge.is_none() && !self.boundary.contains(point) {
            return Err(EndingRefused::OutsideArea);
        }
        Ok(surcharge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    fn square(south: f64, west: f64, size: f64) -> Polygon {
        Polygon {
            vertices: vec![
                p(south, west),
                p(south + size, west),
                p(south + size, west + size),
                p(south, west + size),
            ],
        }
    }

    fn area() -> OperatingArea {
        OperatingArea {
            name: "test".to_owned(),
            boundary: square(0.0, 0.0, 10.0),
            forbidden: vec![square(1.0, 1.0, 1.0), square(20.0, 20.0, 1.0)],
            surcharge: vec![
                SurchargeZone {
                    name: "inside".to_owned(),
                    surcharge_kopecks: Kopecks(100),
                    area: square(5.0, 5.0, 1.0),
                },
                SurchargeZone {
                    name: "outside".to_owned(),
                    surcharge_kopecks: Kopecks(200),
                    area: square(20.0, 20.0, 2.0),
                },
            ],
        }
    }

    #[test]
    fn inside_the_boundary_ends_without_a_surcharge() {
        assert_eq!(area().ending_at(&p(3.0, 3.0)), Ok(None));
    }

    #[test]
    fn a_surcharge_zone_charges_its_fee_inside_or_outside_the_boundary() {
        let area = area();
        assert_eq!(
            area.ending_at(&p(5.5, 5.5))
                .unwrap()
                .map(|s| s.amount_kopecks),
            Some(Kopecks(100))
        );
        assert_eq!(
            area.ending_at(&p(21.5, 21.5)).unwrap().map(|s| s.zone),
            Some("outside".to_owned())
        );
    }

    #[test]
    fn outside_every_zone_and_inside_a_forbidden_one_are_refused() {
        let area = area();
        assert_eq!(
            area.ending_at(&p(15.0, 15.0)),
            Err(EndingRefused::OutsideArea)
        );
        assert_eq!(area.ending_at(&p(1.5, 1.5)), Err(EndingRefused::Forbidden));
        // A forbidden zone inside a surcharge zone wins.
        assert_eq!(
            area.ending_at(&p(20.5, 20.5)),
            Err(EndingRefused::Forbidden)
        );
    }
}
