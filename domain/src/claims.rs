//! Exclusive claims: facts that at most one aggregate may hold at a time — one active trip per
//! car and per customer, one customer per phone number or e-mail, one car per plate or VIN, one
//! fine per resolution number.
//! car and per customer, one reservation per car, one car held (by a trip or a reservation) per
//! customer, one customer per phone number or e-mail, one car per plate or VIN.
//!
//! The domain names the claims an event takes or gives up; the event store enforces them inside
//! the append transaction, so two concurrent commands cannot both win.

use crate::company::CompanyEvent;
use crate::customer::CustomerEvent;
use crate::fine::FineEvent;
use crate::ids::{CustomerId, VehicleId};
use crate::rejection::Rejection;
use crate::vehicle::VehicleEvent;

/// One exclusive fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The customer is in a trip.
    CustomerActiveTrip(CustomerId),
    /// The car is in a trip.
    VehicleActiveTrip(VehicleId),
    /// A customer registered with this phone number.
    Phone(String),
    /// A customer registered with this e-mail address.
    Email(String),
    /// A car in the fleet has this plate.
    Plate(String),
    /// A car in the fleet has this VIN.
    Vin(String),
    /// A fine with this resolution number was imported.
    FineResolution(String),
    /// A company registered with this INN (tax id).
    CompanyInn(String),
    /// The customer holds a car, by a trip or by a reservation: one at a time. Trips and
    /// reservations both take it, so a customer cannot reserve one car while starting a trip in
    /// another, however the two requests interleave.
    CustomerHoldsCar(CustomerId),
    /// The car is held by a reservation.
    VehicleReservation(VehicleId),
}

impl Claim {
    /// The claim's key as the store keeps it.
    pub fn key(&self) -> String {
        match self {
            Claim::CustomerActiveTrip(id) => format!("active-trip:customer:{id}"),
            Claim::VehicleActiveTrip(id) => format!("active-trip:vehicle:{id}"),
            Claim::Phone(phone) => format!("customer-phone:{phone}"),
            Claim::Email(email) => format!("customer-email:{email}"),
            Claim::Plate(plate) => format!("vehicle-plate:{plate}"),
            Claim::Vin(vin) => format!("vehicle-vin:{vin}"),
            Claim::FineResolution(number) => format!("fine-resolution:{number}"),
            Claim::CompanyInn(inn) => format!("company-inn:{inn}"),
            Claim::CustomerHoldsCar(id) => format!("holds-car:customer:{id}"),
            Claim::VehicleReservation(id) => format!("active-reservation:vehicle:{id}"),
        }
    }

    /// Reads a key back.
    pub fn parse(key: &str) -> Option<Claim> {
        let (kind, value) = key.rsplit_once(':').filter(|(_, v)| !v.is_empty())?;
        Some(match kind {
            "active-trip:customer" => Claim::CustomerActiveTrip(value.parse().ok()?),
            "active-trip:vehicle" => Claim::VehicleActiveTrip(value.parse().ok()?),
            "customer-phone" => Claim::Phone(value.to_owned()),
            "customer-email" => Claim::Email(value.to_owned()),
            "vehicle-plate" => Claim::Plate(value.to_owned()),
            "vehicle-vin" => Claim::Vin(value.to_owned()),
            "fine-resolution" => Claim::FineResolution(value.to_owned()),
            "company-inn" => Claim::CompanyInn(value.to_owned()),
            "holds-car:customer" => Claim::CustomerHoldsCar(value.parse().ok()?),
            "active-reservation:vehicle" => Claim::VehicleReservation(value.parse().ok()?),
            _ => return None,
        })
    }

