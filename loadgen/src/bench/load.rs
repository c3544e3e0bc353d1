//! `velka bench commands` and `velka bench peak`: the server under load over HTTP, each against
//! a baseline measured in the same run.
//!
//! Both start a real `velka serve` on the scratch database `<name>_bench` (see
//! [`super::http`]) and set up verified customers and cars through the API. Each customer
//! drives its own car through a trip story, one command after another: start, telemetry, park,
//! resume, telemetry, end — so no command loses a race it would not lose in life.
//!
//! - `commands` ramps the number of closed-loop clients (1, 2, 4, … by default), finds the knee
//!   (the fewest clients reaching 90% of the best throughput) and runs pgbench there, one
//!   single-row `INSERT` per transaction, on the same PostgreSQL: commands/s over inserts/s is the
//!   headline ratio.
//! - `peak` sends requests on a fixed schedule (open loop) at `rate` per second, about 80% queries
//!   (nearby cars, trip reads, the GBFS vehicle feed) and 20% commands; each latency counts from
//!   the request's scheduled time, so a slow server cannot hide its delay by slowing the sender
//!   (no coordinated omission). Meanwhile it samples the projections' lag from
//!   `GET /v1/admin/projections` and the server's resident memory from `/proc/<pid>/status`. The
//!   baseline, measured before the load, is the unloaded latency of the same queries and the
//!   idle server's memory.

use super::Setup;
use super::http::{Actor, Client, Server, cast, quantile_ms, token};
use crate::error::{Context, Result, unexpected};
use http_edge::Role;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where a customer is in its trip story.
#[derive(Default)]
struct Story {
    /// The trip in progress, if any.
    trip_id: Option<String>,
    /// The next step: 0 start, 1 telemetry, 2 park, 3 resume, 4 telemetry, 5 end.
    step: u8,
    /// Telemetry readings sent, so the odometer only grows.
    readings: u32,
}

/// One actor and its story, driven by one task at a time.
struct Driver {
    actor: Actor,
    story: Story,
}

/// What one command did.
struct Outcome {
    /// A short name of the command, for the error counts.
    kind: &'static str,
    /// The answer's status; `None` when no answer came (connection error or timeout).
    status: Option<u16>,
}

impl Driver {
    /// Sends the next command of the story; a refused or failed step ends the trip so the story
    /// starts over cleanly.
    async fn step(&mut self, client: &Client, telematics: &str) -> Outcome {
        let (kind, method, path, token, body): (_, _, String, &str, Value) = match self.story.step {
            0 => (
                "start",
                reqwest::Method::POST,
                "/v1/trips".to_owned(),
                &self.actor.token,
                json!({"vehicle_id": self.actor.vehicle_id}),
            ),
            1 | 4 => {
                self.story.readings += 1;
                let away = if self.story.step == 1 { 0.002 } else { 0.0 };
                (
                    "telemetry",
                    reqwest::Method::POST,
                    format!("/v1/vehicles/{}/telemetry", self.actor.vehicle_id),
                    telematics,
                    json!({
                        "lat": self.actor.lat + away,
                        "lon": self.actor.lon,
                        "fuel_percent": 80,
                        "odometer_km": 12_000.0 + f64::from(self.story.readings) * 0.5,
                        "doors_locked": self.story.step == 4,
                    }),
                )
            }
            2 | 3 | 5 => {
                let trip = self.story.trip_id.clone().unwrap_or_default();
                let (kind, verb) = match self.story.step {
                    2 => ("park", "park"),
                    3 => ("resume", "resume"),
                    _ => ("end", "end"),
                };
                (
                    kind,
                    reqwest::Method::POST,
                    format!("/v1/trips/{trip}/{verb}"),
                    &self.actor.token,
                    json!({}),
                )
            }
            _ => unreachable!("the story has six steps"),
        };
        let answer = client.send(method, &path, Some(token), Some(body)).await;
        let status = answer.as_ref().ok().map(|(status, _)| status.as_u16());
        match answer {
            Ok((status, body)) if status.is_success() => {
                if self.story.step == 0 {
                    self.story.trip_id = body["trip_id"].as_str().map(str::to_owned);
                }
                self.story.step = (self.story.step + 1) % 6;
                if self.story.step == 0 {
                    self.story.trip_id = None;
                }
            }
            Ok((status, _)) if status == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                // Refused at the door (or a dependency was down): nothing changed, so the same
                // step is tried again next time, as a client honouring Retry-After would.
            }
            _ => {
                // Leave the story in a clean state: end the trip if one is open. If that end is
                // not answered either, the trip stays open and the next step ends it (else every
                // later start would be refused: the customer still has a trip).
                self.story.step = 0;
                if let Some(trip) = self.story.trip_id.clone() {
                    let ended = client
                        .send(
                            reqwest::Method::POST,
                            &format!("/v1/trips/{trip}/end"),
                            Some(&self.actor.token),
                            Some(json!({})),
                        )
                        .await;
                    match ended {
                        // Ended now, or no longer open.
                        Ok((status, _)) if status.is_success() || status.is_client_error() => {
                            self.story.trip_id = None;
                        }
                        _ => self.story.step = 5,
                    }
                }
            }
        }
        Outcome { kind, status }
    }
}

