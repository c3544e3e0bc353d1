//! `velka serve --demo`: seeds a city through the server's own HTTP command API — the same
//! generated cars and customers as `velka seed` (seed 1), so the events are exactly those real
//! clients would cause — starts light app traffic against it (`traffic::drive`), and prints
//! where to look.
//!
//! Every request of the seed carries a fixed `Idempotency-Key`, so running the demo again against
//! the same database changes nothing and finds the same customers and cars.

use crate::client::Api;
use crate::error::Result;
use crate::seed::{Plan, load};
use crate::traffic::{Options, drive};
use http_edge::{Role, TokenKeys};
use std::future::Future;
use std::net::SocketAddr;

/// The city's seed: the default of `velka seed`, so the two load the same city.
const DEMO_SEED: u64 = 1;

/// How big the demo is.
#[derive(Clone, Copy, Debug)]
pub struct Demo {
    pub cars: usize,
    pub customers: usize,
    /// Background requests per second; 0 for none.
    pub rate: f64,
}

/// Seeds the demo city, prints how to look at it, then drives traffic until `stop`.
pub async fn run(
    addr: SocketAddr,
    keys: &TokenKeys,
    demo: Demo,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let api = Api::new(&format!("http://{addr}"), keys.clone())?;
    let started = std::time::Instant::now();
    let loaded = load(
        &api,
        &Plan {
            seed: DEMO_SEED,
            cars: demo.cars,
            customers: demo.customers,
            concurrency: 8,
            progress: false,
        },
    )
    .await?;
    let cars = loaded
        .cars
        .iter()
        .filter(|c| c.vehicle_id.is_some())
        .count();
    let verified: Vec<_> = loaded.verified().collect();
    // The last customer is yours: the background traffic drives the others.
    let Some((person, customer_id)) = verified.last() else {
        bail!("no demo customer could be registered");
    };
    let name = person.full_name();
    let token = api.token(Role::Customer, customer_id)?;
    let auditor = api.token(Role::Auditor, "demo-auditor")?;
    let base = api.base();
    let (first_car, first_model) = loaded
        .cars
        .iter()
        .find_map(|c| {
            let id = c.vehicle_id.as_deref()?;
            Some((id, format!("{}, {}", c.car.model, c.car.plate)))
        })
        .unwrap_or_default();
    let traffic = if demo.rate > 0.0 && verified.len() > 1 {
        format!(
            "{} other customers are using the app now, about {} requests/s",
            verified.len() - 1,
            demo.rate
        )
    } else {
        "no background traffic (--demo-rate 0)".to_owned()
    };
    println!(
        "\nvelka demo: {cars} cars and {} verified customers are in Moscow (seeded in {:.1}s); {traffic}.\n\
         \n  You are {name} ({customer_id}):\n    export TOKEN={token}\n\
         \n  Your trips:\n    curl -H \"Authorization: Bearer $TOKEN\" {base}/v1/customers/{customer_id}/trips\n\
         \n  Cars near Tverskaya street:\n    curl -H \"Authorization: Bearer $TOKEN\" '{base}/v1/vehicles/available?lat=55.7648&lon=37.6056&radius_m=1500'\n\
         \n  Take one ({first_model}):\n    curl -X POST -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"vehicle_id\":\"{first_car}\"}}' {base}/v1/trips\n\
         \n  A car's history (auditor):\n    curl -H 'Authorization: Bearer {auditor}' {base}/v1/streams/vehicle-{first_car}/events\n\
         \n  The public GBFS v3.0 feed (no token):\n    {base}/gbfs/v3/gbfs.json\n    {base}/gbfs/v3/vehicle_status.json\n\
         \n  Health and metrics:\n    {base}/readyz\n    {base}/metrics\n\
         \n  More tokens: velka token --role support --sub agent-1\n",
        verified.len(),
        started.elapsed().as_secs_f64(),
    );
    if demo.rate > 0.0 && verified.len() > 1 {
        let options = Options {
            rate: demo.rate,
            duration: None,
            users: verified.len() - 1,
            seed: DEMO_SEED,
            concurrency: 8,
            report: false,
            wind_down: false,
        };
        drive(api, options, stop).await?;
    }
    Ok(())
}
