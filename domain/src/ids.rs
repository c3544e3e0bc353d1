//! Identifiers of aggregates and how they name their event streams (`<category>-<uuid>`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! aggregate_id {
    ($(#[$doc:meta])* $name:ident, $category:literal) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The stream category, the part of the stream id before the first `-`.
            pub const CATEGORY: &'static str = $category;

            /// The id of this aggregate's event stream: `<category>-<uuid>`.
            pub fn stream_id(&self) -> String {
                format!("{}-{}", $category, self.0)
            }

            /// Reads an id back out of a stream id of this category.
            pub fn from_stream_id(stream_id: &str) -> Option<Self> {
                let rest = stream_id.strip_prefix(concat!($category, "-"))?;
                Uuid::parse_str(rest).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

aggregate_id!(
    /// A customer of the operator (a person who rents cars).
    CustomerId,
    "customer"
);
aggregate_id!(
    /// A car in the fleet.
    VehicleId,
    "vehicle"
);
aggregate_id!(
    /// One rental: from taking the car to handing it back.
    TripId,
    "trip"
);
aggregate_id!(
    /// A traffic fine imported from the fine feed (camera or officer resolution) for a car.
    FineId,
    "fine"
);
aggregate_id!(
    /// A penalty support issued against a trip (smoking, dirty car, …).
    PenaltyId,
    "penalty"
);
aggregate_id!(
    /// A business customer whose employees' trips are billed to it.
    CompanyId,
    "company"
);
aggregate_id!(
    /// A job fleet staff do on a car (refuel, wash, relocate, repair).
    ServiceTaskId,
    "service_task"
);
aggregate_id!(
    /// A report of damage found on a car, with its photos.
    DamageReportId,
    "damage_report"
);
aggregate_id!(
    /// A price offered to one customer for one car, valid for a few minutes.
    QuoteId,
    "quote"
);
aggregate_id!(
    /// A car held for one customer until they start a trip in it, cancel, or time runs out.
    ReservationId,
    "reservation"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_round_trip() {
        let id = TripId(Uuid::from_u128(7));
        let stream = id.stream_id();
        assert_eq!(stream, "trip-00000000-0000-0000-0000-000000000007");
        assert_eq!(TripId::from_stream_id(&stream), Some(id));
        assert_eq!(VehicleId::from_stream_id(&stream), None);
    }
}