fn is_ok(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..300).contains(&s))
}

/// The command ramp's one step.
struct Step {
    clients: u32,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// What `velka bench commands` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct CommandsConfig {
    /// Total time of the ramp (split evenly over the client counts), e.g. `30s`.
    #[arg(long = "duration", default_value = "30s", value_parser = super::parse_seconds)]
    pub duration_s: u64,
    /// Concurrent clients, one ramp step per value; each client drives its own customer and car.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8, 16, 32])]
    pub clients: Vec<u32>,
}

/// `velka bench commands`.
pub async fn commands(setup: &Setup, args: CommandsConfig) -> Result<()> {
    let server = Server::start(setup).await?;
    let clients_max = args.clients.iter().copied().max().unwrap_or(1);
    let client = Client::new(server.base.clone(), clients_max as usize * 2)?;
    let telematics = token(&server.keys, Role::Service, "bench-telematics")?;
    let drivers: Vec<Arc<tokio::sync::Mutex<Driver>>> = cast(&server, &client, clients_max)
        .await?
        .into_iter()
        .map(|actor| {
            Arc::new(tokio::sync::Mutex::new(Driver {
                actor,
                story: Story::default(),
            }))
        })
        .collect();
    let step_time = Duration::from_secs_f64(
        (args.duration_s as f64 / args.clients.len().max(1) as f64).max(1.0),
    );
    println!(
        "velka bench commands: clients {:?}, {:.1} s each, database {}",
        args.clients,
        step_time.as_secs_f64(),
        event_store::database::redacted(&server.url)
    );
    // Warm up: one short story per client.
    run_step(&client, &drivers, &telematics, Duration::from_millis(500)).await?;
    let mut steps = Vec::new();
    for &clients in &args.clients {
        let mut timings = run_step(
            &client,
            &drivers[..clients as usize],
            &telematics,
            step_time,
        )
        .await?;
        let errors = timings.iter().filter(|(_, ok)| !ok).count();
        let mut latencies: Vec<Duration> = timings.drain(..).map(|(d, _)| d).collect();
        let done = latencies.len() - errors;
        let step = Step {
            clients,
            rate: done as f64 / step_time.as_secs_f64(),
            p50_ms: quantile_ms(&mut latencies, 0.50),
            p99_ms: quantile_ms(&mut latencies, 0.99),
            errors,
        };
        println!(
            "  clients={clients}: {:.0} commands/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            step.rate, step.p50_ms, step.p99_ms, step.errors
        );
        steps.push(step);
    }
    let best = steps.iter().map(|s| s.rate).fold(0.0, f64::max);
    let knee = steps
        .iter()
        .find(|s| s.rate >= 0.9 * best)
        .context("no ramp step ran")?;

    // The baseline: pgbench at the knee's concurrency, on the same server, now.
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&server.url)?;
    let pool = event_store::database::connect(&server.url, 2).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, stream_id text NOT NULL, payload jsonb NOT NULL)")
        .execute(&pool)
        .await?;
    pool.close().await;
    let baseline_s = step_time.as_secs().max(2);
    let baseline = match &setup.pgbench {
        Some(pgbench) => {
            super::pgbench_inserts(setup, pgbench, &options, knee.clients, baseline_s)?
        }
        None => bail!("pgbench is not installed: the baseline needs it"),
    };
    println!(
        "  baseline: pgbench, {} clients, {baseline:.0} single-row inserts/s",
        knee.clients
    );
    let rss = server.rss_kb().unwrap_or(0);
    drop(server);
    println!(
        "result: bench=commands clients={} rate={:.0} p50_ms={:.2} p99_ms={:.2} errors={} best_rate={best:.0} rss_mb={:.0} baseline_rate={baseline:.0} baseline=pgbench ratio={:.2}",
        knee.clients,
        knee.rate,
        knee.p50_ms,
        knee.p99_ms,
        knee.errors,
        rss as f64 / 1024.0,
        if baseline > 0.0 {
            knee.rate / baseline
        } else {
            0.0
        }
    );
    Ok(())
}

