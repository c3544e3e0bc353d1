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
    };
    let problem = Problem::new(status, rule, title, rejection.to_string());
    match field {
        Some(field) => problem.with_field(field),
        None => problem,
    }
}
