//! What the HTTP benchmarks share: a real `velka serve` started on a fresh scratch database, a
//! small JSON client, the cast of verified customers and cars set up through the API, and
//! percentiles.

use super::{Setup, recreate_bench_database};
use crate::error::{Context, LoadError, Result};
use http_edge::{Role, TokenKeys};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// One client's view of the server.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
}

impl Client {
    pub(crate) fn new(base: String, max_idle: usize) -> Result<Self> {
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(max_idle)
                .tcp_nodelay(true)
                .build()?,
            base,
        })
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(reqwest::StatusCode, Value)> {
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

    pub(crate) async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Value> {
        let (status, answer) = self
            .send(reqwest::Method::POST, path, token, Some(body))
            .await?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }
}

pub(crate) fn token(keys: &TokenKeys, role: Role, subject: &str) -> Result<String> {
    Ok(keys.issue(role, subject, chrono::Duration::days(1), chrono::Utc::now())?)
}

/// A `velka serve` child process on the scratch database; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: tokio::process::Child,
    pub(crate) base: String,
    pub(crate) url: String,
    pub(crate) keys: TokenKeys,
}

impl Server {
    /// Recreates `<name>_bench` and starts this binary's `serve` on it (system clock, no NATS,
    /// a free port), waiting until it listens.
    pub(crate) async fn start(setup: &Setup) -> Result<Server> {
        Self::start_with_clock(setup, "system").await
    }

    /// [`Server::start`] with `--clock CLOCK` (`manual`: moved by `POST /v1/admin/clock`).
    pub(crate) async fn start_with_clock(setup: &Setup, clock: &str) -> Result<Server> {
        let (url, _options) = recreate_bench_database(&setup.database_url).await?;
        let secret = format!("bench-{}", uuid::Uuid::new_v4());
        let keys = TokenKeys::from_secret(secret.as_bytes());
        let mut command = tokio::process::Command::new(&setup.velka);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--clock", clock])
            .env("DATABASE_URL", &url)
            .env("VELKA_JWT_SECRET", &secret)
            .env("VELKA_NO_NATS", "1")
            .env("VELKA_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(pii_secret) = &setup.pii_secret {
            command.env("VELKA_PII_SECRET", pii_secret);
        }
        let mut child = command.spawn().context("starting velka serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
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
        Ok(Server {
            child,
            base,
            url,
            keys,
        })
    }

    /// The server's resident memory in kB (`VmRSS` in `/proc/<pid>/status`), where the platform
    /// has it.
    pub(crate) fn rss_kb(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.lines().find_map(|line| {
            line.strip_prefix("VmRSS:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    }
}

/// One verified customer and the car it drives.
#[derive(Clone)]
pub(crate) struct Actor {
    pub(crate) token: String,
    pub(crate) vehicle_id: String,
    /// The car's plate, as a fine names it.
    pub(crate) plate: String,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
}

/// Adds `n` cars (spread over central Moscow, inside the operating zone) and `n` verified
/// customers through the API, a few at a time.
pub(crate) async fn cast(server: &Server, client: &Client, n: u32) -> Result<Vec<Actor>> {
    let fleet = token(&server.keys, Role::Fleet, "bench-fleet")?;
    let support = token(&server.keys, Role::Support, "bench-support")?;
    let mut actors = Vec::new();
    let mut next = 0;
    while next < n {
        let batch: Vec<u32> = (next..n.min(next + 8)).collect();
        next += batch.len() as u32;
        let mut tasks = Vec::new();
        for i in batch {
            let (client, fleet, support, keys) = (
                client.clone(),
                fleet.clone(),
                support.clone(),
                server.keys.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let lat = 55.7400 + f64::from(i % 40) * 0.001;
                let lon = 37.5900 + f64::from(i / 40 % 40) * 0.0015;
                let plate = format!("А{:03}ВС{:03}", i % 1000, 77 + i / 1000);
                let car = client
                    .post(
                        "/v1/vehicles",
                        Some(&fleet),
                        json!({
                            "plate": plate,
                            "vin": format!("XW8ZZZ61Z{:08}", i),
                            "model": "Kia Rio",
                            "lat": lat,
                            "lon": lon,
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
                            "name": format!("Bench Customer {i}"),
                            "phone": format!("+7916{:07}", i),
                            "email": format!("bench{i}@velka.example"),
                            "birth_date": "1990-04-12",
                            "licence": {"number": format!("77 {:02} {:06}", i % 100, i),
                                        "issued_on": "2015-06-01", "expires_on": "2035-06-01"},
                        }),
                    )
                    .await?;
                let customer_id = customer["customer_id"]
                    .as_str()
                    .context("no customer_id")?
                    .to_owned();
                client
                    .post(
                        &format!("/v1/customers/{customer_id}/verification"),
                        Some(&support),
                        json!({"decision": "approved"}),
                    )
                    .await?;
                Ok::<_, LoadError>(Actor {
                    token: token(&keys, Role::Customer, &customer_id)?,
                    vehicle_id: car["vehicle_id"]
                        .as_str()
                        .context("no vehicle_id")?
                        .to_owned(),
                    plate,
                    lat,
                    lon,
                })
            }));
        }
        for task in tasks {
            actors.push(task.await??);
        }
    }
    Ok(actors)
}

/// The `p` quantile (0..=1) of `values` in milliseconds, nearest rank; NaN when empty.
pub(crate) fn quantile_ms(values: &mut [Duration], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable();
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index.min(values.len() - 1)].as_secs_f64() * 1000.0
}
