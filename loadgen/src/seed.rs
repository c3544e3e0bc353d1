//! `velka seed --cars N --customers M`: loads a generated city (`fixtures::population`) into a
//! running server through its command API, so the events are exactly those real clients cause.
//! Customers register, submit their documents and are approved by a support agent.
//!
//! Requests run concurrently (bounded) and each carries an `Idempotency-Key` derived from the
//! seed and the item's index, so a rerun with the same seed changes nothing and answers with the
//! same ids. A car or customer whose plate, VIN, phone or e-mail is already taken (by another
//! seed) is skipped and counted. Progress goes to stderr; the summary to stdout.

use crate::client::{Api, Reply};
use crate::error::{Context, Result};
use crate::progress::Progress;
use fixtures::population::{Car, Person, Population};
use futures::StreamExt;
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What to load.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub cars: usize,
    pub customers: usize,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Print a progress line on stderr.
    pub progress: bool,
}

/// A car as loaded: its id, or `None` if its plate or VIN was taken by another.
#[derive(Clone, Debug)]
pub struct LoadedCar {
    pub car: Car,
    pub vehicle_id: Option<String>,
}

/// A customer as loaded: its id, or `None` if its phone or e-mail was taken by another.
#[derive(Clone, Debug)]
pub struct LoadedCustomer {
    pub person: Person,
    pub customer_id: Option<String>,
}

/// What `load` did.
#[derive(Debug)]
pub struct Loaded {
    pub cars: Vec<LoadedCar>,
    pub customers: Vec<LoadedCustomer>,
    pub requests: usize,
    pub elapsed: Duration,
}

impl Loaded {
    /// The customers that exist and are verified.
    pub fn verified(&self) -> impl Iterator<Item = (&Person, &str)> {
        self.customers
            .iter()
            .filter_map(|c| c.customer_id.as_deref().map(|id| (&c.person, id)))
    }
}

/// The idempotency key of one step of one item: `seed-<seed>-<what>-<index>`.
fn key(seed: u64, what: &str, index: usize) -> String {
    format!("seed-{seed}-{what}-{index}")
}

enum Job {
    Car(usize),
    Customer(usize),
}

enum Done {
    Car(usize, Option<String>),
    Customer(usize, Option<String>),
}

