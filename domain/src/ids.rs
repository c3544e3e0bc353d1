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

/// Who pays: the owner of an account.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountId {
    /// A person paying for their own trips.
    Customer(CustomerId),
    /// A B2B company paying for its employees' trips.
    Company(CompanyId),
}

impl AccountId {
    /// The stream category of accounts.
    pub const CATEGORY: &'static str = "account";

    /// The account's event stream: `account-<customer uuid>` or `account-company-<uuid>`.
    pub fn stream_id(&self) -> String {
        match self {
            AccountId::Customer(customer_id) => format!("account-{}", customer_id.0),
            AccountId::Company(company_id) => format!("account-company-{}", company_id.0),
        }
    }

    /// Reads an account id back out of a stream id.
    pub fn from_stream_id(stream_id: &str) -> Option<Self> {
        let rest = stream_id.strip_prefix("account-")?;
        match rest.strip_prefix("company-") {
            Some(company) => Uuid::parse_str(company)
                .ok()
                .map(|id| AccountId::Company(CompanyId(id))),
            None => Uuid::parse_str(rest)
                .ok()
                .map(|id| AccountId::Customer(CustomerId(id))),
        }
    }

    /// The customer whose own account this is, if it is a customer's.
    pub fn customer(&self) -> Option<CustomerId> {
        match self {
            AccountId::Customer(customer_id) => Some(*customer_id),
            AccountId::Company(_) => None,
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountId::Customer(customer_id) => write!(f, "customer:{customer_id}"),
            AccountId::Company(company_id) => write!(f, "company:{company_id}"),
        }
    }
}

/// Text that is not an account id.
#[derive(Debug, thiserror::Error)]
#[error("not an account id (expected customer:<uuid> or company:<uuid>): {0:?}")]
pub struct NotAnAccountId(String);

impl FromStr for AccountId {
    type Err = NotAnAccountId;
    fn from_str(s: &str) -> Result<Self, NotAnAccountId> {
        let invalid = || NotAnAccountId(s.to_owned());
        let (kind, id) = s.split_once(':').ok_or_else(invalid)?;
        let id = Uuid::parse_str(id).map_err(|_| invalid())?;
        match kind {
            "customer" => Ok(AccountId::Customer(CustomerId(id))),
            "company" => Ok(AccountId::Company(CompanyId(id))),
            _ => Err(invalid()),
        }
    }
}

/// Stored as its text, `customer:<uuid>`: one column, one JSON string, whatever the payer.
impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! plain_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

plain_id!(
    /// One charge on an account. Not a stream of its own: a charge lives in its account's stream.
    ChargeId
);
plain_id!(
    /// One refund of (part of) a charge.
    RefundId
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
