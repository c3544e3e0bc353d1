//! `velka bench …`: each benchmark measures one of the mission's targets against a baseline
//! measured in the same run on the same machine, and ends with one machine-readable
//! `result: bench=…` line on stdout (figures in `BENCHMARKS.md`).
//!
//! Every benchmark runs on a scratch database beside the configured one (`<name>_bench`),
//! dropped and recreated each run, never on the configured database itself.

pub mod append;
pub mod bulk;
pub mod http;
pub mod lag;
pub mod load;
pub mod verify;

use crate::error::{Context, Result};
use sqlx::postgres::PgConnectOptions;
use std::path::PathBuf;
use std::str::FromStr;

/// Where and with what the benchmarks run; the binary fills it from its configuration.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The configured database; the benchmarks use `<its name>_bench` beside it.
    pub database_url: String,
    /// The `velka` binary, started as `velka serve` by the HTTP benchmarks.
    pub velka: PathBuf,
    /// The personal data secret handed to that server, when one is configured (else the server
    /// uses its development secret).
    pub pii_secret: Option<String>,
    /// pgbench, when installed: the baseline of `append` (else the same inserts from this
    /// process) and of `commands` (which needs it).
    pub pgbench: Option<PathBuf>,
    /// A folder for pgbench's script.
    pub scratch_dir: PathBuf,
}

/// A duration in whole seconds: `30`, `30s`, `2m`.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.strip_suffix('s') {
        Some(number) => (number, 1),
        None => match text.strip_suffix('m') {
            Some(number) => (number, 60),
            None => (text, 1),
        },
    };
    let seconds = number
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{text:?} is not a duration such as 30, 30s or 2m"))?
        .saturating_mul(unit);
    if (1..=3600).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("{text:?}: a duration from 1 s to 1 h"))
    }
}

/// The bench database's URL: the configured one with `_bench` added to the database name.
fn bench_url(url: &str) -> Result<(String, PgConnectOptions)> {
    let options = PgConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
    let name = format!("{}_bench", options.get_database().unwrap_or("velka"));
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    let bench = match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    };
    let options = PgConnectOptions::from_str(&bench).context("parsing the bench URL")?;
    Ok((bench, options))
}

/// Drops the bench database if it exists; returns its URL and options.
pub(crate) async fn recreate_bench_database(
    database_url: &str,
) -> Result<(String, PgConnectOptions)> {
    use sqlx::migrate::MigrateDatabase;
    let (url, options) = bench_url(database_url)?;
    if sqlx::Postgres::database_exists(&url).await.unwrap_or(false) {
        sqlx::Postgres::drop_database(&url)
            .await
            .context("dropping the old bench database")?;
    }
    Ok((url, options))
}

/// Raw single-row INSERTs, one per transaction, by pgbench with `clients` connections.
pub(crate) fn pgbench_inserts(
    setup: &Setup,
    pgbench: &std::path::Path,
    options: &PgConnectOptions,
    clients: u32,
    duration_s: u64,
) -> Result<f64> {
    let script = setup
        .scratch_dir
        .join(format!("velka-bench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO bench_baseline (stream_id, payload) VALUES ('baseline', '{\"n\": 1}');\n",
    )?;
    let output = std::process::Command::new(pgbench)
        .args(["-n", "-M", "prepared"])
        .args(["-c", &clients.to_string(), "-j", &clients.to_string()])
        .args(["-T", &duration_s.to_string()])
        .arg("-f")
        .arg(&script)
        .args([
            "-h",
            options.get_host(),
            "-p",
            &options.get_port().to_string(),
        ])
        .args(["-U", options.get_username()])
        .arg(options.get_database().unwrap_or("velka_bench"))
        .output()
        .context("running pgbench")?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .context("pgbench printed no tps line")
}
