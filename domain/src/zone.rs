//! Where cars may be left. The operating area is data (loaded from fixtures by the binary), not
//! code; this module only knows how to ask it questions.

use crate::geo::{GeoPoint, Polygon};
use serde::{Deserialize, Serialize};

/// The area in which a trip may end: inside `boundary` and outside every forbidden zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatingArea {
    /// A name for people (`Moscow`).
    pub name: String,
    /// The outer boundary of the area.
    pub boundary: Polygon,
    /// Places inside the boundary where a trip may not end (closed territories, parks).
    #[serde(default)]
    pub forbidden: Vec<Polygon>,
}

impl OperatingArea {
    /// Whether a car standing at `point` may be handed back there.
    pub fn allows_ending_at(&self, point: &GeoPoint) -> bool {
        self.boundary.contains(point) && !self.forbidden.iter().any(|zone| zone.contains(point))
    }
}
