//! Harness for black-box tests: [`App::spawn`] builds and starts the real `velka` binary on a
//! fresh database and a free port, with a manual clock, and offers a small HTTP client.
//!
//! The binary is (re)built with `cargo build -p velka` on first use in each test process, so a
//! test never runs against a stale binary; set `VELKA_BIN` to use a prebuilt one instead.

use anyhow::{Context, bail};
use event_store::testing::TestDatabase;
use http_edge::{Role, TokenKeys};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The NATS server tests use (`NATS_URL`, default the local one).
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The JWT secret the spawned server uses.
pub const SECRET: &str = "black-box-test-secret";

/// The path of a current `velka` binary, built once per process.
pub fn velka_binary() -> anyhow::Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| build_velka().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_velka() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("VELKA_BIN") {
        return Ok(PathBuf::from(path));
    }
    // target/<profile>/deps/<this test> → target/<profile>/velka
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test executable is not in target/<profile>/deps")?
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "velka", "--bin", "velka"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build -p velka")?;
    if !status.success() {
        bail!("cargo build -p velka failed");
    }
    Ok(profile_dir.join("velka"))
}

/// A running server on its own database.
#[derive(Debug)]
pub struct App {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The server's database, dropped after the server has stopped.
    pub db: TestDatabase,
    /// The server's NATS subject prefix, unique to this server so parallel tests never share
    /// subjects.
    pub nats_prefix: String,
    keys: TokenKeys,
    http: reqwest::Client,
    child: Child,
    /// Extra environment the server was started with, for [`App::restart`].
    env: Vec<(String, String)>,
}

impl Drop for App {
    /// Stops the server before the database goes, so it never logs errors about a dropped
    /// database.
    fn drop(&mut self) {
        if self.child.start_kill().is_ok() {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Another server process on an [`App`]'s database ([`App::spawn_peer`]); killed when dropped.
#[derive(Debug)]
pub struct Peer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Peer {
    /// Its process id (`None` once it has been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends it `signal` (`STOP`, `CONT`, `KILL`, …) with kill(1).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the peer has exited")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// SIGKILLs it and waits for it to be gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Whether the process is stopped (by SIGSTOP, or its own pause point).
    pub fn is_stopped(&self) -> bool {
        self.pid()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .and_then(|stat| {
                let after_name = stat.rsplit_once(')')?.1.trim_start().to_owned();
                after_name.chars().next()
            })
            .is_some_and(|state| state == 'T' || state == 't')
    }

    /// What it has logged so far (stderr), line by line.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// The lines of its log at level ERROR.
    pub fn errors(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|line| line.contains("ERROR"))
            .collect()
    }

    /// `GET path` on it, as text: (status, body).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<(StatusCode, String)> {
        let response = reqwest::get(format!("{}{path}", self.base)).await?;
        Ok((response.status(), response.text().await?))
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The body's field as a string (empty if absent).
    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_default().to_owned()
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl App {
    /// Starts `velka serve` with a manual clock on a fresh database. The audit chain's head is
    /// never published (it would add events while tests count them); see [`App::spawn_with`].
    pub async fn spawn() -> anyhow::Result<App> {
        Self::spawn_with(&[]).await
    }

    /// Starts `velka serve` with a manual clock on a fresh database, with extra environment
    /// (`VELKA_GATEWAY_URL`, …).
    pub async fn spawn_with(env: &[(&str, &str)]) -> anyhow::Result<App> {
        let db = TestDatabase::new().await;
        let nats_prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (child, base) = Self::start_server(&db, &nats_prefix, &env, Stdio::inherit()).await?;
        Ok(App {
            base,
            db,
            nats_prefix,
            keys: TokenKeys::from_secret(SECRET.as_bytes()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            child,
            env,
        })
    }

    /// Kills the server (SIGKILL: no graceful stop, as in a crash) and starts it again on the
    /// same database. The manual clock starts from the wall clock again.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        let _ = self.child.wait().await;
        let (child, base) =
            Self::start_server(&self.db, &self.nats_prefix, &self.env, Stdio::inherit()).await?;
        self.child = child;
        self.base = base;
        Ok(())
    }

    /// Kills the server (SIGKILL) and starts it again with `env` instead of the environment it
    /// was started with (to arm or disarm a crash switch, say).
    pub async fn restart_with(&mut self, env: &[(&str, &str)]) -> anyhow::Result<()> {
        self.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.restart().await
    }

    /// Kills and restarts the server, then moves its fresh manual clock on to where the old one
    /// stood, so business time never steps back across the restart.
    pub async fn restart_keeping_clock(&mut self) -> anyhow::Result<()> {
        let before = self.server_now().await.ok();
        self.restart().await?;
        if let Some(before) = before {
            let behind = (before - self.server_now().await?).num_seconds() + 1;
            if behind > 0 {
                self.advance_clock(behind).await?;
            }
        }
        Ok(())
    }

    /// Waits (up to `deadline`) until the server process has exited on its own, and answers
    /// its exit code.
    pub async fn exited(&mut self, deadline: Duration) -> anyhow::Result<Option<i32>> {
        let status = tokio::time::timeout(deadline, self.child.wait())
            .await
            .context("the server did not exit")??;
        Ok(status.code())
    }

    /// The server's clock (`GET /v1/admin/clock`).
    pub async fn server_now(&self) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        let service = self.token(Role::Service, "test-clock");
        let answer = self.get("/v1/admin/clock", Some(&service)).await?;
        answer.body["now"]
            .as_str()
            .context("the clock answered no time")?
            .parse()
            .context("the clock answered something that is not a time")
    }

    /// Runs `velka audit money --gateway-url GATEWAY --at <the server's now>` on the server's
    /// database: (exit success, stdout).
    pub async fn audit_money(&self, gateway_url: &str) -> anyhow::Result<(bool, String)> {
        let at = self.server_now().await?.to_rfc3339();
        let output = Command::new(velka_binary()?)
            .args([
                "audit",
                "money",
                "--by",
                "test",
                "--gateway-url",
                gateway_url,
                "--at",
                &at,
            ])
            .env("DATABASE_URL", self.db.url())
            .env("VELKA_LOG", "warn")
            .output()
            .await?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ))
    }

