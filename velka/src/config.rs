//! Command-line and environment configuration: one place, with defaults that work on a
//! developer machine. Libraries never read the environment; this module hands them values.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use http_edge::{Role, TokenKeys};
use std::net::SocketAddr;

/// The secret used when `VELKA_JWT_SECRET` is not set. Fine for a laptop, never for production:
/// `velka serve` says so loudly when it is in use.
pub const DEVELOPMENT_SECRET: &str = "velka-development-secret-change-me";

/// The KYC callback secret used when `VELKA_KYC_WEBHOOK_SECRET` is not set; `velka simulate kyc`
/// signs with the same one by default, so the two work together on a laptop.
pub const DEVELOPMENT_KYC_SECRET: &str = "velka-development-kyc-secret";

#[derive(Debug, Parser)]
#[command(
    name = "velka",
    version,
    about = "Event-sourced core of a car-sharing operator"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand shares.
#[derive(Debug, Args)]
pub struct Global {
    /// PostgreSQL database; created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/velka",
        global = true
    )]
    pub database_url: String,

    /// Shared secret for HS256 bearer tokens.
    #[arg(long, env = "VELKA_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
}

impl Global {
    /// The token keys, and whether they come from the development secret.
    pub fn token_keys(&self) -> (TokenKeys, bool) {
        match &self.jwt_secret {
            Some(secret) if !secret.is_empty() => {
                (TokenKeys::from_secret(secret.as_bytes()), false)
            }
            _ => (TokenKeys::from_secret(DEVELOPMENT_SECRET.as_bytes()), true),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole core in one process: command API, query API and projectors.
    Serve(ServeArgs),
    /// Create the database if needed and bring its schema up to date, then exit.
    Migrate,
    /// Print a bearer token for a role and subject.
    Token(TokenArgs),
    /// Measure the system against its baselines (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Operate the read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Run a simulator of an outside system for tests and demos.
    #[command(subcommand)]
    Simulate(SimulateCommand),
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// The payment gateway: a two-stage card API (hold, capture, cancel, refund) with
    /// idempotence keys, webhooks and injectable faults, until Ctrl-C.
    Gateway(SimulateGatewayArgs),
    /// The KYC provider: asynchronous document checks with signed callbacks, and controls for
    /// outcomes, delays, dropped callbacks and 5xx, until Ctrl-C.
    Kyc(SimulateKycArgs),
}

#[derive(Debug, Args)]
pub struct SimulateKycArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(
        long,
        env = "VELKA_KYC_PROVIDER_ADDR",
        default_value = "127.0.0.1:8091"
    )]
    pub addr: SocketAddr,
    /// The secret callbacks are signed with (Velka's `VELKA_KYC_WEBHOOK_SECRET`).
    #[arg(long, env = "VELKA_KYC_WEBHOOK_SECRET", hide_env_values = true, default_value = DEVELOPMENT_KYC_SECRET)]
    pub secret: String,
    /// Seed of the outcome and fault draws, for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long each check takes before it calls back, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub delay_ms: u64,
}

#[derive(Debug, Args)]
pub struct SimulateGatewayArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "VELKA_GATEWAY_ADDR", default_value = "127.0.0.1:8090")]
    pub addr: SocketAddr,
    /// Where to POST status changes (`payment.succeeded`, …); none, no webhooks.
    #[arg(long, env = "VELKA_GATEWAY_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Seed of the injected faults' draws, for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild one read model from the whole log side by side, then switch reads over
    /// atomically; a running `velka serve` keeps answering throughout.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The read model (its projector's name, as in GET /v1/admin/projections).
    pub name: String,
    /// Events read per batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Event-store append rate and latency against raw single-row inserts, in one run.
    Append(BenchAppendArgs),
    /// Time from a command's answer to its effect in the trips read model, under steady load.
    Lag(BenchLagArgs),
}

#[derive(Debug, Args)]
pub struct BenchLagArgs {
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

#[derive(Debug, Args)]
pub struct BenchAppendArgs {
    /// Concurrent writers; one phase per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
    pub writers: Vec<u32>,
    /// Seconds per phase (each writer count runs a baseline phase and an append phase).
    #[arg(long = "duration", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_s: u64,
    /// Events in each append.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub events_per_append: u32,
}

/// Where "now" comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// The real time.
    System,
    /// Stands still until `POST /v1/admin/clock` moves it. For tests and demos only.
    Manual,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "VELKA_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Clock to decide with.
    #[arg(long, env = "VELKA_CLOCK", value_enum, default_value = "system")]
    pub clock: ClockKind,

