//! Given / when / then for deciders, and the fixed people, cars, times and places the tests
//! share.
//!
//! A scenario folds the given events with [`Decider::fold`], decides the command and records
//! `{given, when, then}` as one serializable value, so an `insta` snapshot reads as the rule it
//! tests and a diff shows exactly which fact changed. Everything is fixed (times parsed from
//! text, ids from small numbers): snapshots never depend on the clock or on randomness.

use crate::customer::{CustomerContext, CustomerEvent, CustomerProfile, KycPolicy};
use crate::decider::Decider;
use crate::geo::{GeoPoint, Polygon};
use crate::ids::{CompanyId, CustomerId, DamageReportId, ServiceTaskId, TripId, VehicleId};
use crate::ids::{QuoteId, ReservationId};
use crate::money::{Currency, Kopecks};
use crate::pricing::{DemandObservation, PricingPolicy, RentalTerms, WaitingTariff, ZoneGrid};
use crate::quote::{Quote, QuoteCommand, QuoteContext, QuoteEvent};
use crate::rejection::Rejection;
use crate::reservation::{Reservation, ReservationCommand, ReservationContext, ReservationEvent};
use crate::trip::{Tariff, Trip, TripCommand, TripContext, TripEvent, TripStart};
use crate::value::{
    Email, FuelPercent, Licence, ModelName, OdometerM, PersonName, Phone, Plate, Vin,
};
use crate::vehicle::{Telemetry, VehicleContext, VehicleDetails, VehicleEvent};
use crate::zone::{OperatingArea, SurchargeZone};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The harness.

/// Starts a scenario from an aggregate's history: `Customer::given([...]).when(cmd, ctx).then()`.
pub(crate) trait Scenarios: Decider + Sized {
    /// The aggregate's past, oldest first.
    fn given(events: impl IntoIterator<Item = Self::Event>) -> Given<Self> {
        Given {
            events: events.into_iter().collect(),
        }
    }
}

impl<D: Decider> Scenarios for D {}

/// A history, waiting for a command.
pub(crate) struct Given<D: Decider> {
    events: Vec<D::Event>,
}

impl<D: Decider> Given<D> {
    /// The command to decide, and the context it is decided in.
    pub(crate) fn when(self, command: D::Command, context: D::Context) -> When<D> {
        When {
            given: self.events,
            command,
            context,
        }
    }
}

/// A history and a command, ready to be decided.
pub(crate) struct When<D: Decider> {
    given: Vec<D::Event>,
    command: D::Command,
    context: D::Context,
}

impl<D: Decider> When<D>
where
    D::Context: Addressed,
{
    /// Folds the history, decides the command and records what happened.
    pub(crate) fn then(self) -> Scenario<D::Event, D::Command> {
        let state = D::fold(&self.given);
        let then = match D::decide(&state, &self.command, &self.context) {
            Ok(events) => Then::Events(events),
            Err(rejection) => Then::Rejected(rejection),
        };
        Scenario {
            given: self.given,
            when: WhenRecord {
                at: self.context.now(),
                stream: self.context.stream_id(),
                command: self.command,
            },
            then,
        }
    }
}

/// One decision as the snapshot shows it: the history, the command, and its events or its
/// rejection.
#[derive(Debug, Serialize)]
pub(crate) struct Scenario<E, C> {
    pub(crate) given: Vec<E>,
    pub(crate) when: WhenRecord<C>,
    pub(crate) then: Then<E>,
}

impl<E, C> Scenario<E, C> {
    /// The events decided; panics (failing the test) if the command was rejected.
    pub(crate) fn events(&self) -> &[E] {
        match &self.then {
            Then::Events(events) => events,
            Then::Rejected(rejection) => panic!("expected events, got rejection {rejection:?}"),
        }
    }

    /// The rejection; panics (failing the test) if the command was accepted.
    pub(crate) fn rejection(&self) -> &Rejection {
        match &self.then {
            Then::Rejected(rejection) => rejection,
            Then::Events(_) => panic!("expected a rejection, got events"),
        }
    }
}

/// The command with when and to which stream it was given.
#[derive(Debug, Serialize)]
pub(crate) struct WhenRecord<C> {
    pub(crate) at: DateTime<Utc>,
    pub(crate) stream: String,
    #[serde(flatten)]
    pub(crate) command: C,
}

/// What came of a command.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Then<E> {
    /// Accepted: the events to append (possibly none).
    Events(Vec<E>),
    /// Refused: nothing is appended.
    Rejected(Rejection),
}