    /// Waits until the payment saga has nothing to send, no overdue timer and its checkpoint
    /// at the head, three polls in a row.
    pub async fn payments_settled(&self, deadline: Duration) -> anyhow::Result<()> {
        let support = self.token(Role::Support, "agent-1");
        let mut quiet = 0;
        let started = tokio::time::Instant::now();
        loop {
            let sagas = self.get("/v1/admin/sagas", Some(&support)).await?;
            let head = sqlx_scalar(self, "SELECT coalesce(max(position), 0) FROM events").await?;
            let saga = sagas
                .body
                .as_array()
                .and_then(|all| all.iter().find(|s| s["saga"] == "payments"))
                .cloned()
                .unwrap_or(Value::Null);
            let idle = saga["commands_pending"] == 0
                && saga["checkpoint_position"].as_i64() == Some(head)
                && saga["overdue_timers"] == 0;
            quiet = if idle { quiet + 1 } else { 0 };
            if quiet >= 3 {
                return Ok(());
            }
            if started.elapsed() > deadline {
                bail!("the payment saga did not settle within {deadline:?}: {saga}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts another `velka serve` on the same database and NATS prefix — a second API node,
    /// a worker — with `env` on top of the app's environment (`VELKA_ROLE`, `VELKA_WORKER_ID`,
    /// …). Its log is kept, not shown: see [`Peer::log`].
    pub async fn spawn_peer(&self, env: &[(&str, &str)]) -> anyhow::Result<Peer> {
        let mut all = self.env.clone();
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let (mut child, base) =
            Self::start_server(&self.db, &self.nats_prefix, &all, Stdio::piped()).await?;
        let stderr = child.stderr.take().context("no stderr")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        tokio::spawn({
            let log = log.clone();
            async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut log) = log.lock() {
                        log.push(line);
                    }
                }
            }
        });
        Ok(Peer { base, child, log })
    }

    async fn start_server(
        db: &TestDatabase,
        nats_prefix: &str,
        env: &[(String, String)],
        stderr: Stdio,
    ) -> anyhow::Result<(Child, String)> {
        let binary = velka_binary()?;
        let mut child = Command::new(&binary)
            .args(["serve", "--addr", "127.0.0.1:0", "--clock", "manual"])
            .env("DATABASE_URL", db.url())
            .env("VELKA_JWT_SECRET", SECRET)
            .env(
                "VELKA_LOG",
                std::env::var("VELKA_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("VELKA_DB_CONNECTIONS", "8")
            .env("NATS_URL", nats_url())
            .env("VELKA_NATS_PREFIX", nats_prefix)
            // The relay is tested in relay/; a JetStream stream per test server would pile up.
            .env("VELKA_NO_NATS_RELAY", "1")
            // Chain heads are published only when a test asks (they are events of their own).
            .env("VELKA_AUDIT_HEAD_INTERVAL", "0")
            .env("VELKA_AUDIT_HEAD_EVERY", "0")
            // Stable across restarts, so a restarted server takes back its leases at once.
            .env("VELKA_WORKER_ID", nats_prefix)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("velka: listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("velka exited before listening")
        })
        .await
        .context("velka did not start listening within 60 s")??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((child, base))
    }

    /// A token for `role` and `subject`, signed with the server's secret.
    pub fn token(&self, role: Role, subject: &str) -> String {
        self.keys
            .issue(
                role,
                subject,
                chrono::Duration::hours(1),
                chrono::Utc::now(),
            )
            .unwrap_or_default()
    }

    /// Sends a request and reads the answer as JSON (`Null` for an empty body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        self.send_to(&self.base, method, path, token, headers, body)
            .await
    }

    /// [`send`](Self::send) to another node at `base` (a [`Peer`]).
    pub async fn send_to(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// `POST` with a JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Answer> {
        self.send(reqwest::Method::POST, path, token, &[], Some(body))
            .await
    }

    /// `GET`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Answer> {
        self.send(reqwest::Method::GET, path, token, &[], None)
            .await
    }

