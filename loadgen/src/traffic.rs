//! `velka simulate --rate R --duration D`: realistic app traffic against a running server, over
//! HTTP, and a report of what the server did with it.
//!
//! Time is the server's own (`--clock real`) or simulated (`--clock simulated --speed N`: the
//! server runs `--clock manual` and the simulator moves it N seconds every real second, so a
//! trip of a few dozen steps lasts simulated minutes and is priced as such). With
//! `--payment-failure-percent P` the payment gateway simulator refuses P% of card operations
//! (half declined, half 5xx) for the length of the run, through its `/control/faults`.
//!
//! The users are customers of the seeded city (`fixtures::population`, loaded through
//! `seed::load`, so a city seeded with the same seed is reused and nothing is registered twice).
//! Each user is a small state machine: idle users look at the map (cars nearby) and ask for
//! quotes; a quote becomes a reservation or a trip; a trip drives towards a destination, its car
//! reporting telemetry as it goes, parks on the way now and then, and ends at the destination —
//! usually inside the operating area, sometimes at an airport (a surcharge), sometimes outside
//! the area, where ending is refused and the driver goes back in. Some ended trips get a traffic
//! fine a few seconds later, as a camera's importer would send it. Anonymous clients poll the
//! GBFS feed.
//!
//! The load is open: a tick every `1/rate` seconds starts one action, whatever the server's
//! latency, up to `concurrency` in flight (a tick finding them all busy is counted as dropped,
//! so an overloaded server shows up as a lower achieved rate, not as a slower schedule). At the
//! end, trips still running are ended and reservations cancelled, so the next run starts clean.
//!
//! The report: requests per second, latency p50/p90/p99 per route, errors by status and problem
//! type, and one line `result: bench=simulate …` for scripts.

use crate::client::{Api, Reply};
use crate::error::{Context, Result};
use crate::progress::Progress;
use domain::geo::GeoPoint;
use domain::zone::OperatingArea;
use fixtures::population::{Population, Rng};
use http_edge::Role;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to drive.
#[derive(Clone, Debug)]
pub struct Options {
    /// Actions started per second.
    pub rate: f64,
    /// How long; `None` until `stop` resolves.
    pub duration: Option<Duration>,
    pub users: usize,
    pub seed: u64,
    pub concurrency: usize,
    /// Print a progress line every few seconds and the report at the end.
    pub report: bool,
    /// At the end, end running trips and cancel reservations.
    pub wind_down: bool,
}

/// Points outside the operating area where drivers sometimes try to end (refused).
const OUTSIDE: [GeoPoint; 3] = [
    GeoPoint {
        lat: 55.8890,
        lon: 37.4000,
    }, // Khimki
    GeoPoint {
        lat: 55.6790,
        lon: 37.8930,
    }, // Lyubertsy
    GeoPoint {
        lat: 55.7520,
        lon: 37.6175,
    }, // the Kremlin (forbidden)
];

/// Airport car parks: ending there is allowed, for a surcharge.
const AIRPORTS: [GeoPoint; 2] = [
    GeoPoint {
        lat: 55.9720,
        lon: 37.4130,
    }, // Sheremetyevo
    GeoPoint {
        lat: 55.6050,
        lon: 37.2850,
    }, // Vnukovo
];

/// A car as the app saw it.
#[derive(Clone, Debug)]
struct SeenCar {
    vehicle_id: String,
    plate: String,
    position: GeoPoint,
}

#[derive(Clone, Debug)]
struct Trip {
    trip_id: String,
    car: SeenCar,
    position: GeoPoint,
    destination: GeoPoint,
    odometer_km: f64,
    fuel_percent: f64,
    steps_left: u32,
    started_at: Option<String>,
}

#[derive(Clone, Debug)]
enum Phase {
    Idle,
    Quoted {
        car: SeenCar,
        quote_id: String,
    },
    Reserved {
        car: SeenCar,
        reservation_id: String,
    },
    Driving(Trip),
    Parked(Trip),
}

struct User {
    customer_id: String,
    token: String,
    position: GeoPoint,
    nearby: Vec<SeenCar>,
    phase: Phase,
    rng: Rng,
}

/// Latencies and outcomes, per route.
#[derive(Default)]
struct Stats {
    latencies_us: BTreeMap<&'static str, Vec<u64>>,
    errors: BTreeMap<String, u64>,
    requests: u64,
    server_errors: u64,
    failures: u64,
}

