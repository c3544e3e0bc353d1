//! The one place where each domain rejection becomes a problem type (and so an HTTP status and a
//! stable `type` URI, from `http_edge::problems`' table). Clients branch on the `type` URI (its
//! last segment is `rule`); never change a rule's name.

use domain::Rejection;
use http_edge::{Problem, ProblemType};

/// The problem response for a rejection.
pub fn problem(rejection: &Rejection) -> Problem {
    use ProblemType as P;
    let (kind, field): (ProblemType, Option<&str>) = match rejection {
        Rejection::InvalidField(error) => {
            return Problem::invalid_field(error.field.clone(), rejection.to_string());
        }
        Rejection::AlreadyTaken { field, .. } => {
            return Problem::new(P::AlreadyTaken, rejection.to_string()).with_field(field.clone());
        }
        Rejection::CustomerAlreadyRegistered { .. } => (P::CustomerAlreadyRegistered, None),
        Rejection::CustomerNotFound { .. } => (P::CustomerNotFound, None),
        Rejection::CustomerErased { .. } => (P::CustomerErased, None),
        Rejection::VerificationUnchanged { .. } => (P::VerificationUnchanged, Some("decision")),
        Rejection::CustomerNotVerified { .. } => (P::CustomerNotVerified, None),
        Rejection::CustomerBlocked { .. } => (P::CustomerBlocked, None),
        Rejection::BlockUnchanged { .. } => (P::BlockUnchanged, Some("reason")),
        Rejection::LicenceExpired { .. } => (P::LicenceExpired, Some("licence.expires_on")),
        Rejection::CustomerHasActiveTrip { .. } => (P::CustomerHasActiveTrip, None),
        Rejection::VehicleAlreadyAdded { .. } => (P::VehicleAlreadyAdded, None),
        Rejection::VehicleNotFound { .. } => (P::VehicleNotFound, Some("vehicle_id")),
        Rejection::VehicleNotAvailable { .. } => (P::VehicleNotAvailable, Some("vehicle_id")),
        Rejection::OdometerWentBackwards { .. } => (P::OdometerWentBackwards, Some("odometer_km")),
        Rejection::VehicleNotInTrip { .. } => (P::VehicleNotInTrip, None),
        Rejection::TripAlreadyStarted { .. } => (P::TripAlreadyStarted, None),
        Rejection::TripNotFound { .. } => (P::TripNotFound, None),
        Rejection::TripAlreadyEnded { .. } => (P::TripAlreadyEnded, None),
        Rejection::TripAlreadyParked { .. } => (P::TripAlreadyParked, None),
        Rejection::TripNotParked { .. } => (P::TripNotParked, None),
        Rejection::VehicleOutsideOperatingZone { .. } => (P::VehicleOutsideOperatingZone, None),
        Rejection::VehicleNotLocked { .. } => (P::VehicleNotLocked, None),
        Rejection::ChargeNotFound { .. } => (P::ChargeNotFound, None),
        Rejection::ChargeAlreadyAdded { .. } => (P::ChargeAlreadyAdded, None),
        Rejection::SourceAlreadyCharged { .. } => (P::SourceAlreadyCharged, None),
        Rejection::RefundExceedsRefundable { .. } => {
            (P::RefundExceedsRefundable, Some("amount_kopecks"))
        }
        Rejection::NothingToWaive { .. } => (P::NothingToWaive, None),
        Rejection::PaymentDeclined { .. } => (P::PaymentDeclined, None),
        Rejection::HoldReleased { .. } => (P::HoldReleased, None),
        Rejection::HoldTaken { .. } => (P::HoldTaken, None),
        Rejection::PenaltyAlreadyIssued { .. } => (P::PenaltyAlreadyIssued, None),
        Rejection::FineAlreadyReceived { .. } => (P::FineAlreadyReceived, None),
        Rejection::ResolutionNumberConflict { .. } => {
            (P::ResolutionNumberConflict, Some("resolution_number"))
        }
        Rejection::FineNotFound { .. } => (P::FineNotFound, None),
        Rejection::FineNotOpen { .. } => (P::FineNotOpen, None),
        Rejection::CustomerTooYoung { .. } => (P::CustomerTooYoung, Some("birth_date")),
        Rejection::DrivingExperienceTooShort { .. } => {
            (P::DrivingExperienceTooShort, Some("licence.issued_on"))
        }
        Rejection::CompanyAlreadyRegistered { .. } => (P::CompanyAlreadyRegistered, None),
        Rejection::CompanyNotFound { .. } => (P::CompanyNotFound, Some("company_id")),
        Rejection::CustomerAlreadyEmployee { .. } => {
            (P::CustomerAlreadyEmployee, Some("customer_id"))
        }
        Rejection::CustomerInAnotherCompany { .. } => {
            (P::CustomerInAnotherCompany, Some("customer_id"))
        }
        Rejection::CustomerNotEmployee { .. } => (P::CustomerNotEmployee, Some("customer_id")),
        Rejection::VehicleInUse { .. } => (P::VehicleInUse, Some("vehicle_id")),
        Rejection::VehicleNotInService { .. } => (P::VehicleNotInService, None),
        Rejection::ServiceTaskAlreadyOpened { .. } => (P::ServiceTaskAlreadyOpened, None),
        Rejection::ServiceTaskNotFound { .. } => (P::ServiceTaskNotFound, None),
        Rejection::ServiceTaskAlreadyAssigned { .. } => {
            (P::ServiceTaskAlreadyAssigned, Some("staff_id"))
        }
        Rejection::ServiceTaskNotAssigned { .. } => (P::ServiceTaskNotAssigned, None),
        Rejection::ServiceTaskAssignedToAnother { .. } => (P::ServiceTaskAssignedToAnother, None),
        Rejection::ServiceTaskAlreadyStarted { .. } => (P::ServiceTaskAlreadyStarted, None),
        Rejection::ServiceTaskNotStarted { .. } => (P::ServiceTaskNotStarted, None),
        Rejection::ServiceTaskAlreadyCompleted { .. } => (P::ServiceTaskAlreadyCompleted, None),
        Rejection::DamageReportAlreadyFiled { .. } => (P::DamageReportAlreadyFiled, None),
        Rejection::VehicleNotRentedByCustomer { .. } => {
            (P::VehicleNotRentedByCustomer, Some("vehicle_id"))
        }
        Rejection::QuoteAlreadyIssued { .. } => (P::QuoteAlreadyIssued, None),
        Rejection::QuoteNotFound { .. } => (P::QuoteNotFound, Some("quote_id")),
        Rejection::QuoteExpired { .. } => (P::QuoteExpired, Some("quote_id")),
        Rejection::QuoteOfAnotherCustomer { .. } => (P::QuoteOfAnotherCustomer, Some("quote_id")),
        Rejection::QuoteForAnotherVehicle { .. } => (P::QuoteForAnotherVehicle, Some("quote_id")),
        Rejection::QuoteNotForReservation { .. } => (P::QuoteNotForReservation, Some("quote_id")),
        Rejection::ReservationAlreadyMade { .. } => (P::ReservationAlreadyMade, None),
        Rejection::ReservationNotFound { .. } => (P::ReservationNotFound, None),
        Rejection::ReservationNotActive { .. } => (P::ReservationNotActive, None),
        Rejection::ReservationExpired { .. } => (P::ReservationExpired, None),
        Rejection::ReservationNotDue { .. } => (P::ReservationNotDue, None),
        Rejection::CustomerHasActiveReservation { .. } => (P::CustomerHasActiveReservation, None),
        Rejection::VehicleNotReserved { .. } => (P::VehicleNotReserved, None),
    };
    let problem = Problem::new(kind, rejection.to_string());
    match field {
        Some(field) => problem.with_field(field),
        None => problem,
    }
}