    /// Moves the server's manual clock forward.
    pub async fn advance_clock(&self, seconds: i64) -> anyhow::Result<()> {
        let service = self.token(Role::Service, "test-clock");
        let answer = self
            .post(
                "/v1/admin/clock",
                Some(&service),
                &serde_json::json!({ "advance_seconds": seconds }),
            )
            .await?;
        if answer.status != StatusCode::OK {
            bail!(
                "advancing the clock answered {}: {}",
                answer.status,
                answer.body
            );
        }
        Ok(())
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Polls `check` until it returns `Some`, or fails after `deadline`. For waiting on read
/// models, which follow the log a moment after a command returns.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            bail!("condition not met within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Shortcuts for setting the scene through the API itself.
impl App {
    /// Registers customer number `n` (unique phone, e-mail and licence) and has support verify
    /// them; returns the customer id.
    pub async fn verified_customer(&self, n: u32) -> anyhow::Result<String> {
        let registered = self
            .post(
                "/v1/customers",
                None,
                &serde_json::json!({
                    "name": format!("Анна Иванова {n}"),
                    "phone": format!("+7916{n:07}"),
                    "email": format!("anna{n}@example.ru"),
                    "birth_date": "1992-03-14",
                    "licence": {
                        "number": format!("77{n:08}"),
                        "issued_on": "2014-05-20",
                        "expires_on": "2034-05-20",
                    },
                }),
            )
            .await?;
        if registered.status != StatusCode::CREATED {
            bail!(
                "registration answered {}: {}",
                registered.status,
                registered.body
            );
        }
        let customer_id = registered.str("customer_id");
        let support = self.token(Role::Support, "agent-1");
        let verified = self
            .post(
                &format!("/v1/customers/{customer_id}/verification"),
                Some(&support),
                &serde_json::json!({ "decision": "approved" }),
            )
            .await?;
        if verified.status != StatusCode::OK {
            bail!(
                "verification answered {}: {}",
                verified.status,
                verified.body
            );
        }
        Ok(customer_id)
    }

    /// Adds car number `n` (unique plate and VIN) standing at `at`, locked, odometer 12,000 km;
    /// returns the vehicle id.
    pub async fn car(&self, n: u32, at: (f64, f64)) -> anyhow::Result<String> {
        self.car_via(&self.base, n, at).await
    }

    /// [`car`](Self::car) through another node at `base` (a [`Peer`]).
    pub async fn car_via(&self, base: &str, n: u32, at: (f64, f64)) -> anyhow::Result<String> {
        let fleet = self.token(Role::Fleet, "fleet-1");
        let key = uuid::Uuid::new_v4().to_string();
        let added = self
            .send_to(
                base,
                reqwest::Method::POST,
                "/v1/vehicles",
                Some(&fleet),
                &[("idempotency-key", key.as_str())],
                Some(&serde_json::json!({
                    "plate": format!("А{:03}ВС{:03}", n % 1000, 77 + n / 1000),
                    "vin": format!("XW8ZZZ61Z{n:08}"),
                    "model": "Kia Rio",
                    "lat": at.0,
                    "lon": at.1,
                    "fuel_percent": 80,
                    "odometer_km": 12000.0,
                })),
            )
            .await?;
        if added.status != StatusCode::CREATED {
            bail!("adding a car answered {}: {}", added.status, added.body);
        }
        Ok(added.str("vehicle_id"))
    }

    /// A telematics report for a car; returns the answer.
    pub async fn telemetry(
        &self,
        vehicle_id: &str,
        at: (f64, f64),
        odometer_km: f64,
        doors_locked: bool,
    ) -> anyhow::Result<Answer> {
        let unit = self.token(Role::Service, "telematics");
        self.post(
            &format!("/v1/vehicles/{vehicle_id}/telemetry"),
            Some(&unit),
            &serde_json::json!({
                "lat": at.0,
                "lon": at.1,
                "fuel_percent": 74,
                "odometer_km": odometer_km,
                "doors_locked": doors_locked,
            }),
        )
        .await
    }

    /// How many events callers of the API appended, straight from the database: every event
    /// but those the server appends on its own — its sagas' commands (`service:saga-*`) and the
    /// sealer's chain heads. Those react to earlier steps whenever they get to them, so a test
    /// that checks a request appended nothing (or one event) by comparing counts would race
    /// them if it counted the whole log.
    pub async fn caller_event_count(&self) -> anyhow::Result<i64> {
        sqlx_scalar(
            self,
            "SELECT count(*) FROM events
             WHERE actor NOT LIKE 'service:saga-%' AND actor <> 'service:audit-sealer'",
        )
        .await
    }
}

/// Runs a scalar query on the server's database (for checking what the log holds).
pub async fn sqlx_scalar(app: &App, sql: &str) -> anyhow::Result<i64> {
    Ok(event_store::testing::scalar(app.db.pool(), sql).await?)
}

/// What the money tests check at their end, against the gateway simulator's ledger.
pub mod money {
    use super::{App, eventually, sqlx_scalar};
    use anyhow::{Context, ensure};
    use fixtures::gateway::RunningGateway;
    use std::time::Duration;

    /// How many holds the gateway keeps open.
    pub fn open_holds(gateway: &RunningGateway) -> usize {
        gateway.ledger()["payments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["status"] == "waiting_for_capture")
            .count()
    }

    /// With no trip running: once the grace period (`grace_s` on the server's manual clock) has
    /// passed — twice: once for the holds Velka noted, once more for any the reconciler first
    /// saw late — no hold is left open, every noted hold is settled, no idempotence key made two
    /// payments, the payment saga is idle, and `velka audit money --gateway-url` finds no
    /// difference and nothing waiting. Unless `strays` are expected, every hold let go was one
    /// Velka had noted, not one only the reconciler (the safety net) found.
    pub async fn nothing_left(
        app: &App,
        gateway: &RunningGateway,
        grace_s: i64,
        strays: bool,
    ) -> anyhow::Result<()> {
        let deadline = Duration::from_secs(60);
        for _ in 0..2 {
            app.advance_clock(grace_s + 1).await?;
            eventually(deadline, || async {
                Ok((open_holds(gateway) == 0).then_some(()))
            })
            .await
            .with_context(|| format!("holds left open: {}", gateway.ledger()["payments"]))?;
        }
        eventually(deadline, || async {
            let pending = sqlx_scalar(
                app,
                "SELECT count(*) FROM hold_intents WHERE released_at IS NULL",
            )
            .await?;
            Ok((pending == 0).then_some(()))
        })
        .await
        .context("a noted hold was never settled")?;
        let ledger = gateway.ledger();
        for key in ledger["idempotence_keys"].as_array().into_iter().flatten() {
            ensure!(
                key["creations"].as_u64().unwrap_or(0) <= 1,
                "a key made two payments: {key}"
            );
        }
        let found_by_reconciler = sqlx_scalar(
            app,
            "SELECT count(*) FROM events WHERE event_type = 'HoldAbandoned'
               AND data::jsonb->>'reason' = 'unknown_to_velka'",
        )
        .await?;
        ensure!(
            (found_by_reconciler > 0) == strays,
            "{found_by_reconciler} holds let go by the reconciler"
        );
        app.payments_settled(deadline).await?;
        let (ok, stdout) = app.audit_money(&gateway.url()).await?;
        let last = stdout.lines().last().unwrap_or_default();
        ensure!(
            ok && last.ends_with("differences=0 waiting=0"),
            "the money audit: {stdout}"
        );
        Ok(())
    }
}