impl Stats {
    fn record(&mut self, route: &'static str, elapsed: Duration, outcome: &Result<Reply, String>) {
        self.requests += 1;
        self.latencies_us
            .entry(route)
            .or_default()
            .push(elapsed.as_micros() as u64);
        match outcome {
            Ok(reply) if reply.status.is_success() || reply.status.as_u16() == 304 => {}
            Ok(reply) => {
                if reply.status.is_server_error() {
                    self.server_errors += 1;
                }
                let problem = reply.problem();
                let key = if problem.is_empty() {
                    reply.status.as_u16().to_string()
                } else {
                    format!("{} {problem}", reply.status.as_u16())
                };
                *self.errors.entry(key).or_default() += 1;
            }
            Err(kind) => {
                self.failures += 1;
                *self.errors.entry(format!("transport {kind}")).or_default() += 1;
            }
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn all_latencies(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.latencies_us.values().flatten().copied().collect();
        all.sort_unstable();
        all
    }
}

/// The `q` quantile of sorted microseconds, in milliseconds.
fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

struct Shared {
    api: Api,
    service: String,
    area: OperatingArea,
    stats: Mutex<Stats>,
    fines: Mutex<Vec<(Instant, Value)>>,
    fine_serial: AtomicU64,
    in_trips: AtomicU64,
}

impl Shared {
    async fn call(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let key = body.map(|_| uuid::Uuid::now_v7().to_string());
        let started = Instant::now();
        let outcome = self
            .api
            .send(method, path, token, key.as_deref(), body)
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    "timeout".to_owned()
                } else if error.is_connect() {
                    "connect".to_owned()
                } else {
                    "other".to_owned()
                }
            });
        let elapsed = started.elapsed();
        if let Ok(mut stats) = self.stats.lock() {
            stats.record(route, elapsed, &outcome);
        }
        outcome
    }
}

fn ok(outcome: &Result<Reply, String>) -> Option<&Reply> {
    outcome.as_ref().ok().filter(|r| r.status.is_success())
}

/// A step of `distance` metres from `from` towards `to` (or `to`, if nearer).
fn step_towards(from: GeoPoint, to: GeoPoint, distance: f64) -> GeoPoint {
    let left = from.distance_m(&to);
    if left <= distance || left < 1.0 {
        return to;
    }
    let f = distance / left;
    GeoPoint {
        lat: ((from.lat + (to.lat - from.lat) * f) * 1e6).round() / 1e6,
        lon: ((from.lon + (to.lon - from.lon) * f) * 1e6).round() / 1e6,
    }
}