    /// The rejection for a command that lost this claim to another holder, or `None` when the
    /// caller should load fresh state and decide again (the state then explains the refusal).
    pub fn when_held(&self) -> Option<Rejection> {
        let taken = |field: &str, value: &str, owner: &str| Rejection::AlreadyTaken {
            field: field.to_owned(),
            value: value.to_owned(),
            owner: owner.to_owned(),
        };
        match self {
            Claim::CustomerActiveTrip(_)
            | Claim::VehicleActiveTrip(_)
            | Claim::CustomerHoldsCar(_)
            | Claim::VehicleReservation(_) => None,
            Claim::Phone(phone) => Some(taken("phone", phone, "another customer")),
            Claim::Email(email) => Some(taken("email", email, "another customer")),
            Claim::Plate(plate) => Some(taken("plate", plate, "another car")),
            Claim::Vin(vin) => Some(taken("vin", vin, "another car")),
            // The import decides again against the fine holding the number: the same fine is an
            // idempotent repeat, other details a conflict.
            Claim::FineResolution(_) => None,
            Claim::CompanyInn(inn) => Some(taken("inn", inn, "another company")),
        }
    }

    /// The claims a customer event takes.
    pub fn acquired_by_customer(event: &CustomerEvent) -> Vec<Claim> {
        match event {
            CustomerEvent::CustomerRegistered { profile, .. } => vec![
                Claim::Phone(profile.phone.as_str().to_owned()),
                Claim::Email(profile.email.as_str().to_owned()),
            ],
            _ => Vec::new(),
        }
    }

    /// The claims erasing a customer gives up: their phone and e-mail, read from their profile
    /// before the key is destroyed, so the numbers are free again and no claim names them.
    pub fn released_by_erasure(profile: &crate::customer::CustomerProfile) -> Vec<Claim> {
        vec![
            Claim::Phone(profile.phone.as_str().to_owned()),
            Claim::Email(profile.email.as_str().to_owned()),
        ]
    }

    /// The claims a company event takes.
    pub fn acquired_by_company(event: &CompanyEvent) -> Vec<Claim> {
        match event {
            CompanyEvent::CompanyRegistered { profile, .. } => {
                vec![Claim::CompanyInn(profile.inn.as_str().to_owned())]
            }
            _ => Vec::new(),
        }
    }

    /// The claims a vehicle event takes.
    pub fn acquired_by_vehicle(event: &VehicleEvent) -> Vec<Claim> {
        match event {
            VehicleEvent::VehicleAddedToFleet { details, .. } => vec![
                Claim::Plate(details.plate.as_str().to_owned()),
                Claim::Vin(details.vin.as_str().to_owned()),
            ],
            _ => Vec::new(),
        }
    }

    /// The claims a fine event takes.
    pub fn acquired_by_fine(event: &FineEvent) -> Vec<Claim> {
        match event {
            FineEvent::FineReceived { details, .. } => vec![Claim::FineResolution(
                details.resolution_number.as_str().to_owned(),
            )],
            FineEvent::FineMatched { .. } | FineEvent::FineAssignedToFleet { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn keys_round_trip() {
        let claims = [
            Claim::CustomerActiveTrip(CustomerId(Uuid::from_u128(1))),
            Claim::VehicleActiveTrip(VehicleId(Uuid::from_u128(2))),
            Claim::Phone("+79161234567".into()),
            Claim::Email("ivan@mail.ru".into()),
            Claim::Plate("А123ВС777".into()),
            Claim::Vin("XW8ZZZ61ZKG012345".into()),
            Claim::FineResolution("18810177231125000017".into()),
            Claim::CompanyInn("7707083893".into()),
            Claim::CustomerHoldsCar(CustomerId(Uuid::from_u128(3))),
            Claim::VehicleReservation(VehicleId(Uuid::from_u128(4))),
        ];
        for claim in claims {
            assert_eq!(
                Claim::parse(&claim.key()),
                Some(claim.clone()),
                "{}",
                claim.key()
            );
        }
        assert_eq!(Claim::parse("unknown:1"), None);
        assert_eq!(Claim::parse("customer-phone:"), None);
    }

    #[test]
    fn a_held_identifier_is_a_rejection_naming_the_field_but_a_held_trip_means_reload() {
        let held = Claim::Phone("+79161234567".into()).when_held();
        assert!(
            matches!(held, Some(Rejection::AlreadyTaken { ref field, .. }) if field == "phone")
        );
        assert_eq!(
            Claim::VehicleActiveTrip(VehicleId(Uuid::from_u128(2))).when_held(),
            None
        );
    }
}
