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

use crate::config::{BenchLagArgs, Global};
use anyhow::{Context, bail};
use http_edge::{Role, TokenKeys};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// One client's view of the server.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| path.to_owned())?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let (status, answer) = self
            .send(reqwest::Method::POST, path, token, Some(body))
            .await?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// Polls the trip until its `status` is `want`; returns the time it took and the round trip
    /// of the last (successful) poll.
    async fn wait_for(
        &self,
        trip_id: &str,
        token: &str,
        want: &str,
    ) -> anyhow::Result<(Duration, Duration)> {
        let started = Instant::now();
        let path = format!("/v1/trips/{trip_id}");
        loop {
            let sent = Instant::now();
            let (status, body) = self
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
}

fn token(keys: &TokenKeys, role: Role, subject: &str) -> anyhow::Result<String> {
    Ok(keys.issue(role, subject, chrono::Duration::days(1), chrono::Utc::now())?)
}

/// `velka bench lag`.
pub async fn lag(global: &Global, args: BenchLagArgs) -> anyhow::Result<()> {
    let (url, _options) = crate::bench::recreate_bench_database(&global.database_url).await?;
    let secret = format!("bench-{}", uuid::Uuid::new_v4());
    let keys = TokenKeys::from_secret(secret.as_bytes());
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--addr", "127.0.0.1:0", "--clock", "system"])
        .env("DATABASE_URL", &url)
        .env("VELKA_JWT_SECRET", &secret)
        .env("VELKA_NO_NATS", "1")
        .env("VELKA_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting velka serve")?;
    let stdout = server.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("velka: listening on ") {
                return Ok(url.trim().to_owned());
            }
        }
        bail!("velka serve exited before listening")
    })
    .await
    .context("velka serve did not listen within 60 s")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base,
    };

    // The cast: one customer and one car per worker.
    let fleet = token(&keys, Role::Fleet, "bench-fleet")?;
    let support = token(&keys, Role::Support, "bench-support")?;
    let mut cast = Vec::new();
    for n in 0..args.workers {
        let car = client
            .post(
                "/v1/vehicles",
                Some(&fleet),
                json!({
                    "plate": format!("А{:03}ВС{:03}", n % 1000, 77 + n / 1000),
                    "vin": format!("XW8ZZZ61Z{:08}", n),
                    "model": "Kia Rio",
                    "lat": 55.7600 + f64::from(n) * 0.0001,
                    "lon": 37.6200,
                    "fuel_percent": 80,
                    "odometer_km": 12_000,
                }),
            )
            .await?;
        let customer = client
            .post(
                "/v1/customers",
                None,
                json!({
                    "name": format!("Bench Customer {n}"),
                    "phone": format!("+7916{:07}", n),
                    "email": format!("bench{n}@velka.example"),
                    "birth_date": "1990-04-12",
                    "licence": {"number": format!("77 {:02} {:06}", n % 100, n),
                                "issued_on": "2015-06-01", "expires_on": "2035-06-01"},
                }),
            )
            .await?;
        let customer_id = customer["customer_id"].as_str().unwrap_or_default();
        client
            .post(
                &format!("/v1/customers/{customer_id}/verification"),
                Some(&support),
                json!({"decision": "approved"}),
            )
            .await?;
        cast.push((
            token(&keys, Role::Customer, customer_id)?,
            car["vehicle_id"].as_str().unwrap_or_default().to_owned(),
        ));
    }
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
                let (lag, rtt) = client.wait_for(&trip_id, &me, "driving").await?;
                lags.push(lag);
                baseline.push(rtt);
                ticker.tick().await;
                client
                    .post(&format!("/v1/trips/{trip_id}/end"), Some(&me), json!({}))
                    .await?;
                let (lag, rtt) = client.wait_for(&trip_id, &me, "ended").await?;
                lags.push(lag);
                baseline.push(rtt);
            }
            anyhow::Ok((lags, baseline))
        }));
    }
    let mut lags = Vec::new();
    let mut baseline = Vec::new();
    for task in tasks {
        let (l, b) = task.await??;
        lags.extend(l);
        baseline.extend(b);
    }
    let _ = server.start_kill();
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