/// Loads (or finds) the users, then drives traffic until the duration is over or `stop`
/// resolves; ends what is still running. Returns the report's result line.
pub async fn drive(api: Api, options: Options, stop: impl Future<Output = ()>) -> Result<String> {
    let population = Population::moscow()?;
    let loaded = crate::seed::load(
        &api,
        &crate::seed::Plan {
            seed: options.seed,
            cars: 0,
            customers: options.users,
            concurrency: 8,
            progress: false,
        },
    )
    .await?;
    let mut rng = Rng::stream(options.seed, 3);
    let area = population.area().clone();
    let mut users = Vec::new();
    for (_, customer_id) in loaded.verified() {
        users.push(Arc::new(tokio::sync::Mutex::new(User {
            customer_id: customer_id.to_owned(),
            token: api.token(Role::Customer, customer_id)?,
            position: rng.point_in(&area),
            nearby: Vec::new(),
            phase: Phase::Idle,
            rng: Rng::new(rng.next_u64()),
        })));
    }
    ensure!(
        !users.is_empty(),
        "no user could be registered (phones and e-mails of seed {} are taken by others)",
        options.seed
    );
    let shared = Arc::new(Shared {
        service: api.token(Role::Service, "traffic-simulator")?,
        api,
        area,
        stats: Mutex::new(Stats::default()),
        fines: Mutex::new(Vec::new()),
        fine_serial: AtomicU64::new(0),
        in_trips: AtomicU64::new(0),
    });
    // A user whose trip an earlier, interrupted run left running takes it up again.
    for user in &users {
        let mut user = user.lock().await;
        adopt_running_trip(&shared, &mut user).await;
    }
    if let Ok(mut stats) = shared.stats.lock() {
        *stats = Stats::default();
    }

    let limit = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let interval = Duration::from_secs_f64(1.0 / options.rate.max(0.001));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let progress = options.report.then(|| {
        let seconds = options.duration.map(|d| d.as_secs_f64().ceil() as u64);
        Progress::counting(
            "velka simulate",
            seconds,
            "s",
            false,
            Duration::from_secs(5),
        )
    });
    let mut last_report = Instant::now();
    let mut dropped = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut stop => break,
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        while tasks.try_join_next().is_some() {}
        if let Some(progress) = &progress {
            progress.set_position(started.elapsed().as_secs_f64().round() as u64);
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress.set_message(progress_line(&shared, started.elapsed(), dropped));
            }
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        let shared = shared.clone();
        // Due fines first: they arrive when they arrive.
        let due_fine = shared.fines.lock().ok().and_then(|mut fines| {
            let now = Instant::now();
            let index = fines.iter().position(|(due, _)| *due <= now)?;
            Some(fines.swap_remove(index).1)
        });
        if let Some(fine) = due_fine {
            tasks.spawn(async move {
                let token = shared.service.clone();
                let _ = shared
                    .call(
                        "POST /v1/fines",
                        Method::POST,
                        "/v1/fines",
                        Some(&token),
                        Some(&fine),
                    )
                    .await;
                drop(permit);
            });
            continue;
        }
        let user = users[rng.below(users.len() as u64) as usize].clone();
        let anonymous = rng.chance(0.12);
        tasks.spawn(async move {
            match user.try_lock_owned() {
                Ok(mut user) if !anonymous => act(&shared, &mut user).await,
                _ => poll_gbfs(&shared).await,
            }
            drop(permit);
        });
    }
    let elapsed = started.elapsed();
    if let Some(progress) = progress {
        progress.finish_and_clear();
    }
    while tasks.join_next().await.is_some() {}
    let line = report(&shared, elapsed, dropped, &options);
    // Wind down: end running trips, cancel reservations (not measured).
    if options.wind_down {
        for user in &users {
            let mut user = user.lock().await;
            wind_down(&shared, &mut user).await;
        }
        // Fines still on their way arrive now.
        let pending = shared
            .fines
            .lock()
            .map(|mut fines| std::mem::take(&mut *fines))
            .unwrap_or_default();
        for (_, fine) in pending {
            let _ = shared
                .call(
                    "POST /v1/fines",
                    Method::POST,
                    "/v1/fines",
                    Some(&shared.service),
                    Some(&fine),
                )
                .await;
        }
    }
    Ok(line)
}

/// The progress line's words after the elapsed seconds.
fn progress_line(shared: &Shared, elapsed: Duration, dropped: u64) -> String {
    let Ok(stats) = shared.stats.lock() else {
        return String::new();
    };
    let all = stats.all_latencies();
    format!(
        "{} requests ({:.1}/s), p50 {:.1} ms, p99 {:.1} ms, errors {} (5xx {}), {} cars in trips, {dropped} ticks dropped",
        stats.requests,
        stats.requests as f64 / elapsed.as_secs_f64().max(1e-3),
        quantile_ms(&all, 0.5),
        quantile_ms(&all, 0.99),
        stats.error_count(),
        stats.server_errors,
        shared.in_trips.load(Ordering::Relaxed),
    )
}

/// Prints the report (when asked) and returns the result line.
fn report(shared: &Shared, elapsed: Duration, dropped: u64, options: &Options) -> String {
    let Ok(stats) = shared.stats.lock() else {
        return "result: bench=simulate error=poisoned".to_owned();
    };
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let all = stats.all_latencies();
    let line = format!(
        "result: bench=simulate target_rate={} rate={:.1} requests={} duration_s={:.1} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} errors={} errors_5xx={} transport_errors={} dropped={dropped}",
        options.rate,
        stats.requests as f64 / seconds,
        stats.requests,
        seconds,
        quantile_ms(&all, 0.5),
        quantile_ms(&all, 0.9),
        quantile_ms(&all, 0.99),
        stats.error_count(),
        stats.server_errors,
        stats.failures,
    );
    if options.report {
        println!(
            "\nvelka simulate: {} requests in {seconds:.1}s ({:.1}/s, target {}/s), {} users",
            stats.requests,
            stats.requests as f64 / seconds,
            options.rate,
            options.users
        );
        println!(
            "\n  {:<44} {:>7} {:>8} {:>8} {:>8}",
            "route", "count", "p50 ms", "p90 ms", "p99 ms"
        );
        let mut routes: Vec<_> = stats.latencies_us.iter().collect();
        routes.sort_by_key(|(_, latencies)| std::cmp::Reverse(latencies.len()));
        for (route, latencies) in routes {
            let mut sorted = latencies.clone();
            sorted.sort_unstable();
            println!(
                "  {route:<44} {:>7} {:>8.2} {:>8.2} {:>8.2}",
                sorted.len(),
                quantile_ms(&sorted, 0.5),
                quantile_ms(&sorted, 0.9),
                quantile_ms(&sorted, 0.99)
            );
        }
        if stats.errors.is_empty() {
            println!("\n  no errors");
        } else {
            println!("\n  errors by type (status and problem type; most are business refusals):");
            for (kind, count) in &stats.errors {
                println!("  {count:>7}  {kind}");
            }
        }
        println!("\n{line}");
    }
    line
}