/// Each driver runs its story in a closed loop for `time`; returns every command finished in
/// time with its latency and whether it succeeded. A story in progress at the end is finished
/// (not counted) so the next step starts from idle cars.
async fn run_step(
    client: &Client,
    drivers: &[Arc<tokio::sync::Mutex<Driver>>],
    telematics: &str,
    time: Duration,
) -> Result<Vec<(Duration, bool)>> {
    let deadline = Instant::now() + time;
    let mut tasks = Vec::new();
    for driver in drivers {
        let (driver, client, telematics) = (driver.clone(), client.clone(), telematics.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut driver = driver.lock().await;
            let mut done = Vec::new();
            loop {
                let t0 = Instant::now();
                let outcome = driver.step(&client, &telematics).await;
                let finished = Instant::now();
                if finished <= deadline {
                    done.push((finished - t0, is_ok(outcome.status)));
                } else if driver.story.step == 0 {
                    break;
                }
            }
            done
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("a bench client panicked")?);
    }
    Ok(all)
}

/// What kind of request a scheduled slot sends.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Nearby,
    TripRead,
    Gbfs,
    Command,
}

/// One scheduled request's fate.
struct Sample {
    kind: Kind,
    /// From the scheduled send time to the end of the answer.
    latency: Duration,
    /// `kind/status` of a failure (`kind/none` when no answer came).
    error: Option<String>,
}

/// What `velka bench peak` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct PeakConfig {
    /// Seconds of load, e.g. `60s`.
    #[arg(long = "duration", default_value = "60s", value_parser = super::parse_seconds)]
    pub duration_s: u64,
    /// Requests per second sent on a fixed schedule, whatever the answers' speed.
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// Percentage of requests that are commands (the rest are queries).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub command_percent: u32,
    /// Customers and cars set up before the load (each in at most one trip at a time).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub cars: u32,
}

