//! Real domain events for tests of the read side, and a way to append them, so that projector and
//! query tests run on exactly what the command side would write. Enabled by the `testing`
//! feature; never used by production code.
//!
//! The builders panic on invalid fixed values: they are test setup, and a test that cannot build
//! its events cannot run.

use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::geo::GeoPoint;
use domain::ids::{CustomerId, TripId, VehicleId};
use domain::money::{Currency, Kopecks};
use domain::trip::{Tariff, TripEvent, TripStart};
use domain::value::{FuelPercent, ModelName, OdometerM, Plate, Vin};
use domain::vehicle::{Telemetry, VehicleDetails, VehicleEvent};
use event_store::{
    AppendOutcome, AppendRequest, Claims, EventStore, ExpectedVersion, Metadata, NewEvent,
    StreamWrite,
};
use uuid::Uuid;

/// A time from RFC 3339 text (`2026-11-25T10:00:00Z`).
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse()
        .unwrap_or_else(|error| panic!("{text:?} is not an RFC 3339 time: {error}"))
}

/// Red Square, Moscow.
pub const RED_SQUARE: GeoPoint = GeoPoint {
    lat: 55.7539,
    lon: 37.6208,
};

/// The point `north_m` metres north and `east_m` metres east of `from` (flat-Earth offsets, exact
/// enough for a few kilometres).
pub fn offset(from: GeoPoint, north_m: f64, east_m: f64) -> GeoPoint {
    const M_PER_DEGREE_LAT: f64 = 111_194.9;
    GeoPoint {
        lat: from.lat + north_m / M_PER_DEGREE_LAT,
        lon: from.lon + east_m / (M_PER_DEGREE_LAT * from.lat.to_radians().cos()),
    }
}

/// The tariff the tests price with: 12 RUB a minute driving, 3 parked, 70 km included, 15 RUB a
/// kilometre beyond.
pub fn tariff() -> Tariff {
    Tariff {
        name: "standard".to_owned(),
        currency: Currency::Rub,
        driving_kopecks_per_minute: Kopecks(1_200),
        parking_kopecks_per_minute: Kopecks(300),
        included_km: 70,
        kopecks_per_extra_km: Kopecks(1_500),
    }
}

/// A car joining the fleet. `number` (0–999) makes its plate and VIN unique among the test's cars.
pub fn vehicle_added(
    vehicle_id: VehicleId,
    number: u32,
    position: GeoPoint,
    odometer_m: u64,
    added_at: DateTime<Utc>,
) -> VehicleEvent {
    let parsed = |what: &str, error: domain::FieldError| -> ! {
        panic!("test {what} does not parse: {error:?}")
    };
    VehicleEvent::VehicleAddedToFleet {
        details: VehicleDetails {
            vehicle_id,
            plate: Plate::parse("plate", &format!("А{:03}ВС777", number % 1000))
                .unwrap_or_else(|e| parsed("plate", e)),
            vin: Vin::parse("vin", &format!("XW8ZZZ61ZKG{:06}", number))
                .unwrap_or_else(|e| parsed("vin", e)),
            model: ModelName::parse("model", "Kia Rio").unwrap_or_else(|e| parsed("model", e)),
        },
        position,
        fuel_percent: fuel(80),
        odometer_m: OdometerM::from_m(odometer_m),
        added_at,
    }
}

fn fuel(percent: u8) -> FuelPercent {
    FuelPercent::parse("fuel_percent", f64::from(percent))
        .unwrap_or_else(|error| panic!("fuel {percent} does not parse: {error:?}"))
}

/// A telemetry reading.
pub fn telemetry_recorded(
    vehicle_id: VehicleId,
    position: GeoPoint,
    fuel_percent: u8,
    odometer_m: u64,
    doors_locked: bool,
    recorded_at: DateTime<Utc>,
) -> VehicleEvent {
    VehicleEvent::TelemetryRecorded {
        vehicle_id,
        telemetry: Telemetry {
            position,
            fuel_percent: fuel(fuel_percent),
            odometer_m: OdometerM::from_m(odometer_m),
            doors_locked,
        },
        recorded_at,
    }
}

/// A trip taking a car.
pub fn vehicle_rented(
    vehicle_id: VehicleId,
    trip_id: TripId,
    customer_id: CustomerId,
    rented_at: DateTime<Utc>,
) -> VehicleEvent {
    VehicleEvent::VehicleRented {
        vehicle_id,
        trip_id,
        customer_id,
        rented_at,
        reservation_id: None,
    }
}

