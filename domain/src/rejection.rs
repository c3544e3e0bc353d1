//! Why a command was refused. Rejections are values, one variant per business rule, so that the
//! API layer can map each to a stable problem type in exactly one place.

use crate::ids::{
    AccountId, ChargeId, CompanyId, CustomerId, DamageReportId, FineId, PenaltyId, QuoteId,
    ReservationId, ServiceTaskId, TripId, VehicleId,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Input that cannot be turned into a domain value, naming the offending field by its path in
/// the request (`licence.expires_on`, `lat`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Path of the field in the request body, dot-separated.
    pub field: String,
    /// What is wrong with it, for a person to read.
    pub message: String,
}

impl FieldError {
    /// A field error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A command refused by a business rule. Nothing is appended when a decider returns one.
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rejection {
    /// A value in the command is not acceptable.
    #[error("invalid input: {0}")]
    InvalidField(FieldError),

    /// A unique identifier (phone, e-mail, plate, VIN) already belongs to someone else.
    #[error("{field} {value} already belongs to {owner}")]
    AlreadyTaken {
        field: String,
        value: String,
        owner: String,
    },

    /// The customer id is already registered.
    #[error("customer {customer_id} is already registered")]
    CustomerAlreadyRegistered { customer_id: CustomerId },
    /// No customer with this id has registered.
    #[error("customer {customer_id} does not exist")]
    CustomerNotFound { customer_id: CustomerId },
    /// The customer's personal data was erased: nothing that needs it (documents, verification,
    /// renting, erasing again) can be done for them any more.
    #[error("customer {customer_id} was erased")]
    CustomerErased { customer_id: CustomerId },
    /// Support asked for the verification state the customer is already in.
    #[error("customer {customer_id} verification is already {status}")]
    VerificationUnchanged {
        customer_id: CustomerId,
        status: String,
    },
    /// Only verified customers may rent.
    #[error("customer {customer_id} is not verified")]
    CustomerNotVerified { customer_id: CustomerId },
    /// The customer has at least one active block.
    #[error("customer {customer_id} is blocked ({reasons})")]
    CustomerBlocked {
        customer_id: CustomerId,
        reasons: String,
    },
    /// Block asked for a reason that is already active, or unblock for one that is not.
    #[error("customer {customer_id} block '{reason}' is already in that state")]
    BlockUnchanged {
        customer_id: CustomerId,
        reason: String,
    },
    /// The driving licence has expired (or expires before the date in question).
    #[error("the driving licence of customer {customer_id} expired on {expired_on}")]
    LicenceExpired {
        customer_id: CustomerId,
        expired_on: chrono::NaiveDate,
    },
    /// A customer may hold one active trip at a time.
    #[error("customer {customer_id} already has active trip {trip_id}")]
    CustomerHasActiveTrip {
        customer_id: CustomerId,
        trip_id: TripId,
    },

    /// The vehicle id is already in the fleet.
    #[error("vehicle {vehicle_id} is already in the fleet")]
    VehicleAlreadyAdded { vehicle_id: VehicleId },
    /// No vehicle with this id is in the fleet.
    #[error("vehicle {vehicle_id} does not exist")]
    VehicleNotFound { vehicle_id: VehicleId },
    /// The vehicle cannot be rented in its current status.
    #[error("vehicle {vehicle_id} is not available ({status})")]
    VehicleNotAvailable {
        vehicle_id: VehicleId,
        status: String,
    },
    /// A telemetry report whose odometer reads less than the last one.
    #[error("odometer of vehicle {vehicle_id} went back from {last_m} m to {reported_m} m")]
    OdometerWentBackwards {
        vehicle_id: VehicleId,
        last_m: u64,
        reported_m: u64,
    },
    /// The vehicle is not in the trip being ended.
    #[error("vehicle {vehicle_id} is not in trip {trip_id}")]
    VehicleNotInTrip {
        vehicle_id: VehicleId,
        trip_id: TripId,
    },

    /// The trip id was already used for a started trip.
    #[error("trip {trip_id} has already started")]
    TripAlreadyStarted { trip_id: TripId },
    /// No trip with this id was started.
    #[error("trip {trip_id} does not exist")]
    TripNotFound { trip_id: TripId },
    /// The trip has ended; it takes no more commands.
    #[error("trip {trip_id} has already ended")]
    TripAlreadyEnded { trip_id: TripId },
    /// Park asked of a trip that is already parked.
    #[error("trip {trip_id} is already parked")]
    TripAlreadyParked { trip_id: TripId },
    /// Resume asked of a trip that is driving, not parked.
    #[error("trip {trip_id} is not parked")]
    TripNotParked { trip_id: TripId },
    /// A trip may end only with the car inside the operating area.
    #[error("vehicle {vehicle_id} is outside the operating zone")]
    VehicleOutsideOperatingZone { vehicle_id: VehicleId },
    /// A trip may end only with the car locked.
    #[error("vehicle {vehicle_id} doors are not locked")]
    VehicleNotLocked { vehicle_id: VehicleId },

    // --- money ---
    /// No charge with this id is on the account.
    #[error("account {account_id} has no charge {charge_id}")]
    ChargeNotFound {
        account_id: AccountId,
        charge_id: ChargeId,
    },
    /// The charge id is already on the account.
    #[error("charge {charge_id} is already on the account")]
    ChargeAlreadyAdded { charge_id: ChargeId },
    /// The account already carries a charge for this source and reason: charging it again would
    /// bill the customer twice for one thing.
    #[error("{source_kind} {source_id} is already charged as {reason} by charge {charge_id}")]
    SourceAlreadyCharged {
        source_kind: String,
        source_id: uuid::Uuid,
        reason: String,
        charge_id: ChargeId,
    },
    /// A refund larger than what may still be refunded of the charge.
    #[error(
        "charge {charge_id}: a refund of {requested_kopecks} kopecks exceeds the {refundable_kopecks} kopecks that may still be refunded"
    )]
    RefundExceedsRefundable {
        charge_id: ChargeId,
        requested_kopecks: i64,
        refundable_kopecks: i64,
    },
    /// A waiver of a charge with nothing left owing.
    #[error("charge {charge_id} has nothing left to waive")]
    NothingToWaive { charge_id: ChargeId },
    /// The payment gateway would not hold money on the customer's card for the trip.
    #[error("the card was declined: {reason}")]
    PaymentDeclined { reason: String },
    /// A start retried with the key of a hold that was let go (no trip took it in time): a new
    /// key makes a new hold.
    #[error("the card hold made under {key} was released")]
    HoldReleased { key: String },
    /// Letting go of a hold that a trip took.
    #[error("the card hold made under {key} belongs to a trip")]
    HoldTaken { key: String },
    /// The penalty id was already used.
    #[error("penalty {penalty_id} has already been issued")]
    PenaltyAlreadyIssued { penalty_id: PenaltyId },
    /// The fine id was already used for a fine with another resolution number.
    #[error("fine {fine_id} has already been received")]
    FineAlreadyReceived { fine_id: FineId },
    /// A resolution number already imported, now with different details: the feed contradicts
    /// itself, and a person must look before either version is billed.
    #[error(
        "resolution {resolution_number} was already imported as fine {fine_id} with different details"
    )]
    ResolutionNumberConflict {
        resolution_number: String,
        fine_id: FineId,
    },
    /// No fine with this id has been received.
    #[error("fine {fine_id} does not exist")]
    FineNotFound { fine_id: FineId },
    /// The fine was already matched or assigned to the fleet.
    #[error("fine {fine_id} is already {status}")]
    FineNotOpen { fine_id: FineId, status: String },
    // --- people and fleet: KYC, companies, service tasks, damage reports ---
    /// Approval refused: the customer is younger than the KYC policy's minimum age.
    #[error("customer {customer_id} is {age_years}, younger than {min_age_years}")]
    CustomerTooYoung {
        customer_id: CustomerId,
        age_years: u32,
        min_age_years: u32,
    },
    /// Approval refused: the licence was issued too recently.
    #[error(
        "customer {customer_id} has driven for {experience_years} full years, less than {min_experience_years}"
    )]
    DrivingExperienceTooShort {
        customer_id: CustomerId,
        experience_years: u32,
        min_experience_years: u32,
    },
    /// The company id is already registered.
    #[error("company {company_id} is already registered")]
    CompanyAlreadyRegistered { company_id: CompanyId },
    /// No company with this id has registered.
    #[error("company {company_id} does not exist")]
    CompanyNotFound { company_id: CompanyId },
    /// The customer is already an employee of this company.
    #[error("customer {customer_id} is already an employee of company {company_id}")]
    CustomerAlreadyEmployee {
        customer_id: CustomerId,
        company_id: CompanyId,
    },
    /// A customer belongs to at most one company; this one belongs to `company_id`.
    #[error("customer {customer_id} is an employee of another company, {company_id}")]
    CustomerInAnotherCompany {
        customer_id: CustomerId,
        company_id: CompanyId,
    },
    /// The customer is not an employee of this company.
    #[error("customer {customer_id} is not an employee of company {company_id}")]
    CustomerNotEmployee {
        customer_id: CustomerId,
        company_id: CompanyId,
    },
    /// A car in a trip (or reserved) is someone's: it cannot be sent to service.
    #[error("vehicle {vehicle_id} is in use ({status})")]
    VehicleInUse {
        vehicle_id: VehicleId,
        status: String,
    },
    /// The car has no open service task with this id (its stream and the task's disagree).
    #[error("vehicle {vehicle_id} has no open service task {task_id}")]
    VehicleNotInService {
        vehicle_id: VehicleId,
        task_id: ServiceTaskId,
    },
    /// The service task id was already used.
    #[error("service task {task_id} is already open")]
    ServiceTaskAlreadyOpened { task_id: ServiceTaskId },
    /// No service task with this id was opened.
    #[error("service task {task_id} does not exist")]
    ServiceTaskNotFound { task_id: ServiceTaskId },
    /// The task is already assigned to this staff member.
    #[error("service task {task_id} is already assigned to {staff_id}")]
    ServiceTaskAlreadyAssigned {
        task_id: ServiceTaskId,
        staff_id: String,
    },
    /// The task must be assigned before it is started.
    #[error("service task {task_id} is not assigned to anyone")]
    ServiceTaskNotAssigned { task_id: ServiceTaskId },
    /// Only the staff member the task is assigned to may start or complete it.
    #[error("service task {task_id} is assigned to {staff_id}")]
    ServiceTaskAssignedToAnother {
        task_id: ServiceTaskId,
        staff_id: String,
    },
    /// The task is already being worked on.
    #[error("service task {task_id} has already started")]
    ServiceTaskAlreadyStarted { task_id: ServiceTaskId },
    /// The task must be started before it is completed.
    #[error("service task {task_id} has not started")]
    ServiceTaskNotStarted { task_id: ServiceTaskId },
    /// The task is done; it takes no more commands.
    #[error("service task {task_id} is already completed")]
    ServiceTaskAlreadyCompleted { task_id: ServiceTaskId },
    /// The damage report id was already used.
    #[error("damage report {report_id} has already been filed")]
    DamageReportAlreadyFiled { report_id: DamageReportId },
    /// A customer may report damage only on a car they have in a trip or have just returned.
    #[error("customer {customer_id} has no current or just-ended trip in vehicle {vehicle_id}")]
    VehicleNotRentedByCustomer {
        vehicle_id: VehicleId,
        customer_id: CustomerId,
    },
    // --- rental: quotes, reservations, zones ---
    /// The quote id was already used for an issued quote.
    #[error("quote {quote_id} has already been issued")]
    QuoteAlreadyIssued { quote_id: QuoteId },
    /// No quote with this id was issued.
    #[error("quote {quote_id} does not exist")]
    QuoteNotFound { quote_id: QuoteId },
    /// A quote is valid for a few minutes only.
    #[error("quote {quote_id} expired at {expired_at}")]
    QuoteExpired {
        quote_id: QuoteId,
        expired_at: DateTime<Utc>,
    },
    /// A quote is personal: only the customer it was issued to may use it.
    #[error("quote {quote_id} was issued to another customer")]
    QuoteOfAnotherCustomer { quote_id: QuoteId },
    /// A quote prices one car only.
    #[error("quote {quote_id} is for vehicle {quoted_vehicle_id}, not {vehicle_id}")]
    QuoteForAnotherVehicle {
        quote_id: QuoteId,
        quoted_vehicle_id: VehicleId,
        vehicle_id: VehicleId,
    },
    /// A trip that turns a reservation into a trip keeps the reservation's terms; another quote
    /// cannot replace them.
    #[error("reservation {reservation_id} has its own terms; quote {quote_id} does not apply")]
    QuoteNotForReservation {
        quote_id: QuoteId,
        reservation_id: ReservationId,
    },
    /// The reservation id was already used.
    #[error("reservation {reservation_id} has already been made")]
    ReservationAlreadyMade { reservation_id: ReservationId },
    /// No reservation with this id was made.
    #[error("reservation {reservation_id} does not exist")]
    ReservationNotFound { reservation_id: ReservationId },
    /// The reservation was converted, cancelled or expired; it takes no more commands.
    #[error("reservation {reservation_id} is already {status}")]
    ReservationNotActive {
        reservation_id: ReservationId,
        status: String,
    },
    /// The reservation ran past its limit; only its expiry may be recorded now.
    #[error("reservation {reservation_id} expired at {expired_at}")]
    ReservationExpired {
        reservation_id: ReservationId,
        expired_at: DateTime<Utc>,
    },
    /// Expiry asked before the reservation's limit.
    #[error("reservation {reservation_id} runs until {expires_at}")]
    ReservationNotDue {
        reservation_id: ReservationId,
        expires_at: DateTime<Utc>,
    },
    /// A customer may hold one car at a time, by a trip or a reservation.
    #[error("customer {customer_id} already holds reservation {reservation_id}")]
    CustomerHasActiveReservation {
        customer_id: CustomerId,
        reservation_id: ReservationId,
    },
    /// The car is not held by this reservation.
    #[error("vehicle {vehicle_id} is not held by reservation {reservation_id}")]
    VehicleNotReserved {
        vehicle_id: VehicleId,
        reservation_id: ReservationId,
    },
}

impl From<FieldError> for Rejection {
    fn from(error: FieldError) -> Self {
        Rejection::InvalidField(error)
    }
}
