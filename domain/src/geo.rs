//! Points and polygons on the Earth, with the little geometry the rules need: distance between
//! two points, and whether a polygon contains a point.

use crate::rejection::FieldError;
use serde::{Deserialize, Serialize};

/// Mean Earth radius used for distances, in metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS 84 position in degrees.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

impl GeoPoint {
    /// Parses a position; `lat_field` and `lon_field` name the request fields for errors.
    pub fn parse(lat_field: &str, lat: f64, lon_field: &str, lon: f64) -> Result<Self, FieldError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(FieldError::new(
                lat_field,
                "must be a latitude between -90 and 90",
            ));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(FieldError::new(
                lon_field,
                "must be a longitude between -180 and 180",
            ));
        }
        Ok(Self { lat, lon })
    }

    /// Great-circle distance to `other` in metres (haversine).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.lon - self.lon).to_radians();
        let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// A simple polygon given by its vertices in order (the last connects back to the first).
/// Areas of a city are small enough that treating degrees as a plane is exact to centimetres.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    /// The ring of vertices; at least three.
    pub vertices: Vec<GeoPoint>,
}

impl Polygon {
    /// Whether `point` lies inside the polygon (even-odd rule; points exactly on an edge may fall
    /// either way, which no rule depends on).
    pub fn contains(&self, point: &GeoPoint) -> bool {
        let vertices = &self.vertices;
        if vertices.len() < 3 {
            return false;
        }
        let mut inside = false;
        let mut previous = vertices[vertices.len() - 1];
        for &current in vertices {
            let crosses = (current.lat > point.lat) != (previous.lat > point.lat);
            if crosses {
                let lon_at_lat = current.lon
                    + (point.lat - current.lat) * (previous.lon - current.lon)
                        / (previous.lat - current.lat);
                if point.lon < lon_at_lat {
                    inside = !inside;
                }
            }
            previous = current;
        }
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    #[test]
    fn distance_between_kremlin_and_sheremetyevo_is_about_29_km() {
        let kremlin = p(55.7520, 37.6175);
        let svo = p(55.9726, 37.4146);
        let d = kremlin.distance_m(&svo);
        assert!((27_000.0..30_000.0).contains(&d), "{d}");
        assert_eq!(kremlin.distance_m(&kremlin), 0.0);
    }

    #[test]
    fn contains_inside_and_outside_a_concave_polygon() {
        // An L shape: the notch at the top right is outside.
        let l = Polygon {
            vertices: vec![
                p(0.0, 0.0),
                p(0.0, 2.0),
                p(1.0, 2.0),
                p(1.0, 1.0),
                p(2.0, 1.0),
                p(2.0, 0.0),
            ],
        };
        assert!(l.contains(&p(0.5, 0.5)));
        assert!(l.contains(&p(0.5, 1.5)));
        assert!(l.contains(&p(1.5, 0.5)));
        assert!(!l.contains(&p(1.5, 1.5)));
        assert!(!l.contains(&p(-0.1, 0.5)));
    }

    #[test]
    fn parse_names_the_bad_field() {
        assert_eq!(
            GeoPoint::parse("lat", 91.0, "lon", 0.0).unwrap_err().field,
            "lat"
        );
        assert_eq!(
            GeoPoint::parse("lat", 55.0, "lon", f64::INFINITY)
                .unwrap_err()
                .field,
            "lon"
        );
    }
}