/// `velka bench peak`.
pub async fn peak(setup: &Setup, args: PeakConfig) -> Result<()> {
    let server = Server::start(setup).await?;
    let client = Client::new(server.base.clone(), 1024)?;
    let telematics = token(&server.keys, Role::Service, "bench-telematics")?;
    let operator = token(&server.keys, Role::Service, "bench-operator")?;
    let actors = cast(&server, &client, args.cars).await?;
    let drivers: Arc<Vec<tokio::sync::Mutex<Driver>>> = Arc::new(
        actors
            .iter()
            .cloned()
            .map(|actor| {
                tokio::sync::Mutex::new(Driver {
                    actor,
                    story: Story::default(),
                })
            })
            .collect(),
    );
    // Trips to read: every driver's first trip, started (and, for half, ended) before the load.
    let mut trips = Vec::new();
    for (n, driver) in drivers.iter().enumerate() {
        let mut driver = driver.lock().await;
        driver.step(&client, &telematics).await;
        if let Some(trip) = driver.story.trip_id.clone() {
            trips.push((trip, driver.actor.token.clone()));
        }
        if n % 2 == 0 {
            for _ in 0..5 {
                driver.step(&client, &telematics).await;
            }
        }
    }
    let trips = Arc::new(trips);
    let actors = Arc::new(actors);

    // The baseline: the same queries, one at a time, on the idle server.
    let idle_rss_kb = server.rss_kb().unwrap_or(0);
    let mut unloaded = Vec::new();
    for n in 0..300usize {
        let kind = [Kind::Nearby, Kind::TripRead, Kind::Gbfs][n % 3];
        let t0 = Instant::now();
        query(&client, kind, n, &actors, &trips).await?;
        unloaded.push(t0.elapsed());
    }
    let baseline_p50 = quantile_ms(&mut unloaded, 0.50);
    let baseline_p99 = quantile_ms(&mut unloaded, 0.99);
    println!(
        "velka bench peak: {} requests/s for {} s ({}% commands), {} cars, database {}",
        args.rate,
        args.duration_s,
        args.command_percent,
        args.cars,
        event_store::database::redacted(&server.url)
    );
    println!(
        "  baseline (idle): queries p50 {baseline_p50:.2} ms, p99 {baseline_p99:.2} ms; server RSS {:.0} MB",
        idle_rss_kb as f64 / 1024.0
    );

    let held_before = scrape(&client)
        .await
        .map(|text| metric_sum(&text, "velka_log_held_back_microseconds_total"));
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Sample>();
    let total = u64::from(args.rate) * args.duration_s;
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs(args.duration_s);
    // Samplers: the projections' lag and the server's memory, until the load ends.
    let lag_task = {
        let (client, operator) = (client.clone(), operator.clone());
        tokio::spawn(async move {
            let mut lags = Vec::new();
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok((status, body)) = client
                    .send(
                        reqwest::Method::GET,
                        "/v1/admin/projections",
                        Some(&operator),
                        None,
                    )
                    .await
                    && status.is_success()
                {
                    let worst = body
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["lag_ms"].as_i64())
                        .max()
                        .unwrap_or(0);
                    lags.push(Duration::from_millis(worst.max(0) as u64));
                }
            }
            lags
        })
    };
    let mut rss_samples = Vec::new();
    let next_command = Arc::new(AtomicUsize::new(0));
    let mut sent = 0u64;
    let mut rss_next = start;
    while sent < total {
        let now = Instant::now();
        let due = start + Duration::from_secs_f64(sent as f64 / f64::from(args.rate));
        if due > now {
            tokio::time::sleep_until(due.into()).await;
            continue;
        }
        if now >= rss_next {
            rss_samples.extend(server.rss_kb());
            rss_next = now + Duration::from_millis(500);
        }
        // Everything due by now goes out now, each timed from its own scheduled instant.
        while sent < total {
            let due = start + Duration::from_secs_f64(sent as f64 / f64::from(args.rate));
            if due > now {
                break;
            }
            let n = sent as usize;
            // A fixed interleaving: command_percent of every hundred slots are commands.
            let kind = if (n % 100) < args.command_percent as usize {
                Kind::Command
            } else {
                match n % 10 {
                    0..=4 => Kind::Nearby,
                    5..=8 => Kind::TripRead,
                    _ => Kind::Gbfs,
                }
            };
            let (client, sender, actors, trips, drivers, next_command, telematics) = (
                client.clone(),
                sender.clone(),
                actors.clone(),
                trips.clone(),
                drivers.clone(),
                next_command.clone(),
                telematics.clone(),
            );
            tokio::spawn(async move {
                let error = if kind == Kind::Command {
                    let index = next_command.fetch_add(1, Ordering::Relaxed) % drivers.len();
                    let mut driver = drivers[index].lock().await;
                    let outcome = driver.step(&client, &telematics).await;
                    (!is_ok(outcome.status)).then(|| {
                        format!(
                            "{}/{}",
                            outcome.kind,
                            outcome.status.map_or("none".to_owned(), |s| s.to_string())
                        )
                    })
                } else {
                    match query(&client, kind, n, &actors, &trips).await {
                        Ok(()) => None,
                        Err(error) => Some(format!("{kind:?}/{error}").to_lowercase()),
                    }
                };
                let _ = sender.send(Sample {
                    kind,
                    latency: due.elapsed(),
                    error,
                });
            });
            sent += 1;
        }
    }
    let sending_took = start.elapsed();
    drop(sender);
    let mut samples = Vec::new();
    while let Some(sample) = receiver.recv().await {
        if Instant::now() < end {
            rss_samples.extend(server.rss_kb());
        }
        samples.push(sample);
    }
    rss_samples.extend(server.rss_kb());
    let mut lags = lag_task.await.context("the lag sampler panicked")?;
    // Over the load: how long the log's newest committed events waited behind a transaction in
    // flight (the horizon), and how long a projector's batch took (the worst projector's median
    // and 99th percentile, as the server's summaries have them).
    let after = scrape(&client).await;
    let held_share = match (held_before, &after) {
        (Some(before), Some(text)) => {
            let held_us = metric_sum(text, "velka_log_held_back_microseconds_total") - before;
            Some(held_us / 1e6 / sending_took.as_secs_f64().max(1e-9))
        }
        _ => None,
    };
    let batch_ms = |quantile: &str| {
        after.as_deref().map_or(0.0, |text| {
            worst(text, "velka_projector_batch_seconds{", quantile) * 1000.0
        })
    };
    let (batch50, batch99) = (batch_ms("0.5"), batch_ms("0.99"));
    drop(server);

    let errors: usize = samples.iter().filter(|s| s.error.is_some()).count();
    let mut by_error: BTreeMap<String, usize> = BTreeMap::new();
    for sample in &samples {
        if let Some(error) = &sample.error {
            *by_error.entry(error.clone()).or_default() += 1;
        }
    }
    let ok = samples.len() - errors;
    let rate = ok as f64 / sending_took.as_secs_f64().max(args.duration_s as f64);
    let mut all: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    let mut queries: Vec<Duration> = samples
        .iter()
        .filter(|s| s.kind != Kind::Command)
        .map(|s| s.latency)
        .collect();
    let mut commands: Vec<Duration> = samples
        .iter()
        .filter(|s| s.kind == Kind::Command)
        .map(|s| s.latency)
        .collect();
    let (p50, p99) = (quantile_ms(&mut all, 0.5), quantile_ms(&mut all, 0.99));
    let (q50, q99) = (
        quantile_ms(&mut queries, 0.5),
        quantile_ms(&mut queries, 0.99),
    );
    let (c50, c99) = (
        quantile_ms(&mut commands, 0.5),
        quantile_ms(&mut commands, 0.99),
    );
    let (lag50, lag99) = (quantile_ms(&mut lags, 0.5), quantile_ms(&mut lags, 0.99));
    let rss_peak_kb = rss_samples.iter().copied().max().unwrap_or(0);
    println!(
        "  sent {} requests in {:.1} s; {ok} answered 2xx, {errors} errors",
        samples.len(),
        sending_took.as_secs_f64()
    );
    for (error, count) in &by_error {
        println!("    {error}: {count}");
    }
    println!(
        "  latency from the scheduled time: all p50 {p50:.1} ms p99 {p99:.1} ms; queries p50 {q50:.1} p99 {q99:.1}; commands p50 {c50:.1} p99 {c99:.1}"
    );
    println!(
        "  projection lag (worst projector, {} samples): p50 {lag50:.0} ms, p99 {lag99:.0} ms; server RSS peak {:.0} MB",
        lags.len(),
        rss_peak_kb as f64 / 1024.0
    );
    let held_percent = held_share.map_or(-1.0, |share| share * 100.0);
    println!(
        "  projector batch (worst projector): p50 {batch50:.1} ms, p99 {batch99:.1} ms; newest events held back behind a transaction in flight {held_percent:.1}% of the time"
    );
    println!(
        "result: bench=peak target_rate={} rate={rate:.0} requests={} errors={errors} p50_ms={p50:.1} p99_ms={p99:.1} query_p50_ms={q50:.1} query_p99_ms={q99:.1} command_p50_ms={c50:.1} command_p99_ms={c99:.1} lag_p50_ms={lag50:.0} lag_p99_ms={lag99:.0} batch_p50_ms={batch50:.1} batch_p99_ms={batch99:.1} held_back_percent={held_percent:.1} rss_mb={:.0} baseline_rss_mb={:.0} baseline_query_p50_ms={baseline_p50:.2} baseline_query_p99_ms={baseline_p99:.2}",
        args.rate,
        samples.len(),
        rss_peak_kb as f64 / 1024.0,
        idle_rss_kb as f64 / 1024.0,
    );
    Ok(())
}