/// What a scenario shows of a decider's context: the stream decided and the time.
pub(crate) trait Addressed {
    fn stream_id(&self) -> String;
    fn now(&self) -> DateTime<Utc>;
}

impl Addressed for CustomerContext {
    fn stream_id(&self) -> String {
        self.customer_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

impl Addressed for VehicleContext {
    fn stream_id(&self) -> String {
        self.vehicle_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

impl Addressed for TripContext {
    fn stream_id(&self) -> String {
        self.trip_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

impl Addressed for crate::company::CompanyContext {
    fn stream_id(&self) -> String {
        self.company_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}
impl Addressed for QuoteContext {
    fn stream_id(&self) -> String {
        self.quote_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

impl Addressed for crate::service_task::ServiceTaskContext {
    fn stream_id(&self) -> String {
        self.task_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

impl Addressed for crate::damage::DamageReportContext {
    fn stream_id(&self) -> String {
        self.report_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}
impl Addressed for ReservationContext {
    fn stream_id(&self) -> String {
        self.reservation_id.stream_id()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed facts.

/// A time from RFC 3339 text (`2026-11-25T10:00:00Z`).
pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().unwrap()
}

/// A day (`2026-11-25`).
pub(crate) fn day(iso: &str) -> NaiveDate {
    iso.parse().unwrap()
}

/// Ivan, the customer most tests are about. Customers are `…0101`, `…0102`; cars `…0201`,
/// `…0202`; trips `…0301`, `…0302`, so an id in a snapshot says what it is.
pub(crate) const IVAN: CustomerId = CustomerId(Uuid::from_u128(0x101));
/// Maria, a second customer.
pub(crate) const MARIA: CustomerId = CustomerId(Uuid::from_u128(0x102));
/// A Kia Rio.
pub(crate) const KIA: VehicleId = VehicleId(Uuid::from_u128(0x201));
/// A Škoda Octavia.
pub(crate) const SKODA: VehicleId = VehicleId(Uuid::from_u128(0x202));
/// The trip most tests are about.
pub(crate) const TRIP_1: TripId = TripId(Uuid::from_u128(0x301));
/// Another trip.
pub(crate) const TRIP_2: TripId = TripId(Uuid::from_u128(0x302));
/// The quote most tests are about (quotes are `…0401`, reservations `…0501`).
pub(crate) const QUOTE_1: QuoteId = QuoteId(Uuid::from_u128(0x401));
/// Another quote.
pub(crate) const QUOTE_2: QuoteId = QuoteId(Uuid::from_u128(0x402));
/// The reservation most tests are about.
pub(crate) const RESERVATION_1: ReservationId = ReservationId(Uuid::from_u128(0x501));
/// Another reservation.
pub(crate) const RESERVATION_2: ReservationId = ReservationId(Uuid::from_u128(0x502));

/// The refuel task a trip's end opens when the tank is low. Service tasks are `…0401`,
/// `…0402`; companies `…0501`; damage reports `…0601`.
pub(crate) const REFUEL_TASK: ServiceTaskId = ServiceTaskId(Uuid::from_u128(0x401));
/// A service task fleet staff open by hand.
pub(crate) const WASH_TASK: ServiceTaskId = ServiceTaskId(Uuid::from_u128(0x402));
/// Romashka LLC, a business customer.
pub(crate) const ROMASHKA: CompanyId = CompanyId(Uuid::from_u128(0x501));
/// Another company.
pub(crate) const LUTIK: CompanyId = CompanyId(Uuid::from_u128(0x502));
/// A damage report.
pub(crate) const REPORT_1: DamageReportId = DamageReportId(Uuid::from_u128(0x601));

/// When customers registered.
pub(crate) const REGISTERED_AT: &str = "2026-11-01T09:00:00Z";
/// When support verified them.
pub(crate) const VERIFIED_AT: &str = "2026-11-02T12:00:00Z";
/// When cars joined the fleet.
pub(crate) const ADDED_AT: &str = "2026-11-20T08:00:00Z";
/// "Now" for most commands.
pub(crate) const NOW: &str = "2026-11-25T10:00:00Z";

/// A customer's context at `now`.
pub(crate) fn customer_context(customer_id: CustomerId, now: &str) -> CustomerContext {
    CustomerContext {
        customer_id,
        now: at(now),
        kyc: kyc_policy(),
    }
}

/// The KYC rules of the Moscow fixture: 21 years old, 2 years of driving.
pub(crate) fn kyc_policy() -> KycPolicy {
    KycPolicy {
        min_age_years: 21,
        min_driving_experience_years: 2,
    }
}

/// The fleet rules of the fixture: a refuel task below 20 %, damage reports up to 30 minutes
/// after a trip.
pub(crate) fn fleet_policy() -> crate::fleet::FleetPolicy {
    crate::fleet::FleetPolicy {
        low_fuel_percent: 20,
        damage_report_window_s: 1800,
    }
}

/// A vehicle's context at `now`.
pub(crate) fn vehicle_context(vehicle_id: VehicleId, now: &str) -> VehicleContext {
    VehicleContext {
        vehicle_id,
        now: at(now),
    }
}

/// A trip's context at `now`.
pub(crate) fn trip_context(trip_id: TripId, now: &str) -> TripContext {
    TripContext {
        trip_id,
        now: at(now),
    }
}

/// A quote's context at `now`.
pub(crate) fn quote_context(quote_id: QuoteId, now: &str) -> QuoteContext {
    QuoteContext {
        quote_id,
        now: at(now),
    }
}

/// A reservation's context at `now`.
pub(crate) fn reservation_context(reservation_id: ReservationId, now: &str) -> ReservationContext {
    ReservationContext {
        reservation_id,
        now: at(now),
    }
}

/// A licence valid until the given day.
pub(crate) fn licence_until(expires_on: &str) -> Licence {
    Licence::parse(
        "licence",
        "77 12 345678",
        day("2015-06-01"),
        day(expires_on),
    )
    .unwrap()
}

/// An adult's profile with a licence valid until 2030.
pub(crate) fn profile(customer_id: CustomerId) -> CustomerProfile {
    let (name, phone, email) = if customer_id == MARIA {
        ("Maria Sokolova", "+79167654321", "maria@example.ru")
    } else {
        ("Ivan Petrov", "+79161234567", "ivan@example.ru")
    };
    CustomerProfile {
        customer_id,
        name: PersonName::parse("name", name).unwrap(),
        phone: Phone::parse("phone", phone).unwrap(),
        email: Email::parse("email", email).unwrap(),
        birth_date: day("1990-05-17"),
        licence: licence_until("2030-06-01"),
    }
}

/// The customer registered with `profile`.
pub(crate) fn registered_with(profile: CustomerProfile) -> CustomerEvent {
    CustomerEvent::CustomerRegistered {
        profile,
        registered_at: at(REGISTERED_AT),
    }
}

/// The customer registered with the standard profile.
pub(crate) fn registered(customer_id: CustomerId) -> CustomerEvent {
    registered_with(profile(customer_id))
}

/// Support verified the customer.
pub(crate) fn verified(customer_id: CustomerId) -> CustomerEvent {
    CustomerEvent::CustomerVerified {
        customer_id,
        verified_at: at(VERIFIED_AT),
    }
}

/// A registered, verified customer with no blocks: one who may rent.
pub(crate) fn verified_customer(customer_id: CustomerId) -> Vec<CustomerEvent> {
    vec![registered(customer_id), verified(customer_id)]
}

/// Red Square: where cars stand unless a test moves them.
pub(crate) fn red_square() -> GeoPoint {
    GeoPoint {
        lat: 55.7539,
        lon: 37.6208,
    }
}

/// A car's registration data.
pub(crate) fn details(vehicle_id: VehicleId) -> VehicleDetails {
    let (plate, vin, model) = if vehicle_id == SKODA {
        ("В456ОР799", "TMBJJ7NE5L0123456", "Škoda Octavia")
    } else {
        ("А123ВС777", "XW8ZZZ61ZKG012345", "Kia Rio")
    };
    VehicleDetails {
        vehicle_id,
        plate: Plate::parse("plate", plate).unwrap(),
        vin: Vin::parse("vin", vin).unwrap(),
        model: ModelName::parse("model", model).unwrap(),
    }
}

/// A fuel level.
pub(crate) fn fuel(percent: u8) -> FuelPercent {
    FuelPercent::parse("fuel_percent", f64::from(percent)).unwrap()
}

/// The odometer reading every car joins the fleet with: 12,345 km.
pub(crate) const START_ODOMETER_M: u64 = 12_345_000;

/// The car joined the fleet on Red Square, 80% fuel, at 12,345 km.
pub(crate) fn added(vehicle_id: VehicleId) -> VehicleEvent {
    added_with(details(vehicle_id))
}

/// A car with these details joined the fleet on Red Square, 80% fuel, at 12,345 km.
pub(crate) fn added_with(details: VehicleDetails) -> VehicleEvent {
    VehicleEvent::VehicleAddedToFleet {
        details,
        position: red_square(),
        fuel_percent: fuel(80),
        odometer_m: OdometerM::from_m(START_ODOMETER_M),
        added_at: at(ADDED_AT),
    }
}

/// A telemetry reading.
pub(crate) fn reading(
    position: GeoPoint,
    fuel_percent: u8,
    odometer_m: u64,
    doors_locked: bool,
) -> Telemetry {
    Telemetry {
        position,
        fuel_percent: fuel(fuel_percent),
        odometer_m: OdometerM::from_m(odometer_m),
        doors_locked,
    }
}

/// The car reported `telemetry` at `when`.
pub(crate) fn telemetry_recorded(
    vehicle_id: VehicleId,
    telemetry: Telemetry,
    when: &str,
) -> VehicleEvent {
    VehicleEvent::TelemetryRecorded {
        vehicle_id,
        telemetry,
        recorded_at: at(when),
    }
}

/// A trip took the car.
pub(crate) fn rented(
    vehicle_id: VehicleId,
    trip_id: TripId,
    customer_id: CustomerId,
    when: &str,
) -> VehicleEvent {
    VehicleEvent::VehicleRented {
        vehicle_id,
        trip_id,
        customer_id,
        rented_at: at(when),
        reservation_id: None,
    }
}

/// The standard tariff: 12 RUB a driving minute, 3 RUB a parked minute, 70 km included, then
/// 15 RUB a started kilometre.
pub(crate) fn standard_tariff() -> Tariff {
    Tariff {
        name: "standard".to_owned(),
        currency: Currency::Rub,
        driving_kopecks_per_minute: Kopecks(1_200),
        parking_kopecks_per_minute: Kopecks(300),
        included_km: 70,
        kopecks_per_extra_km: Kopecks(1_500),
    }
}

fn rectangle(south: f64, west: f64, north: f64, east: f64) -> Polygon {
    Polygon {
        vertices: vec![
            GeoPoint {
                lat: south,
                lon: west,
            },
            GeoPoint {
                lat: north,
                lon: west,
            },
            GeoPoint {
                lat: north,
                lon: east,
            },
            GeoPoint {
                lat: south,
                lon: east,
            },
        ],
    }
}

/// Moscow inside a rough rectangle, with Gorky Park forbidden and Sheremetyevo airport, north
/// of the rectangle, a 300 RUB surcharge zone.
pub(crate) fn moscow() -> OperatingArea {
    OperatingArea {
        name: "Moscow".to_owned(),
        boundary: rectangle(55.55, 37.35, 55.95, 37.85),
        forbidden: vec![gorky_park()],
        surcharge: vec![SurchargeZone {
            name: "Sheremetyevo".to_owned(),
            surcharge_kopecks: Kopecks(30_000),
            area: rectangle(55.955, 37.385, 55.985, 37.445),
        }],
    }
}

/// A zone inside Moscow where trips may not end.
pub(crate) fn gorky_park() -> Polygon {
    rectangle(55.725, 37.595, 55.735, 37.610)
}

/// A point inside Gorky Park.
pub(crate) fn in_gorky_park() -> GeoPoint {
    GeoPoint {
        lat: 55.7300,
        lon: 37.6010,
    }
}

/// Chistye Prudy, two kilometres north-east of Red Square.
pub(crate) fn chistye_prudy() -> GeoPoint {
    GeoPoint {
        lat: 55.7650,
        lon: 37.6387,
    }
}

/// Sheremetyevo airport: north of the operating area, in its surcharge zone.
pub(crate) fn sheremetyevo() -> GeoPoint {
    GeoPoint {
        lat: 55.9726,
        lon: 37.4146,
    }
}

/// Zelenograd: north-west of the operating area, in no zone at all.
pub(crate) fn zelenograd() -> GeoPoint {
    GeoPoint {
        lat: 55.9825,
        lon: 37.1750,
    }
}

/// The facts fixed when `customer_id` takes `vehicle_id` from Red Square at the standard tariff.
pub(crate) fn trip_start(
    trip_id: TripId,
    customer_id: CustomerId,
    vehicle_id: VehicleId,
) -> TripStart {
    TripStart {
        trip_id,
        customer_id,
        vehicle_id,
        tariff: standard_tariff(),
        start_position: red_square(),
        start_odometer_m: OdometerM::from_m(START_ODOMETER_M),
        quote_id: None,
        reservation_id: None,
        company_id: None,
    }
}

/// Ivan's trip in the Kia started at `when`.
pub(crate) fn trip_started(when: &str) -> TripEvent {
    TripEvent::TripStarted {
        start: trip_start(TRIP_1, IVAN, KIA),
        started_at: at(when),
    }
}

/// Trip 1 parked at `when`.
pub(crate) fn trip_parked(when: &str) -> TripEvent {
    TripEvent::TripParked {
        trip_id: TRIP_1,
        parked_at: at(when),
    }
}

/// Trip 1 drove on at `when`.
pub(crate) fn trip_resumed(when: &str) -> TripEvent {
    TripEvent::TripResumed {
        trip_id: TRIP_1,
        resumed_at: at(when),
    }
}

/// How trip 1 ends after `history`: at `when`, on Red Square, with the odometer at
/// `end_odometer_m`, priced by the trip decider itself.
pub(crate) fn trip_ended(history: &[TripEvent], when: &str, end_odometer_m: u64) -> TripEvent {
    let mut events = Trip::decide(
        &Trip::fold(history),
        &TripCommand::End {
            end_position: red_square(),
            end_odometer_m: OdometerM::from_m(end_odometer_m),
            surcharge: None,
        },
        &trip_context(TRIP_1, when),
    )
    .unwrap();
    assert_eq!(events.len(), 1, "ending a trip records one event");
    events.remove(0)
}

/// The standard terms: the standard tariff, and 15 free minutes of waiting, then 3 RUB a started
/// minute, up to 35 minutes.
pub(crate) fn standard_terms() -> RentalTerms {
    RentalTerms {
        tariff: standard_tariff(),
        waiting: WaitingTariff {
            free_minutes: 15,
            kopecks_per_minute: Kopecks(300),
            max_minutes: 35,
        },
    }
}

/// Moscow's pricing: 0.02° × 0.03° zones, 0.8×–2.5×, 15 minutes of demand, quotes valid 5 minutes.
pub(crate) fn pricing_policy() -> PricingPolicy {
    PricingPolicy {
        zone_grid: ZoneGrid {
            lat_deg: 0.02,
            lon_deg: 0.03,
        },
        min_multiplier_permille: 800,
        max_multiplier_permille: 2500,
        demand_window_s: 900,
        quote_valid_s: 300,
    }
}

/// Supply and demand as seen in a zone, over the policy's window.
pub(crate) fn observed(free_cars: u32, recent_customers: u32) -> DemandObservation {
    DemandObservation {
        free_cars,
        recent_customers,
        window_s: pricing_policy().demand_window_s,
    }
}

/// A quote for `customer_id` on the Kia on Red Square, issued at `when` with 4 free cars and 4
/// other customers in the zone: 1.25×.
pub(crate) fn quote_issued(quote_id: QuoteId, customer_id: CustomerId, when: &str) -> QuoteEvent {
    let mut events = Quote::decide(
        &Default::default(),
        &QuoteCommand::Issue {
            customer_id,
            vehicle_id: KIA,
            position: red_square(),
            observed: observed(4, 4),
            standard: standard_terms(),
            policy: pricing_policy(),
        },
        &quote_context(quote_id, when),
    )
    .unwrap();
    events.remove(0)
}

/// Ivan reserved the Kia on Red Square at `when` on the standard terms.
pub(crate) fn reservation_made(when: &str) -> ReservationEvent {
    reservation_made_on(standard_terms(), None, when)
}

/// Ivan reserved the Kia on Red Square at `when` on `terms`, with `quote_id` if any.
pub(crate) fn reservation_made_on(
    terms: RentalTerms,
    quote_id: Option<QuoteId>,
    when: &str,
) -> ReservationEvent {
    let mut events = Reservation::decide(
        &Default::default(),
        &ReservationCommand::Make {
            customer_id: IVAN,
            vehicle_id: KIA,
            position: red_square(),
            quote_id,
            terms,
        },
        &reservation_context(RESERVATION_1, when),
    )
    .unwrap();
    events.remove(0)
}

/// The Kia held by `reservation_id` for `customer_id` since `when`.
pub(crate) fn reserved(
    reservation_id: ReservationId,
    customer_id: CustomerId,
    when: &str,
) -> VehicleEvent {
    VehicleEvent::VehicleReserved {
        vehicle_id: KIA,
        reservation_id,
        customer_id,
        reserved_at: at(when),
    }
}
