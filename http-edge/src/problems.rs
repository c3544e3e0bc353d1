//! Every problem type the HTTP APIs (and the NATS entry points) answer with, in one table: its
//! stable name (the last segment of the `type` URI, which clients branch on), its HTTP status and
//! its title. A problem is made only from a [`ProblemType`], so no route can invent a status or a
//! title of its own, and a name can never mean two things. Never rename an entry: clients match
//! on the name.

use axum::http::StatusCode;

/// The base of every problem type URI; the last segment is the rule's stable name.
pub const PROBLEM_BASE: &str = "https://velka.dev/problems/";

macro_rules! problem_types {
    ($( $(#[$doc:meta])* $variant:ident = ($status:ident, $slug:literal, $title:literal), )*) => {
        /// A kind of problem: see the module documentation.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum ProblemType {
            $( $(#[$doc])* $variant, )*
        }

        impl ProblemType {
            /// Every problem type, in the table's order.
            pub const ALL: &'static [ProblemType] = &[ $( ProblemType::$variant, )* ];

            /// The HTTP status it is answered with.
            pub fn status(self) -> StatusCode {
                match self { $( Self::$variant => StatusCode::$status, )* }
            }

            /// Its stable name: the last segment of the `type` URI.
            pub fn slug(self) -> &'static str {
                match self { $( Self::$variant => $slug, )* }
            }

            /// A short summary, the same for every occurrence.
            pub fn title(self) -> &'static str {
                match self { $( Self::$variant => $title, )* }
            }
        }
    };
}

problem_types! {
    /// No valid bearer token.
    Unauthorized = (UNAUTHORIZED, "unauthorized", "A valid bearer token is required"),
    /// The caller's role may not do this, or the object is someone else's.
    Forbidden = (FORBIDDEN, "forbidden", "Not allowed"),
    /// The body does not parse as the route's JSON.
    MalformedBody = (BAD_REQUEST, "malformed-body", "The request body is not valid JSON of the expected shape"),
    /// The query string does not parse.
    MalformedQuery = (BAD_REQUEST, "malformed-query", "The query string cannot be read"),
    /// A NATS message that is not a request Velka can read.
    MalformedMessage = (BAD_REQUEST, "malformed-message", "The NATS message cannot be read"),
    /// The body is not `application/json`.
    UnsupportedMediaType = (UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "The body must be JSON"),
    /// A field's value breaks a rule of its type.
    InvalidField = (UNPROCESSABLE_ENTITY, "invalid-field", "A field has an invalid value"),
    /// The `Idempotency-Key` header is not 1 to 255 visible ASCII characters.
    InvalidIdempotencyKey = (BAD_REQUEST, "invalid-idempotency-key", "The Idempotency-Key header is not acceptable"),
    /// A key reused for another request than the one it was first used for.
    IdempotencyKeyReused = (UNPROCESSABLE_ENTITY, "idempotency-key-reused", "The Idempotency-Key was used for a different request"),
    /// The command kept losing races with concurrent changes; retry.
    ConcurrencyConflict = (CONFLICT, "concurrency-conflict", "Too many concurrent changes"),
    /// No route has this path.
    RouteNotFound = (NOT_FOUND, "route-not-found", "No such route"),
    /// The route exists but not for this method.
    MethodNotAllowed = (METHOD_NOT_ALLOWED, "method-not-allowed", "The route does not take this method"),
    /// A NATS command name that is no route's operation id.
    UnknownCommand = (NOT_FOUND, "unknown-command", "No such command"),
    /// No such object, of a kind without a rule of its own.
    NotFound = (NOT_FOUND, "not-found", "Not found"),
    /// No events were ever appended to the stream.
    StreamNotFound = (NOT_FOUND, "stream-not-found", "No such stream"),
    /// No trip had the car at that moment.
    NoHolderAtTime = (NOT_FOUND, "no-holder-at-time", "Nobody had the car then"),
    /// More requests are in flight than the server admits; retry after `Retry-After`.
    Overloaded = (SERVICE_UNAVAILABLE, "overloaded", "The server is at capacity"),
    /// A dependency (the database) is unavailable; retry later.
    Unavailable = (SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
    /// Something failed on the server's side; it is logged.
    Internal = (INTERNAL_SERVER_ERROR, "internal", "Internal error"),
    /// No hold could be made on the card; retry with the same `Idempotency-Key`.
    PaymentUnavailable = (SERVICE_UNAVAILABLE, "payment-unavailable", "The payment gateway is not answering"),
    /// A read model a command observes has not caught up yet; retry shortly.
    ReadModelBehind = (SERVICE_UNAVAILABLE, "read-model-behind", "Who had the car is not known yet"),
    /// Only a manual clock (`VELKA_CLOCK=manual`) can be moved.
    ClockNotManual = (CONFLICT, "clock-not-manual", "The clock is the real time"),
    /// A unique value (phone, e-mail, plate, VIN, INN) another holds.
    AlreadyTaken = (CONFLICT, "already-taken", "The value already belongs to someone else"),
    /// The domain's `Rejection::CustomerAlreadyRegistered`.
    CustomerAlreadyRegistered = (CONFLICT, "customer-already-registered", "The customer is already registered"),
    /// The domain's `Rejection::CustomerNotFound`.
    CustomerNotFound = (NOT_FOUND, "customer-not-found", "No such customer"),
    /// The domain's `Rejection::CustomerErased`.
    CustomerErased = (CONFLICT, "customer-erased", "The customer's personal data was erased"),
    /// The domain's `Rejection::VerificationUnchanged`.
    VerificationUnchanged = (CONFLICT, "verification-unchanged", "The customer is already in that verification state"),
    /// The domain's `Rejection::CustomerNotVerified`.
    CustomerNotVerified = (CONFLICT, "customer-not-verified", "Only verified customers may rent"),
    /// The domain's `Rejection::CustomerBlocked`.
    CustomerBlocked = (CONFLICT, "customer-blocked", "The customer is blocked"),
    /// The domain's `Rejection::BlockUnchanged`.
    BlockUnchanged = (CONFLICT, "block-unchanged", "The block is already in that state"),
    /// The domain's `Rejection::LicenceExpired`.
    LicenceExpired = (CONFLICT, "licence-expired", "The driving licence has expired"),
    /// The domain's `Rejection::CustomerHasActiveTrip`.
    CustomerHasActiveTrip = (CONFLICT, "customer-has-active-trip", "The customer already has an active trip"),
    /// The domain's `Rejection::VehicleAlreadyAdded`.
    VehicleAlreadyAdded = (CONFLICT, "vehicle-already-added", "The vehicle is already in the fleet"),
    /// The domain's `Rejection::VehicleNotFound`.
    VehicleNotFound = (NOT_FOUND, "vehicle-not-found", "No such vehicle"),
    /// The domain's `Rejection::VehicleNotAvailable`.
    VehicleNotAvailable = (CONFLICT, "vehicle-not-available", "The vehicle is not available"),
    /// The domain's `Rejection::OdometerWentBackwards`.
    OdometerWentBackwards = (UNPROCESSABLE_ENTITY, "odometer-went-backwards", "The odometer reading is lower than the last one"),
    /// The domain's `Rejection::VehicleNotInTrip`.
    VehicleNotInTrip = (CONFLICT, "vehicle-not-in-trip", "The vehicle is not in this trip"),
    /// The domain's `Rejection::TripAlreadyStarted`.
    TripAlreadyStarted = (CONFLICT, "trip-already-started", "The trip has already started"),
    /// The domain's `Rejection::TripNotFound`.
    TripNotFound = (NOT_FOUND, "trip-not-found", "No such trip"),
    /// The domain's `Rejection::TripAlreadyEnded`.
    TripAlreadyEnded = (CONFLICT, "trip-already-ended", "The trip has already ended"),
    /// The domain's `Rejection::TripAlreadyParked`.
    TripAlreadyParked = (CONFLICT, "trip-already-parked", "The trip is already parked"),
    /// The domain's `Rejection::TripNotParked`.
    TripNotParked = (CONFLICT, "trip-not-parked", "The trip is not parked"),
    /// The domain's `Rejection::VehicleOutsideOperatingZone`.
    VehicleOutsideOperatingZone = (CONFLICT, "vehicle-outside-operating-zone", "A trip can end only inside the operating zone, outside forbidden zones"),
    /// The domain's `Rejection::VehicleNotLocked`.
    VehicleNotLocked = (CONFLICT, "vehicle-not-locked", "A trip can end only with the car locked"),
    /// The domain's `Rejection::ChargeNotFound`.
    ChargeNotFound = (NOT_FOUND, "charge-not-found", "No such charge on the account"),
    /// The domain's `Rejection::ChargeAlreadyAdded`.
    ChargeAlreadyAdded = (CONFLICT, "charge-already-added", "The charge is already on the account"),
    /// The domain's `Rejection::SourceAlreadyCharged`.
    SourceAlreadyCharged = (CONFLICT, "source-already-charged", "This cause is already charged for this reason"),
    /// The domain's `Rejection::RefundExceedsRefundable`.
    RefundExceedsRefundable = (CONFLICT, "refund-exceeds-refundable", "A refund may not exceed what may still be refunded of the charge"),
    /// The domain's `Rejection::NothingToWaive`.
    NothingToWaive = (CONFLICT, "nothing-to-waive", "Nothing is owed on the charge"),
    /// The domain's `Rejection::PaymentDeclined`.
    PaymentDeclined = (PAYMENT_REQUIRED, "payment-declined", "The card was declined"),
    /// The domain's `Rejection::HoldReleased`.
    HoldReleased = (CONFLICT, "hold-released", "The hold for this start was released"),
    /// The domain's `Rejection::HoldTaken`.
    HoldTaken = (CONFLICT, "hold-taken", "The hold belongs to a trip"),
    /// The domain's `Rejection::PenaltyAlreadyIssued`.
    PenaltyAlreadyIssued = (CONFLICT, "penalty-already-issued", "The penalty has already been issued"),
    /// The domain's `Rejection::FineAlreadyReceived`.
    FineAlreadyReceived = (CONFLICT, "fine-already-received", "The fine has already been received"),
    /// The domain's `Rejection::ResolutionNumberConflict`.
    ResolutionNumberConflict = (CONFLICT, "resolution-number-conflict", "The resolution number was imported before with different details"),
    /// The domain's `Rejection::FineNotFound`.
    FineNotFound = (NOT_FOUND, "fine-not-found", "The fine does not exist"),
    /// The domain's `Rejection::FineNotOpen`.
    FineNotOpen = (CONFLICT, "fine-not-open", "The fine has already been matched or assigned to the fleet"),
    /// The domain's `Rejection::CustomerTooYoung`.
    CustomerTooYoung = (CONFLICT, "customer-too-young", "The customer is younger than the minimum age to rent"),
    /// The domain's `Rejection::DrivingExperienceTooShort`.
    DrivingExperienceTooShort = (CONFLICT, "driving-experience-too-short", "The customer has not held a licence long enough to rent"),
    /// The domain's `Rejection::CompanyAlreadyRegistered`.
    CompanyAlreadyRegistered = (CONFLICT, "company-already-registered", "The company is already registered"),
    /// The domain's `Rejection::CompanyNotFound`.
    CompanyNotFound = (NOT_FOUND, "company-not-found", "No such company"),
    /// The domain's `Rejection::CustomerAlreadyEmployee`.
    CustomerAlreadyEmployee = (CONFLICT, "customer-already-employee", "The customer is already an employee of this company"),
    /// The domain's `Rejection::CustomerInAnotherCompany`.
    CustomerInAnotherCompany = (CONFLICT, "customer-in-another-company", "The customer is an employee of another company"),
    /// The domain's `Rejection::CustomerNotEmployee`.
    CustomerNotEmployee = (CONFLICT, "customer-not-employee", "The customer is not an employee of this company"),
    /// The domain's `Rejection::VehicleInUse`.
    VehicleInUse = (CONFLICT, "vehicle-in-use", "A car in a trip or reserved cannot be sent to service"),
    /// The domain's `Rejection::VehicleNotInService`.
    VehicleNotInService = (CONFLICT, "vehicle-not-in-service", "The car has no such open service task"),
    /// The domain's `Rejection::ServiceTaskAlreadyOpened`.
    ServiceTaskAlreadyOpened = (CONFLICT, "service-task-already-opened", "The service task is already open"),
    /// The domain's `Rejection::ServiceTaskNotFound`.
    ServiceTaskNotFound = (NOT_FOUND, "service-task-not-found", "No such service task"),
    /// The domain's `Rejection::ServiceTaskAlreadyAssigned`.
    ServiceTaskAlreadyAssigned = (CONFLICT, "service-task-already-assigned", "The service task is already assigned to this staff member"),
    /// The domain's `Rejection::ServiceTaskNotAssigned`.
    ServiceTaskNotAssigned = (CONFLICT, "service-task-not-assigned", "The service task must be assigned before it starts"),
    /// The domain's `Rejection::ServiceTaskAssignedToAnother`.
    ServiceTaskAssignedToAnother = (FORBIDDEN, "service-task-assigned-to-another", "The service task is someone else's"),
    /// The domain's `Rejection::ServiceTaskAlreadyStarted`.
    ServiceTaskAlreadyStarted = (CONFLICT, "service-task-already-started", "The service task has already started"),
    /// The domain's `Rejection::ServiceTaskNotStarted`.
    ServiceTaskNotStarted = (CONFLICT, "service-task-not-started", "The service task must be started before it is completed"),
    /// The domain's `Rejection::ServiceTaskAlreadyCompleted`.
    ServiceTaskAlreadyCompleted = (CONFLICT, "service-task-already-completed", "The service task is already completed"),
    /// The domain's `Rejection::DamageReportAlreadyFiled`.
    DamageReportAlreadyFiled = (CONFLICT, "damage-report-already-filed", "The damage report has already been filed"),
    /// The domain's `Rejection::VehicleNotRentedByCustomer`.
    VehicleNotRentedByCustomer = (FORBIDDEN, "vehicle-not-rented-by-customer", "A customer may report damage only on a car they have or have just handed back"),
    /// The domain's `Rejection::QuoteAlreadyIssued`.
    QuoteAlreadyIssued = (CONFLICT, "quote-already-issued", "The quote has already been issued"),
    /// The domain's `Rejection::QuoteNotFound`.
    QuoteNotFound = (NOT_FOUND, "quote-not-found", "No such quote"),
    /// The domain's `Rejection::QuoteExpired`.
    QuoteExpired = (CONFLICT, "quote-expired", "The quote has expired; ask for a new one"),
    /// The domain's `Rejection::QuoteOfAnotherCustomer`.
    QuoteOfAnotherCustomer = (CONFLICT, "quote-of-another-customer", "The quote was issued to another customer"),
    /// The domain's `Rejection::QuoteForAnotherVehicle`.
    QuoteForAnotherVehicle = (CONFLICT, "quote-for-another-vehicle", "The quote prices another car"),
    /// The domain's `Rejection::QuoteNotForReservation`.
    QuoteNotForReservation = (CONFLICT, "quote-not-for-reservation", "The reserved car keeps the reservation's terms; another quote does not apply"),
    /// The domain's `Rejection::ReservationAlreadyMade`.
    ReservationAlreadyMade = (CONFLICT, "reservation-already-made", "The reservation has already been made"),
    /// The domain's `Rejection::ReservationNotFound`.
    ReservationNotFound = (NOT_FOUND, "reservation-not-found", "No such reservation"),
    /// The domain's `Rejection::ReservationNotActive`.
    ReservationNotActive = (CONFLICT, "reservation-not-active", "The reservation has already ended"),
    /// The domain's `Rejection::ReservationExpired`.
    ReservationExpired = (CONFLICT, "reservation-expired", "The reservation ran past its limit"),
    /// The domain's `Rejection::ReservationNotDue`.
    ReservationNotDue = (CONFLICT, "reservation-not-due", "The reservation has not reached its limit"),
    /// The domain's `Rejection::CustomerHasActiveReservation`.
    CustomerHasActiveReservation = (CONFLICT, "customer-has-active-reservation", "The customer already holds a reserved car"),
    /// The domain's `Rejection::VehicleNotReserved`.
    VehicleNotReserved = (CONFLICT, "vehicle-not-reserved", "The vehicle is not held by this reservation"),
}

impl ProblemType {
    /// The `type` URI: `https://velka.dev/problems/<slug>`.
    pub fn uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }

    /// The problem type with this stable name.
    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.slug() == slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_name_is_unique_kebab_case_and_reads_back() {
        let mut seen = BTreeSet::new();
        for kind in ProblemType::ALL {
            assert!(seen.insert(kind.slug()), "{} twice", kind.slug());
            assert!(
                kind.slug()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                kind.slug()
            );
            assert_eq!(ProblemType::from_slug(kind.slug()), Some(*kind));
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
            assert!(!kind.title().is_empty());
        }
        assert_eq!(ProblemType::from_slug("no-such-problem"), None);
    }
}