/// Loads `plan`'s cars and customers through `api`.
pub async fn load(api: &Api, plan: &Plan) -> Result<Loaded> {
    let population = Population::moscow()?;
    let cars = population.cars(plan.seed, plan.cars)?;
    let customers = population.customers(plan.seed, plan.customers)?;
    let fleet = api.token(Role::Fleet, "seed")?;
    let support = api.token(Role::Support, "seed")?;
    let requests = AtomicUsize::new(0);
    let total = plan.cars + plan.customers;
    let started = Instant::now();
    let progress = plan
        .progress
        .then(|| Progress::new("velka seed", Some(total as u64), Duration::from_secs(1)));
    let item_done = || {
        if let Some(progress) = &progress {
            let requests = requests.load(Ordering::Relaxed);
            let per_s = requests as f64 / started.elapsed().as_secs_f64().max(1e-3);
            progress.set_message(format!("({per_s:.0} requests/s)"));
            progress.inc(1);
        }
    };

    let jobs = (0..plan.cars)
        .map(Job::Car)
        .chain((0..plan.customers).map(Job::Customer));
    let results: Vec<Result<Done>> = futures::stream::iter(jobs)
        .map(|job| {
            let (cars, customers) = (&cars, &customers);
            let (fleet, support) = (&fleet, &support);
            let (requests, item_done) = (&requests, &item_done);
            async move {
                let result = match job {
                    Job::Car(i) => add_car(api, plan.seed, i, &cars[i], fleet, requests)
                        .await
                        .map(|id| Done::Car(i, id)),
                    Job::Customer(i) => {
                        add_customer(api, plan.seed, i, &customers[i], support, requests)
                            .await
                            .map(|id| Done::Customer(i, id))
                    }
                };
                item_done();
                result
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    if let Some(progress) = progress {
        progress.finish();
    }

    let mut loaded = Loaded {
        cars: cars
            .into_iter()
            .map(|car| LoadedCar {
                car,
                vehicle_id: None,
            })
            .collect(),
        customers: customers
            .into_iter()
            .map(|person| LoadedCustomer {
                person,
                customer_id: None,
            })
            .collect(),
        requests: requests.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    };
    let mut failures = 0;
    let mut first_failure = None;
    for result in results {
        match result {
            Ok(Done::Car(i, id)) => loaded.cars[i].vehicle_id = id,
            Ok(Done::Customer(i, id)) => loaded.customers[i].customer_id = id,
            Err(error) => {
                failures += 1;
                first_failure.get_or_insert(error);
            }
        }
    }
    match first_failure {
        Some(first) => Err(first).context(format!("{failures} of {total} items failed; the first")),
        None => Ok(loaded),
    }
}

/// The one answer a seeding step accepts, besides success: the value is taken by another.
fn taken(reply: &Reply) -> bool {
    reply.status == StatusCode::CONFLICT && reply.problem() == "already-taken"
}

fn check(reply: Reply, what: &str) -> Result<Reply> {
    if reply.status.is_success() {
        Ok(reply)
    } else {
        bail!("{what} answered {}: {}", reply.status, reply.body)
    }
}

/// `POST /v1/vehicles` for one car; `None` if its plate or VIN is taken.
async fn add_car(
    api: &Api,
    seed: u64,
    index: usize,
    car: &Car,
    fleet: &str,
    requests: &AtomicUsize,
) -> Result<Option<String>> {
    let body = json!({
        "plate": car.plate,
        "vin": car.vin,
        "model": car.model,
        "lat": car.position.lat,
        "lon": car.position.lon,
        "fuel_percent": car.fuel_percent,
        "odometer_km": car.odometer_km,
    });
    requests.fetch_add(1, Ordering::Relaxed);
    let reply = api
        .command("/v1/vehicles", Some(fleet), &key(seed, "car", index), &body)
        .await?;
    if taken(&reply) {
        return Ok(None);
    }
    let reply = check(reply, &format!("adding car {}", car.plate))?;
    Ok(Some(reply.str("vehicle_id")))
}

/// Registers one customer, submits their documents and approves them; `None` if their phone
/// or e-mail is taken.
async fn add_customer(
    api: &Api,
    seed: u64,
    index: usize,
    person: &Person,
    support: &str,
    requests: &AtomicUsize,
) -> Result<Option<String>> {
    let registration = json!({
        "name": person.full_name(),
        "phone": person.phone,
        "email": person.email,
        "birth_date": person.birth_date,
        "licence": {
            "number": person.licence.number,
            "issued_on": person.licence.issued_on,
            "expires_on": person.licence.expires_on,
        },
    });
    requests.fetch_add(1, Ordering::Relaxed);
    let reply = api
        .command(
            "/v1/customers",
            None,
            &key(seed, "customer", index),
            &registration,
        )
        .await?;
    if taken(&reply) {
        return Ok(None);
    }
    let name = person.full_name();
    let customer_id = check(reply, &format!("registering {name}"))?.str("customer_id");
    ensure!(
        !customer_id.is_empty(),
        "registering {name}: no customer_id"
    );

    let documents = json!({
        "passport": person.passport,
        "licence": person.licence,
        "birth_date": person.birth_date,
    });
    requests.fetch_add(1, Ordering::Relaxed);
    let path = format!("/v1/customers/{customer_id}/documents");
    let reply = api
        .command(
            &path,
            Some(support),
            &key(seed, "documents", index),
            &documents,
        )
        .await?;
    check(reply, &format!("submitting {name}'s documents"))?;

    requests.fetch_add(1, Ordering::Relaxed);
    let path = format!("/v1/customers/{customer_id}/verification");
    let reply = api
        .command(
            &path,
            Some(support),
            &key(seed, "verify", index),
            &json!({ "decision": "approved" }),
        )
        .await?;
    check(reply, &format!("approving {name}"))?;
    Ok(Some(customer_id))
}

/// `velka seed`: load, then print what was loaded.
pub async fn run(api: &Api, plan: &Plan) -> Result<()> {
    let loaded = load(api, plan)
        .await
        .with_context(|| format!("seeding {}", api.base()))?;
    let cars = loaded
        .cars
        .iter()
        .filter(|c| c.vehicle_id.is_some())
        .count();
    let customers = loaded.verified().count();
    println!(
        "velka: seeded {} (seed {}): {cars} cars ({} skipped: plate or VIN taken), {customers} verified customers ({} skipped: phone or e-mail taken); {} requests in {:.1}s",
        api.base(),
        plan.seed,
        plan.cars - cars,
        plan.customers - customers,
        loaded.requests,
        loaded.elapsed.as_secs_f64()
    );
    Ok(())
}
