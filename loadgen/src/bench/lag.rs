//! `velka bench lag`: how long after a command's answer its effect shows in the trips read
//! model, under a steady load of commands.
//!
//! It starts a real `velka serve` (this binary, system clock, no NATS) on the scratch database
//! `<name>_bench`, registers and verifies customers and adds cars through the API, then has
//! `workers` clients start and end trips at a combined `rate` per second for `duration` seconds.
//! After each command's answer (the append has committed) the client polls `GET /v1/trips/{id}`
//! every millisecond until the read model shows the new state; the time from answer to sight is
//! the lag. The baseline, measured in the same run by the same clients, is the round trip of a
//! `GET` that finds the state already there: lag minus that is the projection's own delay.

use super::Setup;
use super::http::{Client, Server};
use crate::error::{LoadError, Result};
use serde_json::json;
use std::time::{Duration, Instant};

/// Polls the trip until its `status` is `want`; returns the time it took and the round trip of
/// the last (successful) poll.
async fn wait_for(
    client: &Client,
    trip_id: &str,
    token: &str,
    want: &str,
) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let path = format!("/v1/trips/{trip_id}");
    loop {
        let sent = Instant::now();
        let (status, body) = client
            .send(reqwest::Method::GET, &path, Some(token), None)
            .await?;
        if status.is_success() && body["status"] == want {
            return Ok((started.elapsed(), sent.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("trip {trip_id} did not show as {want} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What `velka bench lag` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct LagConfig {
    /// Commands per second, all workers together.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// Concurrent clients, each with its own customer and car.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub workers: u32,
    /// Seconds of load.
    #[arg(long = "duration", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_s: u64,
}

/// `velka bench lag`.
pub async fn lag(setup: &Setup, args: LagConfig) -> Result<()> {
    let server = Server::start(setup).await?;
    let url = server.url.clone();
    let client = Client::new(server.base.clone(), 64)?;

    // The cast: one customer and one car per worker.
    let cast: Vec<(String, String)> = super::http::cast(&server, &client, args.workers)
        .await?
        .into_iter()
        .map(|actor| (actor.token, actor.vehicle_id))
        .collect();
    println!(
        "velka bench lag: {} workers, {} commands/s for {} s, database {}",
        args.workers,
        args.rate,
        args.duration_s,
        event_store::database::redacted(&url)
    );

    // Each worker starts and ends trips, one command every `workers / rate` seconds.
    let interval = Duration::from_secs_f64(f64::from(args.workers) / f64::from(args.rate));
    let deadline = Instant::now() + Duration::from_secs(args.duration_s);
    let mut tasks = Vec::new();
    for (me, car) in cast {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut lags = Vec::new();
            let mut baseline = Vec::new();
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < deadline {
                ticker.tick().await;
                let started = client
                    .post("/v1/trips", Some(&me), json!({"vehicle_id": car}))
                    .await?;
                let trip_id = started["trip_id"].as_str().unwrap_or_default().to_owned();
                let (lag, rtt) = wait_for(&client, &trip_id, &me, "driving").await?;
                lags.push(lag);
                baseline.push(rtt);
                ticker.tick().await;
                client
                    .post(&format!("/v1/trips/{trip_id}/end"), Some(&me), json!({}))
                    .await?;
                let (lag, rtt) = wait_for(&client, &trip_id, &me, "ended").await?;
                lags.push(lag);
                baseline.push(rtt);
            }
            Ok::<_, LoadError>((lags, baseline))
        }));
    }
    let mut lags = Vec::new();
    let mut baseline = Vec::new();
    for task in tasks {
        let (l, b) = task.await??;
        lags.extend(l);
        baseline.extend(b);
    }
    drop(server);
    let ms = |values: &mut Vec<Duration>, p: f64| -> f64 {
        values.sort();
        let index = ((values.len() as f64 - 1.0) * p).round() as usize;
        values
            .get(index)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let commands = lags.len();
    let rate = commands as f64 / args.duration_s as f64;
    let (p50, p99) = (ms(&mut lags, 0.50), ms(&mut lags, 0.99));
    let (b50, b99) = (ms(&mut baseline, 0.50), ms(&mut baseline, 0.99));
    println!(
        "result: bench=lag commands={commands} rate={rate:.0} p50_ms={p50:.1} p99_ms={p99:.1} baseline_get_p50_ms={b50:.1} baseline_get_p99_ms={b99:.1} ratio={:.1}",
        p50 / b50
    );
    Ok(())
}