/// A trip handing a car back.
pub fn vehicle_returned(
    vehicle_id: VehicleId,
    trip_id: TripId,
    returned_at: DateTime<Utc>,
) -> VehicleEvent {
    VehicleEvent::VehicleReturned {
        vehicle_id,
        trip_id,
        returned_at,
    }
}

/// A trip starting at [`tariff`].
pub fn trip_started(
    trip_id: TripId,
    customer_id: CustomerId,
    vehicle_id: VehicleId,
    position: GeoPoint,
    odometer_m: u64,
    started_at: DateTime<Utc>,
) -> TripEvent {
    TripEvent::TripStarted {
        start: TripStart {
            trip_id,
            customer_id,
            vehicle_id,
            tariff: tariff(),
            start_position: position,
            start_odometer_m: OdometerM::from_m(odometer_m),
            quote_id: None,
            reservation_id: None,
            company_id: None,
        },
        started_at,
    }
}

/// A trip parking.
pub fn trip_parked(trip_id: TripId, parked_at: DateTime<Utc>) -> TripEvent {
    TripEvent::TripParked { trip_id, parked_at }
}

/// A trip driving on.
pub fn trip_resumed(trip_id: TripId, resumed_at: DateTime<Utc>) -> TripEvent {
    TripEvent::TripResumed {
        trip_id,
        resumed_at,
    }
}

/// What a trip ending needs beyond its ids.
#[derive(Clone, Copy, Debug)]
pub struct TripEnd {
    /// Where the car was left.
    pub position: GeoPoint,
    /// The odometer at the start.
    pub start_odometer_m: u64,
    /// The odometer at the end.
    pub end_odometer_m: u64,
    /// When.
    pub ended_at: DateTime<Utc>,
    /// Seconds driven in the whole trip.
    pub driving_s: u64,
    /// Seconds parked in the whole trip.
    pub parking_s: u64,
}

/// A trip ending, priced by the domain at [`tariff`].
pub fn trip_ended(
    trip_id: TripId,
    customer_id: CustomerId,
    vehicle_id: VehicleId,
    end: TripEnd,
) -> TripEvent {
    let distance_m = end.end_odometer_m.saturating_sub(end.start_odometer_m);
    TripEvent::TripEnded {
        trip_id,
        customer_id,
        vehicle_id,
        end_position: end.position,
        end_odometer_m: OdometerM::from_m(end.end_odometer_m),
        ended_at: end.ended_at,
        price: domain::trip::price(&tariff(), end.driving_s, end.parking_s, distance_m),
    }
}

/// A domain event as the store takes it.
pub fn new_event<E: DomainEvent>(event: &E, occurred_at: DateTime<Utc>) -> NewEvent {
    let encoded = domain::decider::encode(event)
        .unwrap_or_else(|error| panic!("cannot encode {event:?}: {error}"));
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: encoded.event_type,
        schema_version: encoded.schema_version,
        data: encoded.data,
        occurred_at,
    }
}

/// One atomic append of domain events to one or more streams, built up and then
/// [`commit`](Self::commit)ted: `Append::at(t).events(&trip, &[..]).events(&car, &[..])`.
#[derive(Debug)]
pub struct Append {
    recorded_at: DateTime<Utc>,
    writes: Vec<StreamWrite>,
}

impl Append {
    /// An append recorded (and its events occurring) at `recorded_at`.
    pub fn at(recorded_at: DateTime<Utc>) -> Self {
        Self {
            recorded_at,
            writes: Vec::new(),
        }
    }

    /// Adds `events` to the stream `stream_id`, after whatever it holds.
    pub fn events<E: DomainEvent>(mut self, stream_id: &str, events: &[E]) -> Self {
        self.writes.push(StreamWrite {
            stream_id: stream_id.to_owned(),
            expected: ExpectedVersion::Any,
            events: events
                .iter()
                .map(|event| new_event(event, self.recorded_at))
                .collect(),
        });
        self
    }

    /// Appends everything in one transaction.
    pub async fn commit(self, store: &EventStore) -> AppendOutcome {
        let request = AppendRequest {
            writes: self.writes,
            metadata: Metadata {
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "service:test".to_owned(),
                command_id: Some(Uuid::now_v7()),
            },
            recorded_at: self.recorded_at,
            claims: Claims::default(),
            result: None,
        };
        store
            .append(&request)
            .await
            .unwrap_or_else(|error| panic!("test append failed: {error}"))
    }
}
