//! The longitude/latitude boxes that contain every point within a radius of a centre: the cheap
//! pre-filter an index can answer before the exact distance is computed.
//!
//! The boxes are exact for a sphere (not a flat-Earth approximation), so no car inside the
//! radius is ever left out, near the poles and across the antimeridian included.

use domain::geo::GeoPoint;

/// The Earth radius of the domain's haversine (`domain::geo`), so that distances shown here are
/// the ones the domain computes.
pub(crate) const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Slack added to each side, in degrees (about 0.1 mm): floating-point rounding must not drop a
/// car lying exactly on the radius. The exact distance filter follows anyway.
const SLACK_DEG: f64 = 1e-9;

/// A box in degrees, `min` ≤ `max` on both axes.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct LonLatBox {
    pub(crate) min_lon: f64,
    pub(crate) min_lat: f64,
    pub(crate) max_lon: f64,
    pub(crate) max_lat: f64,
}

impl LonLatBox {
    #[cfg(test)]
    fn contains(&self, point: GeoPoint) -> bool {
        (self.min_lon..=self.max_lon).contains(&point.lon)
            && (self.min_lat..=self.max_lat).contains(&point.lat)
    }
}

/// One box, or two when the circle crosses the antimeridian (±180°), that together contain every
/// point within `radius_m` of `center`.
pub(crate) fn bounding_boxes(center: GeoPoint, radius_m: f64) -> Vec<LonLatBox> {
    // The circle's angular radius; its latitude span is exactly ±that.
    let angle = radius_m / EARTH_RADIUS_M;
    let angle_deg = angle.to_degrees() + SLACK_DEG;
    let min_lat = center.lat - angle_deg;
    let max_lat = center.lat + angle_deg;
    if min_lat <= -90.0 || max_lat >= 90.0 {
        // The circle contains a pole: every longitude.
        return vec![LonLatBox {
            min_lon: -180.0,
            min_lat: min_lat.max(-90.0),
            max_lon: 180.0,
            max_lat: max_lat.min(90.0),
        }];
    }
    // The widest longitude a point of the circle reaches (the tangent meridians), exact on a
    // sphere: sin Δλ = sin δ / cos φ.
    let ratio = angle.sin() / center.lat.to_radians().cos();
    let half_width_deg = if ratio >= 1.0 {
        180.0
    } else {
        ratio.asin().to_degrees() + SLACK_DEG
    };
    let min_lon = center.lon - half_width_deg;
    let max_lon = center.lon + half_width_deg;
    let with_lon = |min_lon: f64, max_lon: f64| LonLatBox {
        min_lon,
        min_lat,
        max_lon,
        max_lat,
    };
    if max_lon - min_lon >= 360.0 {
        vec![with_lon(-180.0, 180.0)]
    } else if min_lon < -180.0 {
        vec![with_lon(min_lon + 360.0, 180.0), with_lon(-180.0, max_lon)]
    } else if max_lon > 180.0 {
        vec![with_lon(min_lon, 180.0), with_lon(-180.0, max_lon - 360.0)]
    } else {
        vec![with_lon(min_lon, max_lon)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The point `distance_m` from `from` on the initial bearing `bearing_deg` (the direct
    /// geodesic problem on a sphere), longitude normalised to −180..180.
    fn destination(from: GeoPoint, bearing_deg: f64, distance_m: f64) -> GeoPoint {
        let (lat1, lon1) = (from.lat.to_radians(), from.lon.to_radians());
        let (angle, bearing) = (distance_m / EARTH_RADIUS_M, bearing_deg.to_radians());
        let lat2 = (lat1.sin() * angle.cos() + lat1.cos() * angle.sin() * bearing.cos()).asin();
        let lon2 = lon1
            + (bearing.sin() * angle.sin() * lat1.cos())
                .atan2(angle.cos() - lat1.sin() * lat2.sin());
        let lon = (lon2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        GeoPoint {
            lat: lat2.to_degrees(),
            lon,
        }
    }

    proptest! {
        #[test]
        fn every_point_within_the_radius_is_in_a_box(
            lat in -89.9f64..=89.9,
            lon in -180.0f64..=180.0,
            radius_m in 1.0f64..=50_000.0,
            bearing_deg in 0.0f64..360.0,
            fraction in 0.0f64..=1.0,
        ) {
            let center = GeoPoint { lat, lon };
            let point = destination(center, bearing_deg, radius_m * fraction);
            let boxes = bounding_boxes(center, radius_m);
            prop_assert!(
                boxes.iter().any(|b| b.contains(point)),
                "{point:?} ({} m away) is outside {boxes:?}",
                center.distance_m(&point)
            );
        }
    }

    #[test]
    fn a_city_search_is_one_small_box() {
        let moscow = GeoPoint {
            lat: 55.75,
            lon: 37.62,
        };
        let boxes = bounding_boxes(moscow, 1_000.0);
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        // 1 km is about 0.009° of latitude and 0.016° of longitude at Moscow's latitude.
        assert!((b.max_lat - b.min_lat - 0.018).abs() < 0.001, "{b:?}");
        assert!((b.max_lon - b.min_lon - 0.032).abs() < 0.001, "{b:?}");
    }

    #[test]
    fn a_circle_across_the_antimeridian_is_split_in_two() {
        let boxes = bounding_boxes(
            GeoPoint {
                lat: 65.0,
                lon: 179.99,
            },
            5_000.0,
        );
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].max_lon, 180.0);
        assert_eq!(boxes[1].min_lon, -180.0);
    }

    #[test]
    fn a_circle_around_a_pole_spans_every_longitude() {
        let boxes = bounding_boxes(
            GeoPoint {
                lat: 89.9,
                lon: 10.0,
            },
            50_000.0,
        );
        assert_eq!(boxes.len(), 1);
        assert_eq!((boxes[0].min_lon, boxes[0].max_lon), (-180.0, 180.0));
        assert_eq!(boxes[0].max_lat, 90.0);
    }
}