/// The server's `/metrics` text, if it answers.
async fn scrape(client: &Client) -> Option<String> {
    let response = client
        .http
        .get(format!("{}/metrics", client.base))
        .send()
        .await
        .ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}

/// The sum of every series of the metric `name` (any labels) in a Prometheus text page.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The largest value among the series starting `prefix` (a name and its opening brace) with
/// `quantile="<quantile>"`.
fn worst(text: &str, prefix: &str, quantile: &str) -> f64 {
    let label = format!("quantile=\"{quantile}\"");
    text.lines()
        .filter(|line| line.starts_with(prefix) && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .filter(|value| value.is_finite())
        .fold(0.0, f64::max)
}

/// One query of the given kind; an error names the status.
async fn query(
    client: &Client,
    kind: Kind,
    n: usize,
    actors: &[Actor],
    trips: &[(String, String)],
) -> Result<()> {
    let actor = &actors[n % actors.len()];
    let (path, token) = match kind {
        Kind::Nearby => (
            format!(
                "/v1/vehicles/available?lat={:.5}&lon={:.5}&radius_m=1500&limit=20",
                actor.lat, actor.lon
            ),
            Some(actor.token.as_str()),
        ),
        Kind::TripRead if !trips.is_empty() => {
            let (trip, token) = &trips[n % trips.len()];
            (format!("/v1/trips/{trip}"), Some(token.as_str()))
        }
        _ => ("/gbfs/v3/vehicle_status.json".to_owned(), None),
    };
    let mut request = client.http.get(format!("{}{path}", client.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|_| unexpected("none"))?;
    let status = response.status();
    let _ = response.bytes().await.map_err(|_| unexpected("none"))?;
    if !status.is_success() {
        bail!("{}", status.as_u16());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE velka_log_held_back_microseconds_total counter
velka_log_held_back_microseconds_total 1500
velka_log_held_back_microseconds_total_other 9
velka_projector_batch_seconds{projector=\"trips_view\",quantile=\"0.5\"} 0.004
velka_projector_batch_seconds{projector=\"trips_view\",quantile=\"0.99\"} 0.02
velka_projector_batch_seconds{projector=\"vehicles_view\",quantile=\"0.5\"} 0.007
velka_projector_batch_seconds{projector=\"fines_view\",quantile=\"0.5\"} NaN
";

    #[test]
    fn a_metric_is_summed_by_its_exact_name() {
        assert_eq!(
            metric_sum(PAGE, "velka_log_held_back_microseconds_total"),
            1500.0
        );
        assert_eq!(metric_sum(PAGE, "velka_missing"), 0.0);
    }

    #[test]
    fn the_worst_series_of_a_quantile_is_the_largest_finite_one() {
        let prefix = "velka_projector_batch_seconds{";
        assert_eq!(worst(PAGE, prefix, "0.5"), 0.007);
        assert_eq!(worst(PAGE, prefix, "0.99"), 0.02);
    }
}