async fn poll_gbfs(shared: &Shared) {
    let _ = shared
        .call(
            "GET /gbfs/v3/vehicle_status.json",
            Method::GET,
            "/gbfs/v3/vehicle_status.json",
            None,
            None,
        )
        .await;
}

/// One action of one user, chosen by what they are doing.
async fn act(shared: &Shared, user: &mut User) {
    match user.phase.clone() {
        Phase::Idle => idle(shared, user).await,
        Phase::Quoted { car, quote_id } => quoted(shared, user, car, quote_id).await,
        Phase::Reserved {
            car,
            reservation_id,
        } => reserved(shared, user, car, reservation_id).await,
        Phase::Driving(trip) => driving(shared, user, trip).await,
        Phase::Parked(trip) => parked(shared, user, trip).await,
    }
}

async fn look_around(shared: &Shared, user: &mut User) {
    let path = format!(
        "/v1/vehicles/available?lat={}&lon={}&radius_m=1500&limit=20",
        user.position.lat, user.position.lon
    );
    let outcome = shared
        .call(
            "GET /v1/vehicles/available",
            Method::GET,
            &path,
            Some(&user.token),
            None,
        )
        .await;
    if let Some(reply) = ok(&outcome) {
        user.nearby = reply.body["vehicles"]
            .as_array()
            .map(|cars| {
                cars.iter()
                    .filter_map(|car| {
                        Some(SeenCar {
                            vehicle_id: car["vehicle_id"].as_str()?.to_owned(),
                            plate: car["plate"].as_str()?.to_owned(),
                            position: GeoPoint {
                                lat: car["lat"].as_f64()?,
                                lon: car["lon"].as_f64()?,
                            },
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if user.nearby.is_empty() {
            // Nothing here: the user tries somewhere else next time.
            user.position = user.rng.point_in(&shared.area);
        }
    }
}

async fn idle(shared: &Shared, user: &mut User) {
    let draw = user.rng.unit();
    if draw < 0.05 {
        let path = format!("/v1/customers/{}/trips?limit=10", user.customer_id);
        let _ = shared
            .call(
                "GET /v1/customers/{id}/trips",
                Method::GET,
                &path,
                Some(&user.token),
                None,
            )
            .await;
        return;
    }
    if draw < 0.6 || user.nearby.is_empty() {
        look_around(shared, user).await;
        return;
    }
    let nearest = user.nearby.len().min(3) as u64;
    let car = user.nearby[user.rng.below(nearest) as usize].clone();
    let outcome = shared
        .call(
            "POST /v1/quotes",
            Method::POST,
            "/v1/quotes",
            Some(&user.token),
            Some(&json!({ "vehicle_id": car.vehicle_id })),
        )
        .await;
    match ok(&outcome) {
        Some(reply) => {
            user.phase = Phase::Quoted {
                car,
                quote_id: reply.str("quote_id"),
            }
        }
        None => user.nearby.clear(),
    }
}

async fn quoted(shared: &Shared, user: &mut User, car: SeenCar, quote_id: String) {
    let draw = user.rng.unit();
    if draw < 0.1 {
        user.phase = Phase::Idle;
        user.position = user.rng.point_in(&shared.area);
        user.nearby.clear();
        return;
    }
    if draw < 0.55 {
        let outcome = shared
            .call(
                "POST /v1/reservations",
                Method::POST,
                "/v1/reservations",
                Some(&user.token),
                Some(&json!({ "vehicle_id": car.vehicle_id, "quote_id": quote_id })),
            )
            .await;
        user.phase = match ok(&outcome) {
            Some(reply) => Phase::Reserved {
                car,
                reservation_id: reply.str("reservation_id"),
            },
            None => {
                user.nearby.clear();
                Phase::Idle
            }
        };
        return;
    }
    start_trip(
        shared,
        user,
        car,
        json!({ "vehicle_id": "", "quote_id": quote_id }),
    )
    .await;
}

async fn reserved(shared: &Shared, user: &mut User, car: SeenCar, reservation_id: String) {
    let draw = user.rng.unit();
    if draw < 0.25 {
        let path = format!("/v1/reservations/{reservation_id}");
        let outcome = shared
            .call(
                "GET /v1/reservations/{id}",
                Method::GET,
                &path,
                Some(&user.token),
                None,
            )
            .await;
        if let Some(reply) = ok(&outcome)
            && reply.str("status") != "active"
            && !reply.str("status").is_empty()
        {
            user.phase = Phase::Idle;
        }
        return;
    }
    if draw < 0.4 {
        cancel_reservation(shared, user, &reservation_id).await;
        return;
    }
    // Walked to the car: the reservation becomes the trip.
    start_trip(shared, user, car, json!({ "vehicle_id": "" })).await;
}

async fn cancel_reservation(shared: &Shared, user: &mut User, reservation_id: &str) {
    let path = format!("/v1/reservations/{reservation_id}/cancel");
    let _ = shared
        .call(
            "POST /v1/reservations/{id}/cancel",
            Method::POST,
            &path,
            Some(&user.token),
            Some(&json!({})),
        )
        .await;
    user.phase = Phase::Idle;
}

/// Where a trip goes: mostly somewhere in the city, sometimes an airport or outside the area.
fn destination(rng: &mut Rng, area: &OperatingArea) -> GeoPoint {
    let draw = rng.unit();
    if draw < 0.06 {
        *rng.pick(&AIRPORTS)
    } else if draw < 0.14 {
        *rng.pick(&OUTSIDE)
    } else {
        rng.point_in(area)
    }
}

async fn start_trip(shared: &Shared, user: &mut User, car: SeenCar, mut body: Value) {
    body["vehicle_id"] = json!(car.vehicle_id);
    let outcome = shared
        .call(
            "POST /v1/trips",
            Method::POST,
            "/v1/trips",
            Some(&user.token),
            Some(&body),
        )
        .await;
    let Some(reply) = ok(&outcome) else {
        user.phase = Phase::Idle;
        user.nearby.clear();
        return;
    };
    let trip_id = reply.str("trip_id");
    let destination = destination(&mut user.rng, &shared.area);
    let steps = user.rng.between(3, 10) as u32;
    if let Some(trip) = begin(shared, trip_id, car, destination, steps).await {
        user.phase = Phase::Driving(trip);
    } else {
        user.phase = Phase::Idle;
    }
}

/// The car's telematics unit knows its odometer: the simulator reads it from the trip's first
/// event (`start_odometer_m`), so its readings never go backwards.
async fn begin(
    shared: &Shared,
    trip_id: String,
    car: SeenCar,
    destination: GeoPoint,
    steps: u32,
) -> Option<Trip> {
    let path = format!("/v1/streams/trip-{trip_id}/events?limit=1");
    let auditor = shared.api.token(Role::Auditor, "traffic-simulator").ok()?;
    let outcome = shared
        .call(
            "GET /v1/streams/{id}/events",
            Method::GET,
            &path,
            Some(&auditor),
            None,
        )
        .await;
    let reply = ok(&outcome)?;
    let first = &reply.body["events"][0]["data"];
    let odometer_m = first["start_odometer_m"].as_f64()?;
    let position = GeoPoint {
        lat: first["start_position"]["lat"]
            .as_f64()
            .unwrap_or(car.position.lat),
        lon: first["start_position"]["lon"]
            .as_f64()
            .unwrap_or(car.position.lon),
    };
    shared.in_trips.fetch_add(1, Ordering::Relaxed);
    Some(Trip {
        trip_id,
        car,
        position,
        destination,
        odometer_km: odometer_m / 1000.0,
        fuel_percent: 60.0,
        steps_left: steps,
        started_at: first["started_at"].as_str().map(str::to_owned),
    })
}

/// The car reports where it is.
async fn telemetry(shared: &Shared, trip: &Trip, doors_locked: bool) -> bool {
    let path = format!("/v1/vehicles/{}/telemetry", trip.car.vehicle_id);
    let outcome = shared
        .call(
            "POST /v1/vehicles/{id}/telemetry",
            Method::POST,
            &path,
            Some(&shared.service),
            Some(&json!({
                "lat": trip.position.lat,
                "lon": trip.position.lon,
                "fuel_percent": trip.fuel_percent.clamp(0.0, 100.0),
                "odometer_km": (trip.odometer_km * 1000.0).round() / 1000.0,
                "doors_locked": doors_locked,
            })),
        )
        .await;
    ok(&outcome).is_some()
}

fn drive_on(rng: &mut Rng, trip: &mut Trip) {
    let left = trip.position.distance_m(&trip.destination);
    let step = if trip.steps_left <= 1 {
        left
    } else {
        (left / f64::from(trip.steps_left)) * (0.7 + rng.unit() * 0.6)
    };
    let next = step_towards(trip.position, trip.destination, step);
    let metres = trip.position.distance_m(&next) * 1.3;
    trip.position = next;
    trip.odometer_km += metres / 1000.0;
    trip.fuel_percent = (trip.fuel_percent - metres / 6000.0).max(5.0);
    trip.steps_left = trip.steps_left.saturating_sub(1);
}

async fn driving(shared: &Shared, user: &mut User, mut trip: Trip) {
    if trip.steps_left == 0 {
        end_trip(shared, user, trip).await;
        return;
    }
    if user.rng.chance(0.1) {
        // A stop on the way: lock the car, park.
        telemetry(shared, &trip, true).await;
        let path = format!("/v1/trips/{}/park", trip.trip_id);
        let outcome = shared
            .call(
                "POST /v1/trips/{id}/park",
                Method::POST,
                &path,
                Some(&user.token),
                Some(&json!({})),
            )
            .await;
        user.phase = if ok(&outcome).is_some() {
            Phase::Parked(trip)
        } else {
            Phase::Driving(trip)
        };
        return;
    }
    if user.rng.chance(0.1) {
        // The app shows the running price.
        let path = format!("/v1/trips/{}", trip.trip_id);
        let _ = shared
            .call(
                "GET /v1/trips/{id}",
                Method::GET,
                &path,
                Some(&user.token),
                None,
            )
            .await;
        user.phase = Phase::Driving(trip);
        return;
    }
    drive_on(&mut user.rng, &mut trip);
    telemetry(shared, &trip, false).await;
    user.phase = Phase::Driving(trip);
}

async fn parked(shared: &Shared, user: &mut User, trip: Trip) {
    let draw = user.rng.unit();
    if draw < 0.3 {
        telemetry(shared, &trip, true).await;
        user.phase = Phase::Parked(trip);
        return;
    }
    if draw < 0.85 {
        telemetry(shared, &trip, false).await;
        let path = format!("/v1/trips/{}/resume", trip.trip_id);
        let outcome = shared
            .call(
                "POST /v1/trips/{id}/resume",
                Method::POST,
                &path,
                Some(&user.token),
                Some(&json!({})),
            )
            .await;
        user.phase = if ok(&outcome).is_some() {
            Phase::Driving(trip)
        } else {
            Phase::Parked(trip)
        };
        return;
    }
    end_trip(shared, user, trip).await;
}

/// Locks the car where it stands and ends the trip. Refused outside the area: the driver
/// then heads back into the city.
async fn end_trip(shared: &Shared, user: &mut User, mut trip: Trip) {
    telemetry(shared, &trip, true).await;
    let path = format!("/v1/trips/{}/end", trip.trip_id);
    let outcome = shared
        .call(
            "POST /v1/trips/{id}/end",
            Method::POST,
            &path,
            Some(&user.token),
            Some(&json!({})),
        )
        .await;
    if ok(&outcome).is_none() {
        if let Ok(reply) = &outcome
            && reply.problem() == "trip-already-ended"
        {
            finished(shared, user, &trip);
            return;
        }
        trip.destination = user.rng.point_in(&shared.area);
        trip.steps_left = user.rng.between(2, 4) as u32;
        user.phase = Phase::Driving(trip);
        return;
    }
    finished(shared, user, &trip);
    // Now and then a camera saw the car during the trip: a fine arrives a few seconds later.
    if user.rng.chance(0.2)
        && !trip.car.plate.is_empty()
        && let Some(started_at) = &trip.started_at
    {
        let serial = shared.fine_serial.fetch_add(1, Ordering::Relaxed);
        let amount = *user.rng.pick(&[50_000_i64, 75_000, 150_000, 300_000]);
        let fine = json!({
            "plate": trip.car.plate,
            "occurred_at": started_at,
            "lat": trip.car.position.lat,
            "lon": trip.car.position.lon,
            "amount_kopecks": amount,
            "resolution_number": format!(
                "188100{:08}{:06}",
                user.rng.below(100_000_000),
                serial % 1_000_000
            ),
            "issued_on": chrono::Utc::now().date_naive(),
        });
        let due = Instant::now() + Duration::from_millis(user.rng.between(500, 5_000));
        if let Ok(mut fines) = shared.fines.lock() {
            fines.push((due, fine));
        }
    }
}

fn finished(shared: &Shared, user: &mut User, trip: &Trip) {
    shared.in_trips.fetch_sub(1, Ordering::Relaxed);
    user.position = trip.position;
    user.nearby.clear();
    user.phase = Phase::Idle;
}

/// At the start: a trip left running by an interrupted run is taken up again.
async fn adopt_running_trip(shared: &Shared, user: &mut User) {
    let path = format!("/v1/customers/{}/trips?limit=1", user.customer_id);
    let outcome = shared
        .call(
            "GET /v1/customers/{id}/trips",
            Method::GET,
            &path,
            Some(&user.token),
            None,
        )
        .await;
    let Some(reply) = ok(&outcome) else { return };
    let latest = &reply.body["trips"][0];
    let status = latest["status"].as_str().unwrap_or("ended");
    if status == "ended" {
        return;
    }
    let (Some(trip_id), Some(vehicle_id)) =
        (latest["trip_id"].as_str(), latest["vehicle_id"].as_str())
    else {
        return;
    };
    let car = SeenCar {
        vehicle_id: vehicle_id.to_owned(),
        plate: String::new(),
        position: user.position,
    };
    let destination = user.rng.point_in(&shared.area);
    if let Some(trip) = begin(shared, trip_id.to_owned(), car, destination, 1).await {
        user.phase = if status == "parked" {
            Phase::Parked(trip)
        } else {
            Phase::Driving(trip)
        };
    }
}

/// At the end: running trips are driven back into the area and ended, reservations cancelled.
async fn wind_down(shared: &Shared, user: &mut User) {
    match user.phase.clone() {
        Phase::Reserved { reservation_id, .. } => {
            cancel_reservation(shared, user, &reservation_id).await;
        }
        Phase::Driving(mut trip) | Phase::Parked(mut trip) => {
            if !shared.area.allows_ending_at(&trip.position) {
                trip.destination = user.rng.point_in(&shared.area);
                trip.steps_left = 1;
                drive_on(&mut user.rng, &mut trip);
            }
            if matches!(user.phase, Phase::Parked(_)) {
                telemetry(shared, &trip, false).await;
                let path = format!("/v1/trips/{}/resume", trip.trip_id);
                let _ = shared
                    .call(
                        "POST /v1/trips/{id}/resume",
                        Method::POST,
                        &path,
                        Some(&user.token),
                        Some(&json!({})),
                    )
                    .await;
            }
            end_trip(shared, user, trip).await;
        }
        Phase::Idle | Phase::Quoted { .. } => user.phase = Phase::Idle,
    }
}

/// What `velka simulate` runs, besides the traffic itself.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub options: Options,
    /// With `Some(speed)`, the server's manual clock is moved `speed` seconds every real second;
    /// `None`, the server keeps its own time.
    pub simulated_speed: Option<u32>,
    /// Card failures injected into the payment gateway simulator for the length of the run.
    pub payment_faults: Option<PaymentFaultRate>,
}

/// A share of card operations the gateway simulator refuses: half declined, half 5xx.
#[derive(Clone, Debug)]
pub struct PaymentFaultRate {
    /// The gateway simulator's base URL.
    pub gateway_url: String,
    /// In percent, more than 0 and at most 100.
    pub percent: f64,
}

/// `velka simulate [traffic]`: drive until the run's duration is over or `interrupted`
/// resolves, and report.
pub async fn run(
    api: Api,
    simulation: Simulation,
    interrupted: impl Future<Output = ()>,
) -> Result<()> {
    let options = simulation.options;
    eprintln!(
        "velka simulate: {} users at {}/s for {:.0}s against {}",
        options.users,
        options.rate,
        options.duration.unwrap_or_default().as_secs_f64(),
        api.base()
    );
    let faults = match &simulation.payment_faults {
        Some(rate) => Some(PaymentFaults::inject(rate, options.seed).await?),
        None => None,
    };
    let clock = match simulation.simulated_speed {
        None => None,
        Some(speed) => Some(SimulatedTime::start(&api, speed).await?),
    };
    let driven = drive(api, options, interrupted).await;
    if let Some(clock) = clock {
        clock.stop();
    }
    if let Some(faults) = faults {
        faults.restore().await;
    }
    driven.map(|_| ())
}

/// Failures injected into the payment gateway simulator for the length of a run.
struct PaymentFaults {
    http: reqwest::Client,
    url: String,
}

impl PaymentFaults {
    /// Sets the gateway's fault rates to refuse `rate.percent` of card operations.
    async fn inject(rate: &PaymentFaultRate, seed: u64) -> Result<Self> {
        let percent = rate.percent;
        let base = &rate.gateway_url;
        let url = format!("{}/control/faults", base.trim_end_matches('/'));
        // The simulator draws a 5xx first, then a decline among the requests that got through:
        // half of `rate` as 5xx, and the other half as a share of what is left.
        let half = percent / 200.0;
        let decline_rate = if half < 1.0 {
            (half / (1.0 - half)).min(1.0)
        } else {
            1.0
        };
        let http = reqwest::Client::new();
        let answer = http
            .post(&url)
            .json(&json!({
                "decline_rate": decline_rate,
                "error_5xx_rate": half,
                "seed": seed,
            }))
            .send()
            .await
            .with_context(|| format!("setting the gateway's faults at {url}"))?;
        ensure!(
            answer.status().is_success(),
            "the gateway at {url} refused the faults: {}",
            answer.status()
        );
        eprintln!(
            "velka simulate: the gateway refuses {percent}% of card operations \
             (half declined, half 5xx) until the end of the run"
        );
        Ok(Self { http, url })
    }

    /// Puts the gateway back to no faults; a failure is only reported.
    async fn restore(self) {
        let restored = self.http.post(&self.url).json(&json!({})).send().await;
        if !restored.is_ok_and(|answer| answer.status().is_success()) {
            eprintln!(
                "velka simulate: could not clear the gateway's faults at {}",
                self.url
            );
        }
    }
}

/// The server's manual clock, moved forward `speed` seconds every real second.
struct SimulatedTime {
    task: tokio::task::JoinHandle<()>,
}

impl SimulatedTime {
    /// Checks the server's clock is manual, then starts moving it.
    async fn start(api: &Api, speed: u32) -> Result<Self> {
        let token = api.token(Role::Service, "traffic-simulator-clock")?;
        let reading = api
            .send(Method::GET, "/v1/admin/clock", Some(&token), None, None)
            .await
            .context("reading the server's clock")?;
        ensure!(
            reading.status.is_success(),
            "reading the server's clock answered {}: {}",
            reading.status,
            reading.body
        );
        ensure!(
            reading.body["manual"] == json!(true),
            "--clock simulated needs a server started with `--clock manual` (VELKA_CLOCK=manual)"
        );
        eprintln!(
            "velka simulate: simulated clock from {}, {speed} s per real second",
            reading.body["now"]
        );
        let api = api.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let body = json!({ "advance_seconds": speed });
                match api
                    .send(
                        Method::POST,
                        "/v1/admin/clock",
                        Some(&token),
                        None,
                        Some(&body),
                    )
                    .await
                {
                    Ok(reply) if reply.status.is_success() => {}
                    Ok(reply) => eprintln!(
                        "velka simulate: moving the clock answered {}: {}",
                        reply.status, reply.body
                    ),
                    Err(error) => eprintln!("velka simulate: moving the clock failed: {error}"),
                }
            }
        });
        Ok(Self { task })
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// A command line's duration: `30s`, `2m`, `1h`, `500ms` or a number of seconds.
pub fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{raw:?}: the unit must be ms, s, m or h")),
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 7.0 * 86_400.0 {
        return Err(format!("{raw:?} must be more than 0 and at most a week"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}