    /// Seed a small demo city (cars, verified customers) through the command API and print
    /// where to look. Safe to repeat: the seed uses idempotency keys.
    #[arg(long, env = "VELKA_DEMO")]
    pub demo: bool,

    /// Largest number of database connections.
    #[arg(long, env = "VELKA_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,

    /// NATS server for the command and telemetry entry points and the event relay. If it is
    /// down at start, the server keeps serving HTTP and connects when NATS comes up.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Subject prefix on NATS: entry points `<prefix>.commands.<name>` and
    /// `<prefix>.telemetry.<vehicle_id>`; events published on
    /// `<prefix>.events.<category>.<stream_id>` to the JetStream stream `<PREFIX>_EVENTS`.
    #[arg(long, env = "VELKA_NATS_PREFIX", default_value = "velka")]
    pub nats_prefix: String,

    /// Do not use NATS at all: no entry points, no event relay.
    #[arg(long, env = "VELKA_NO_NATS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_nats: bool,

    /// Secret that rotates the public GBFS vehicle ids; derived from the token secret if unset.
    #[arg(long, env = "VELKA_GBFS_SECRET", hide_env_values = true)]
    pub gbfs_secret: Option<String>,

    /// Public origin of the GBFS feed's URLs (`https://velka.example`); unset, `gbfs.json`
    /// links to `http://` and the request's `Host`.
    #[arg(long, env = "VELKA_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Where GBFS feed consumers report problems (`feed_contact_email`).
    #[arg(
        long,
        env = "VELKA_GBFS_CONTACT_EMAIL",
        default_value = "gbfs@velka.dev"
    )]
    pub gbfs_contact_email: String,

    /// Listen on NATS but do not publish events (another instance relays them, or a test does
    /// not want a JetStream stream of its own).
    #[arg(long, env = "VELKA_NO_NATS_RELAY", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_nats_relay: bool,

    /// The secret the KYC provider signs its callbacks to `POST /v1/webhooks/kyc` with.
    #[arg(long, env = "VELKA_KYC_WEBHOOK_SECRET", hide_env_values = true, default_value = DEVELOPMENT_KYC_SECRET)]
    pub kyc_webhook_secret: String,

    /// The KYC provider's base URL (`velka simulate kyc` listens on `http://127.0.0.1:8091`).
    #[arg(
        long,
        env = "VELKA_KYC_PROVIDER_URL",
        default_value = "http://127.0.0.1:8091"
    )]
    pub kyc_provider_url: String,

    /// How long the KYC saga waits for the provider's answer before asking for manual review,
    /// in hours of business time (the injected clock).
    #[arg(long, env = "VELKA_KYC_DEADLINE_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=24 * 30))]
    pub kyc_deadline_hours: u32,
}

impl ServeArgs {
    /// The key that rotates public GBFS vehicle ids: `VELKA_GBFS_SECRET`, or one derived from
    /// the token secret (the development one included).
    pub fn gbfs_vehicle_ids(
        &self,
        global: &Global,
    ) -> anyhow::Result<query_api::gbfs::VehicleIdKey> {
        let key = match &self.gbfs_secret {
            Some(secret) if !secret.is_empty() => {
                query_api::gbfs::VehicleIdKey::new(secret.as_bytes())
            }
            _ => {
                let token_secret = match &global.jwt_secret {
                    Some(secret) if !secret.is_empty() => secret.as_str(),
                    _ => DEVELOPMENT_SECRET,
                };
                query_api::gbfs::VehicleIdKey::derived_from(token_secret.as_bytes())
            }
        };
        Ok(key?)
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// customer, support, fleet, auditor or service.
    #[arg(long)]
    pub role: Role,
    /// The subject: a customer id for customers, a name otherwise.
    #[arg(long)]
    pub sub: String,
    /// Validity in hours.
    #[arg(long, default_value_t = 24)]
    pub ttl_hours: i64,
}

/// `velka token`: prints a token on stdout.
pub fn print_token(global: &Global, args: &TokenArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.sub.trim().is_empty(), "--sub must not be empty");
    anyhow::ensure!(
        (1..=24 * 365).contains(&args.ttl_hours),
        "--ttl-hours must be between 1 and 8760"
    );
    let (keys, development) = global.token_keys();
    if development {
        eprintln!("velka: VELKA_JWT_SECRET is not set; signing with the development secret");
    }
    let token = keys
        .issue(
            args.role,
            &args.sub,
            chrono::Duration::hours(args.ttl_hours),
            chrono::Utc::now(),
        )
        .context("signing the token")?;
    println!("{token}");
    Ok(())
}
