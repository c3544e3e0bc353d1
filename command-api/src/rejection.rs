//! The one place where each domain rejection becomes an HTTP status and a stable problem type.
//! Clients branch on the `type` URI (its last segment is `rule`); never change a rule's name.

use axum::http::StatusCode;
use domain::Rejection;
use http_edge::Problem;

/// The problem response for a rejection.
pub fn problem(rejection: &Rejection) -> Problem {
    use StatusCode as S;
    let (status, rule, title, field): (StatusCode, &str, &str, Option<&str>) = match rejection {
        Rejection::InvalidField(error) => {
            return Problem::invalid_field(error.field.clone(), rejection.to_string());
        }
        Rejection::AlreadyTaken { field, .. } => {
            return Problem::new(
                S::CONFLICT,
                "already-taken",
                "The value already belongs to someone else",
                rejection.to_string(),
            )
            .with_field(field.clone());
        }
        Rejection::CustomerAlreadyRegistered { .. } => (
            S::CONFLICT,
            "customer-already-registered",
            "The customer is already registered",
            None,
        ),
        Rejection::CustomerNotFound { .. } => {
            (S::NOT_FOUND, "customer-not-found", "No such customer", None)
        }
        Rejection::CustomerErased { .. } => (
            S::CONFLICT,
            "customer-erased",
            "The customer's personal data was erased",
            None,
        ),
        Rejection::VerificationUnchanged { .. } => (
            S::CONFLICT,
            "verification-unchanged",
            "The customer is already in that verification state",
            Some("decision"),
        ),
        Rejection::CustomerNotVerified { .. } => (
            S::CONFLICT,
            "customer-not-verified",
            "Only verified customers may rent",
            None,
        ),
        Rejection::CustomerBlocked { .. } => (
            S::CONFLICT,
            "customer-blocked",
            "The customer is blocked",
            None,
        ),
        Rejection::BlockUnchanged { .. } => (
            S::CONFLICT,
            "block-unchanged",
            "The block is already in that state",
            Some("reason"),
        ),
        Rejection::LicenceExpired { .. } => (
            S::CONFLICT,
            "licence-expired",
            "The driving licence has expired",
            Some("licence.expires_on"),
        ),
        Rejection::CustomerHasActiveTrip { .. } => (
            S::CONFLICT,
            "customer-has-active-trip",
            "The customer already has an active trip",
            None,
        ),
        Rejection::VehicleAlreadyAdded { .. } => (
            S::CONFLICT,
            "vehicle-already-added",
            "The vehicle is already in the fleet",
            None,
        ),
        Rejection::VehicleNotFound { .. } => (
            S::NOT_FOUND,
            "vehicle-not-found",
            "No such vehicle",
            Some("vehicle_id"),
        ),
        Rejection::VehicleNotAvailable { .. } => (
            S::CONFLICT,
            "vehicle-not-available",
            "The vehicle is not available",
            Some("vehicle_id"),
        ),
        Rejection::OdometerWentBackwards { .. } => (
            S::UNPROCESSABLE_ENTITY,
            "odometer-went-backwards",
            "The odometer reading is lower than the last one",
            Some("odometer_km"),
        ),
        Rejection::VehicleNotInTrip { .. } => (
            S::CONFLICT,
            "vehicle-not-in-trip",
            "The vehicle is not in this trip",
            None,
        ),
        Rejection::TripAlreadyStarted { .. } => (
            S::CONFLICT,
            "trip-already-started",
            "The trip has already started",
            None,
        ),
        Rejection::TripNotFound { .. } => (S::NOT_FOUND, "trip-not-found", "No such trip", None),
        Rejection::TripAlreadyEnded { .. } => (
            S::CONFLICT,
            "trip-already-ended",
            "The trip has already ended",
            None,
        ),
        Rejection::TripAlreadyParked { .. } => (
            S::CONFLICT,
            "trip-already-parked",
            "The trip is already parked",
            None,
        ),
        Rejection::TripNotParked { .. } => (
            S::CONFLICT,
            "trip-not-parked",
            "The trip is not parked",
            None,
        ),
        Rejection::VehicleOutsideOperatingZone { .. } => (
            S::CONFLICT,
            "vehicle-outside-operating-zone",
            "A trip can end only inside the operating zone, outside forbidden zones",
            None,
        ),
        Rejection::VehicleNotLocked { .. } => (
            S::CONFLICT,
            "vehicle-not-locked",
            "A trip can end only with the car locked",
            None,
        ),
        // --- money ---
        Rejection::ChargeNotFound { .. } => (
            S::NOT_FOUND,
            "charge-not-found",
            "No such charge on the account",
            None,
        ),
        Rejection::ChargeAlreadyAdded { .. } => (
            S::CONFLICT,
            "charge-already-added",
            "The charge is already on the account",
            None,
        ),
        Rejection::SourceAlreadyCharged { .. } => (
            S::CONFLICT,
            "source-already-charged",
            "This cause is already charged for this reason",
            None,
        ),
        Rejection::RefundExceedsRefundable { .. } => (
            S::CONFLICT,
            "refund-exceeds-refundable",
            "A refund may not exceed what may still be refunded of the charge",
            Some("amount_kopecks"),
        ),
        Rejection::NothingToWaive { .. } => (
            S::CONFLICT,
            "nothing-to-waive",
            "Nothing is owed on the charge",
            None,
        ),
        Rejection::PaymentDeclined { .. } => (
            S::PAYMENT_REQUIRED,
            "payment-declined",
            "The card was declined",
            None,
        ),
        Rejection::HoldReleased { .. } => (
            S::CONFLICT,
            "hold-released",
            "The hold for this start was released",
            None,
        ),
        Rejection::HoldTaken { .. } => (
            S::CONFLICT,
            "hold-taken",
            "The hold belongs to a trip",
            None,
        ),
        Rejection::PenaltyAlreadyIssued { .. } => (
            S::CONFLICT,
            "penalty-already-issued",
            "The penalty has already been issued",
            None,
        ),
        Rejection::FineAlreadyReceived { .. } => (
            S::CONFLICT,
            "fine-already-received",
            "The fine has already been received",
            None,
        ),
        Rejection::ResolutionNumberConflict { .. } => (
            S::CONFLICT,
            "resolution-number-conflict",
            "The resolution number was imported before with different details",
            Some("resolution_number"),
        ),
        Rejection::FineNotFound { .. } => (
            S::NOT_FOUND,
            "fine-not-found",
            "The fine does not exist",
            None,
        ),
        Rejection::FineNotOpen { .. } => (
            S::CONFLICT,
            "fine-not-open",
            "The fine has already been matched or assigned to the fleet",
            None,
        ),
        // --- people and fleet: KYC, companies, service tasks, damage reports ---
        Rejection::CustomerTooYoung { .. } => (
            S::CONFLICT,
            "customer-too-young",
            "The customer is younger than the minimum age to rent",
            Some("birth_date"),
        ),
        Rejection::DrivingExperienceTooShort { .. } => (
            S::CONFLICT,
            "driving-experience-too-short",
            "The customer has not held a licence long enough to rent",
            Some("licence.issued_on"),
        ),
        Rejection::CompanyAlreadyRegistered { .. } => (
            S::CONFLICT,
            "company-already-registered",
            "The company is already registered",
            None,
        ),
        Rejection::CompanyNotFound { .. } => (
            S::NOT_FOUND,
            "company-not-found",
            "No such company",
            Some("company_id"),
        ),
        Rejection::CustomerAlreadyEmployee { .. } => (
            S::CONFLICT,
            "customer-already-employee",
            "The customer is already an employee of this company",
            Some("customer_id"),
        ),
        Rejection::CustomerInAnotherCompany { .. } => (
            S::CONFLICT,
            "customer-in-another-company",
            "The customer is an employee of another company",
            Some("customer_id"),
        ),
        Rejection::CustomerNotEmployee { .. } => (
            S::CONFLICT,
            "customer-not-employee",
            "The customer is not an employee of this company",
            Some("customer_id"),
        ),
        Rejection::VehicleInUse { .. } => (
            S::CONFLICT,
            "vehicle-in-use",
            "A car in a trip or reserved cannot be sent to service",
            Some("vehicle_id"),
        ),
        Rejection::VehicleNotInService { .. } => (
            S::CONFLICT,
            "vehicle-not-in-service",
            "The car has no such open service task",
            None,
        ),
        Rejection::ServiceTaskAlreadyOpened { .. } => (
            S::CONFLICT,
            "service-task-already-opened",
            "The service task is already open",
            None,
        ),
        Rejection::ServiceTaskNotFound { .. } => (
            S::NOT_FOUND,
            "service-task-not-found",
            "No such service task",
            None,
        ),
        Rejection::ServiceTaskAlreadyAssigned { .. } => (
            S::CONFLICT,
            "service-task-already-assigned",
            "The service task is already assigned to this staff member",
            Some("staff_id"),
        ),
        Rejection::ServiceTaskNotAssigned { .. } => (
            S::CONFLICT,
            "service-task-not-assigned",
            "The service task must be assigned before it starts",
            None,
        ),
        Rejection::ServiceTaskAssignedToAnother { .. } => (
            S::FORBIDDEN,
            "service-task-assigned-to-another",
            "The service task is someone else's",
            None,
        ),
        Rejection::ServiceTaskAlreadyStarted { .. } => (
            S::CONFLICT,
            "service-task-already-started",
            "The service task has already started",
            None,
        ),
        Rejection::ServiceTaskNotStarted { .. } => (
            S::CONFLICT,
            "service-task-not-started",
            "The service task must be started before it is completed",
            None,
        ),
        Rejection::ServiceTaskAlreadyCompleted { .. } => (
            S::CONFLICT,
            "service-task-already-completed",
            "The service task is already completed",
            None,
        ),
        Rejection::DamageReportAlreadyFiled { .. } => (
            S::CONFLICT,
            "damage-report-already-filed",
            "The damage report has already been filed",
            None,
        ),
        Rejection::VehicleNotRentedByCustomer { .. } => (
            S::FORBIDDEN,
            "vehicle-not-rented-by-customer",
            "A customer may report damage only on a car they have or have just handed back",
            Some("vehicle_id"),
        ),
        // --- rental: quotes, reservations, zones ---
        Rejection::QuoteAlreadyIssued { .. } => (
            S::CONFLICT,
            "quote-already-issued",
            "The quote has already been issued",
            None,
        ),
        Rejection::QuoteNotFound { .. } => (
            S::NOT_FOUND,
            "quote-not-found",
            "No such quote",
            Some("quote_id"),
        ),
        Rejection::QuoteExpired { .. } => (
            S::CONFLICT,
            "quote-expired",
            "The quote has expired; ask for a new one",
            Some("quote_id"),
        ),
        Rejection::QuoteOfAnotherCustomer { .. } => (
            S::CONFLICT,
            "quote-of-another-customer",
            "The quote was issued to another customer",
            Some("quote_id"),
        ),
        Rejection::QuoteForAnotherVehicle { .. } => (
            S::CONFLICT,
            "quote-for-another-vehicle",
            "The quote prices another car",
            Some("quote_id"),
        ),
        Rejection::QuoteNotForReservation { .. } => (
            S::CONFLICT,
            "quote-not-for-reservation",
            "The reserved car keeps the reservation's terms; another quote does not apply",
            Some("quote_id"),
        ),
        Rejection::ReservationAlreadyMade { .. } => (
            S::CONFLICT,
            "reservation-already-made",
            "The reservation has already been made",
            None,
        ),
        Rejection::ReservationNotFound { .. } => (
            S::NOT_FOUND,
            "reservation-not-found",
            "No such reservation",
            None,
        ),
        Rejection::ReservationNotActive { .. } => (
            S::CONFLICT,
            "reservation-not-active",
            "The reservation has already ended",
            None,
        ),
        Rejection::ReservationExpired { .. } => (
            S::CONFLICT,
            "reservation-expired",
            "The reservation ran past its limit",
            None,
        ),
        Rejection::ReservationNotDue { .. } => (
            S::CONFLICT,
            "reservation-not-due",
            "The reservation has not reached its limit",
            None,
        ),
        Rejection::CustomerHasActiveReservation { .. } => (
            S::CONFLICT,
            "customer-has-active-reservation",
            "The customer already holds a reserved car",
            None,
        ),
        Rejection::VehicleNotReserved { .. } => (
            S::CONFLICT,
            "vehicle-not-reserved",
            "The vehicle is not held by this reservation",
            None,
        ),
    };
    let problem = Problem::new(status, rule, title, rejection.to_string());
    match field {
        Some(field) => problem.with_field(field),
        None => problem,
    }
}
