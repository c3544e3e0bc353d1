//! Command-line and environment configuration: one place, with defaults that work on a
//! developer machine. Libraries never read the environment; this module hands them values.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use http_edge::{Role, TokenKeys};
use loadgen::bench;
use std::net::SocketAddr;

/// The secret used when `VELKA_JWT_SECRET` is not set. Fine for a laptop, never for production:
/// `velka serve` says so loudly when it is in use.
pub const DEVELOPMENT_SECRET: &str = "velka-development-secret-change-me";

/// The KYC callback secret used when `VELKA_KYC_WEBHOOK_SECRET` is not set; `velka simulate kyc`
/// signs with the same one by default, so the two work together on a laptop.
/// The personal data secret when `VELKA_PII_SECRET` is unset: public, so for development only
/// (a warning says so). Customer keys are wrapped and phone/e-mail claims hashed with keys
/// derived from it, so it must never change for a database once set.
pub const DEVELOPMENT_PII_SECRET: &str = "velka-development-pii-secret";

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

    /// Server secret for personal data: wraps each customer's key and keys the hashes that
    /// stand for phones and e-mails in uniqueness claims. Must stay the same for the database.
    #[arg(long, env = "VELKA_PII_SECRET", hide_env_values = true, global = true)]
    pub pii_secret: Option<String>,
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

    /// The personal data secret, warning when it is the development one.
    pub fn pii_secret(&self) -> &str {
        match &self.pii_secret {
            Some(secret) if !secret.is_empty() => secret.as_str(),
            _ => {
                tracing::warn!(
                    "VELKA_PII_SECRET is not set: personal data keys are protected by the public \
                     development secret"
                );
                DEVELOPMENT_PII_SECRET
            }
        }
    }

    /// The personal data codec over `pool` (see `command_api::pii`), warning when it uses the
    /// development secret.
    pub fn pii_codec(&self, pool: &sqlx::PgPool) -> command_api::pii::PiiCodec {
        command_api::pii::PiiCodec::new(
            pool.clone(),
            command_api::pii::PiiSecret::new(self.pii_secret().as_bytes()),
        )
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
    /// Load a generated city (cars, verified customers) into a running server through its
    /// command API.
    Seed(SeedArgs),
    /// Drive realistic app traffic against a running server (`velka simulate --rate 50
    /// --duration 30s`), or run a simulator of an outside system (`velka simulate gateway`).
    Simulate(SimulateArgs),
    /// Check and read the log as an auditor: verify the hash chain, export a time range,
    /// reconcile money.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Act on a customer as an operator: erase their personal data.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Split a follower of the log into K segments by a hash of the stream id (a saga's: of its
    /// instance), each run by one worker at a time, so that several workers share it; 1 makes
    /// it whole again. Only with every worker stopped and its segments level (DEPLOYMENT.md).
    Segments(SegmentsArgs),
}

#[derive(Debug, Args)]
pub struct SegmentsArgs {
    /// The follower, as `projector:<read model>` (trips_view, vehicles_view) or
    /// `saga:<saga>` (payments, fines, kyc).
    pub follower: String,
    /// Into how many segments.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub count: u32,
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Erase a customer's personal data (152-FZ, GDPR): destroy their key, so their name,
    /// phone, e-mail and documents never decrypt again, and record `CustomerErased` with who
    /// and why. Trips, money and the audit chain stay intact.
    Erase(CustomerEraseArgs),
}

#[derive(Debug, Args)]
pub struct CustomerEraseArgs {
    /// The customer's id.
    pub id: uuid::Uuid,
    /// Why (the customer's request, a regulator's order): recorded for the auditors.
    #[arg(long)]
    pub reason: String,
    /// Who erases (recorded as `operator:<by>`); defaults to $USER.
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain from the events table and compare: prints `intact up to
    /// position N (K events)`, or names the first position that does not match and exits 1.
    Verify(AuditVerifyArgs),
    /// Write the events recorded in [--from, --to) as JSON Lines, one event a line with its
    /// position and chain hash; recorded as an `AuditExportPerformed` event.
    Export(AuditExportArgs),
    /// Recompute every account from its events alone and compare with the read models and the
    /// payment gateway's ledger: each difference with its account, field, the three values and
    /// the events behind it; the last line is `result: audit=money accounts=N differences=M`,
    /// and the exit code is 1 when there are differences. Recorded as `AuditMoneyReconciled`.
    Money(AuditMoneyArgs),
    /// Print an aggregate's state as of a time (JSON): its stream's events recorded at or
    /// before `--as-of`, folded with the domain's rules. Recorded as `AuditStateQueried`.
    State(AuditStateArgs),
    /// Rebuild every read model as of a time into a schema of its own for inspection: the
    /// projectors run over the events recorded at or before `--at`. Recorded as
    /// `AuditReadModelsRebuiltAsOf`.
    RebuildAsOf(AuditRebuildAsOfArgs),
}

#[derive(Debug, Args)]
pub struct AuditStateArgs {
    /// The aggregate's stream: `customer-<uuid>`, `vehicle-<uuid>`, `trip-<uuid>`,
    /// `account-<uuid>`, …
    pub stream: String,
    /// The time (RFC 3339).
    #[arg(long)]
    pub as_of: chrono::DateTime<chrono::Utc>,
    /// Who asks, as recorded (`auditor:<by>`); defaults to the login name (`USER`).
    #[arg(long, env = "VELKA_AUDITOR")]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditRebuildAsOfArgs {
    /// The time (RFC 3339).
    #[arg(long)]
    pub at: chrono::DateTime<chrono::Utc>,
    /// The schema to build in (lower-case letters, digits, `_`); default `asof_<yyyymmddhhmmss>`.
    /// An existing schema of that name is replaced.
    #[arg(long)]
    pub schema: Option<String>,
    /// Events per transaction.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Who rebuilds, as recorded (`auditor:<by>`); defaults to the login name (`USER`).
    #[arg(long, env = "VELKA_AUDITOR")]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditMoneyArgs {
    /// The payment gateway whose ledger (`GET /control/ledger`) is the third witness; without
    /// it, only the events and the read models are compared.
    #[arg(long, env = "VELKA_GATEWAY_URL")]
    pub gateway_url: Option<String>,
    /// Who reconciles, as recorded in `AuditMoneyReconciled` (`auditor:<by>`); defaults to the
    /// login name (`USER`).
    #[arg(long, env = "VELKA_AUDITOR")]
    pub by: Option<String>,
    /// Print the whole reconciliation as one JSON document before the result line.
    #[arg(long)]
    pub json: bool,
    /// Judge whether a hold Velka noted is still within its settling time as of this time
    /// (RFC 3339) rather than now: for a server that runs a manual clock.
    #[arg(long, value_name = "TIME")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// A head held outside the database, `EVENTS:HASH` (from a `ChainHeadSealed` publication
    /// on NATS): the chain's entry EVENTS must have HASH. May be repeated.
    #[arg(long = "head", value_name = "EVENTS:HASH")]
    pub heads: Vec<String>,
    /// Chain entries per query.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub chunk: i64,
    /// Queries in flight at once (database connections).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub parallel: u32,
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// First recorded time included (RFC 3339).
    #[arg(long)]
    pub from: chrono::DateTime<chrono::Utc>,
    /// Recorded times before this are included (RFC 3339).
    #[arg(long)]
    pub to: chrono::DateTime<chrono::Utc>,
    /// The file to write; standard output if not given.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    /// Who exports, as recorded in `AuditExportPerformed` (`auditor:<by>`); defaults to the
    /// login name (`USER`).
    #[arg(long, env = "VELKA_AUDITOR")]
    pub by: Option<String>,
}

/// The server the client commands talk to.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Cars to add.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub cars: u32,
    /// Customers to register, with documents, approved.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub customers: u32,
    /// Seed of the generated city: the same seed loads the same cars and people, and loading
    /// it again changes nothing.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The running server.
    #[arg(long, env = "VELKA_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: u32,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// The payment gateway: a two-stage card API (hold, capture, cancel, refund) with
    /// idempotence keys, webhooks and injectable faults, until Ctrl-C.
    Gateway(SimulateGatewayArgs),
    /// App traffic against a running server; the same as `velka simulate` with flags.
    Traffic(TrafficArgs),
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

#[derive(Clone, Debug, Args)]
pub struct TrafficArgs {
    /// Requests per second, all simulated users together.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// How long: `30s`, `2m`, or seconds.
    #[arg(long, default_value = "30s", value_parser = loadgen::traffic::parse_duration)]
    pub duration: std::time::Duration,
    /// The running server.
    #[arg(long, env = "VELKA_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// App users (customers of the seeded city, registered if missing).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: u32,
    /// Seed of the city the users come from (as in `velka seed`) and of their behaviour.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Requests in flight at most; a tick finding them all busy is counted as dropped.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// `real`: the server keeps its own time. `simulated`: the server runs with
    /// `--clock manual` and the simulator moves it forward `--speed` seconds every real second,
    /// so trips, parking stops and reservations last simulated minutes.
    #[arg(long, value_enum, default_value_t = SimulatedClock::Real)]
    pub clock: SimulatedClock,
    /// Simulated seconds per real second with `--clock simulated`.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub speed: u32,
    /// The payment gateway simulator the server uses (`velka simulate gateway`, or the one
    /// `serve --demo` starts); needed with `--payment-failure-percent`.
    #[arg(long, env = "VELKA_GATEWAY_URL")]
    pub gateway_url: Option<String>,
    /// Share of card operations the gateway refuses, in percent: half declined, half answered
    /// 5xx (which the payment saga retries with the same key). Restored to 0 at the end.
    #[arg(long, default_value_t = 0.0)]
    pub payment_failure_percent: f64,
}

/// Whose time a simulation runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimulatedClock {
    /// The server's own clock.
    Real,
    /// The server's manual clock, moved by the simulator.
    Simulated,
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
    /// Rebuild one read model (or all, reading the log once) from the whole log side by side,
    /// then switch reads over atomically; a running `velka serve` keeps answering throughout.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The read model (its projector's name, as in GET /v1/admin/projections).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every read model, reading the log once for all of them.
    #[arg(long)]
    pub all: bool,
    /// Events read per batch.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Event-store append rate and latency against raw single-row inserts, in one run.
    Append(BenchAppendArgs),
    /// Time from a command's answer to its effect in the trips read model, under steady load.
    Lag(bench::lag::LagConfig),
    /// Command throughput and latency over HTTP at the knee, against pgbench inserts, in one run.
    Commands(bench::load::CommandsConfig),
    /// A fixed rate of mixed queries and commands (open loop): latency, errors, projection lag,
    /// memory of the server.
    Peak(bench::load::PeakConfig),
    /// Rebuild every read model from a bulk-loaded log of realistic events: events per second.
    Replay(bench::bulk::ReplayConfig),
    /// Append and stream-load latency with a small and a large bulk-loaded history.
    History(bench::bulk::HistoryConfig),
    /// `audit verify`'s rate over a bulk-loaded, sealed log, against a raw COPY of the same
    /// columns in the same run.
    Verify(bench::verify::VerifyConfig),
}

#[derive(Debug, Args)]
pub struct BenchAppendArgs {
    #[command(flatten)]
    pub run: bench::append::AppendConfig,
    /// Most appends in one transaction, as `velka serve --append-group` (1: no grouping).
    #[arg(long, env = "VELKA_APPEND_GROUP", default_value_t = event_store::DEFAULT_APPEND_GROUP, value_parser = clap::value_parser!(u16).range(1..=60))]
    pub append_group: u16,
    /// Appends in flight before the next ones queue into a group, as `velka serve`.
    #[arg(long, env = "VELKA_APPEND_WRITERS", default_value_t = event_store::DEFAULT_APPEND_WRITERS, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub append_writers: u16,
}

/// Where "now" comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// The real time.
    System,
    /// Stands still until `POST /v1/admin/clock` moves it. For tests and demos only.
    Manual,
}

/// What a `velka serve` process runs (DEPLOYMENT.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServeRole {
    /// The one-node case: the APIs and every worker.
    All,
    /// The HTTP and NATS entry points only; stateless, any number of them.
    Api,
    /// Projectors, sagas with their timers and dispatcher, the NATS relay, the audit sealer,
    /// reservation expiry and the hold workers, shared with the other workers by lease; HTTP
    /// serves only health, metrics and the admin views.
    Worker,
}

impl ServeRole {
    /// Whether it serves the command, query and audit APIs and the NATS entry points.
    pub fn serves_api(self) -> bool {
        self != ServeRole::Worker
    }

    /// Whether it runs the workers.
    pub fn runs_workers(self) -> bool {
        self != ServeRole::Api
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "VELKA_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// What this process runs: `all` (one node), `api` (entry points only) or `worker` (the
    /// followers and singleton workers, each run by one worker at a time by lease).
    #[arg(long, env = "VELKA_ROLE", value_enum, default_value = "all")]
    pub role: ServeRole,

    /// A worker's stable name as a lease holder (a pod's or a unit's name): restarted under the
    /// same name it takes back at once what it held. Two live processes must never share one.
    /// Default: host, process id and a random part.
    #[arg(long, env = "VELKA_WORKER_ID")]
    pub worker_id: Option<String>,

    /// How long a lease on a follower or a singleton worker lasts past its last renewal (renewed
    /// every sixth of it): after a worker dies, another takes its work within about 7/6 of it.
    #[arg(long, env = "VELKA_LEASE_TTL_MS", default_value_t = event_store::lease::DEFAULT_TTL.as_millis() as u64, value_parser = clap::value_parser!(u64).range(300..=600_000))]
    pub lease_ttl_ms: u64,

    /// Clock to decide with.
    #[arg(long, env = "VELKA_CLOCK", value_enum, default_value = "system")]
    pub clock: ClockKind,

    /// Seed a demo city (cars, verified customers) through the command API, run light app
    /// traffic against it and print where to look. Safe to repeat: the seed uses idempotency
    /// keys.
    #[arg(long, env = "VELKA_DEMO")]
    pub demo: bool,

    /// Cars in the demo city.
    #[arg(long, env = "VELKA_DEMO_CARS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub demo_cars: u32,

    /// Customers in the demo city.
    #[arg(long, env = "VELKA_DEMO_CUSTOMERS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub demo_customers: u32,

    /// Requests per second of the demo's background traffic; 0 for none.
    #[arg(long, env = "VELKA_DEMO_RATE", default_value_t = 5.0)]
    pub demo_rate: f64,

    /// Largest number of database connections (projectors on their own thread have 12 more).
    #[arg(long, env = "VELKA_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,

    /// Most requests handled at once; beyond it a request is refused at once with
    /// `503 overloaded` and `Retry-After: 1` instead of queueing (health and metrics are always
    /// answered). Bounds memory and latency under more load than the database can serve.
    #[arg(long, env = "VELKA_MAX_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,

    /// Events of recently loaded streams kept in memory, so a command reloading a stream reads
    /// only what was appended since (0 turns the cache off).
    #[arg(long, env = "VELKA_STREAM_CACHE_EVENTS", default_value_t = event_store::DEFAULT_STREAM_CACHE_EVENTS)]
    pub stream_cache_events: usize,

    /// Streams whose folded state is kept in memory, so a command folds only the events
    /// appended since it last loaded the stream, not its whole history (0 turns it off).
    #[arg(long, env = "VELKA_STATE_CACHE_STREAMS", default_value_t = event_store::DEFAULT_STATE_CACHE_STREAMS)]
    pub state_cache_streams: usize,

    /// Most appends written in one transaction (group commit): appends that arrive while
    /// `--append-writers` others are in flight wait and go together, each refused or kept on
    /// its own (1 turns grouping off: every append is a transaction of its own).
    #[arg(long, env = "VELKA_APPEND_GROUP", default_value_t = event_store::DEFAULT_APPEND_GROUP, value_parser = clap::value_parser!(u16).range(1..=60))]
    pub append_group: u16,

    /// Appends (or groups of them) in flight at once before the next ones queue into a group.
    #[arg(long, env = "VELKA_APPEND_WRITERS", default_value_t = event_store::DEFAULT_APPEND_WRITERS, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub append_writers: u16,

    /// NATS server for the command and telemetry entry points and the event relay; a cluster's
    /// servers comma-separated. If it is down at start, the server keeps serving HTTP and
    /// connects when NATS comes up.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Subject prefix on NATS: entry points `<prefix>.commands.<name>` and
    /// `<prefix>.telemetry.<vehicle_id>`; events published on
    /// `<prefix>.events.<category>.<stream_id>` to the JetStream stream `<PREFIX>_EVENTS`.
    #[arg(long, env = "VELKA_NATS_PREFIX", default_value = "velka")]
    pub nats_prefix: String,

    /// On how many JetStream servers the relay's events stream keeps each message, when the
    /// relay creates it (3 in a three-node cluster; an existing stream is used as it is).
    #[arg(long, env = "VELKA_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,

    /// Run the projectors on the requests' runtime, not on a thread of their own (which keeps
    /// their batches from queueing behind requests under load; see BENCHMARKS.md).
    #[arg(long, env = "VELKA_SHARED_PROJECTOR_RUNTIME", value_parser = clap::builder::FalseyValueParser::new())]
    pub shared_projector_runtime: bool,

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

    /// The payment gateway (`http://127.0.0.1:8090` for `velka simulate gateway`). Set, trips
    /// hold money on the card at start and the payment saga charges, refunds and collects
    /// debts; unset, nothing is charged to a card (with `--demo`, a simulator is started in
    /// the process).
    #[arg(long, env = "VELKA_GATEWAY_URL")]
    pub gateway_url: Option<String>,

    /// How long to wait for the gateway's answer before treating the outcome as unknown (and
    /// retrying with the same idempotence key), in milliseconds.
    #[arg(long, env = "VELKA_GATEWAY_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(50..=600_000))]
    pub gateway_timeout_ms: u64,

    /// How much to hold on the card when a trip starts, in kopecks.
    #[arg(long, env = "VELKA_TRIP_HOLD_KOPECKS", default_value_t = 50_000,
          value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    pub trip_hold_kopecks: i64,

    /// How long a card hold whose start did not happen is left for the app's retry (with the
    /// same `Idempotency-Key`) before it is let go, in seconds by the server's clock. A hold the
    /// gateway keeps open that nothing in Velka explains is let go after as long.
    #[arg(long, env = "VELKA_HOLD_GRACE_S", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub hold_grace_s: u32,

    /// How often the gateway's open holds are listed and compared with what Velka recorded, in
    /// milliseconds of real time.
    #[arg(long, env = "VELKA_HOLD_RECONCILE_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub hold_reconcile_ms: u64,

    /// Crash switches for fault tests: the process exits (status 137, as if SIGKILLed) the
    /// first time it reaches one of these named instants (`start.after_hold`, …; see
    /// `event_store::crash`). Never set it in production.
    #[arg(long, env = "VELKA_CRASH_AT", value_delimiter = ',', hide = true)]
    pub crash_at: Vec<String>,

    /// The first wait before a saga command that failed is sent again (doubling up to 5
    /// minutes), in milliseconds.
    #[arg(long, env = "VELKA_SAGA_RETRY_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub saga_retry_ms: u64,

    /// Seconds after the first newly sealed event before the hash chain's head is published
    /// (as a `ChainHeadSealed` event and on `<prefix>.audit.chain-head`); 0: never by time.
    #[arg(long, env = "VELKA_AUDIT_HEAD_INTERVAL", default_value_t = 60)]
    pub audit_head_interval: u64,

    /// Publish the chain's head after this many newly sealed events; 0: never by count.
    #[arg(long, env = "VELKA_AUDIT_HEAD_EVERY", default_value_t = 100_000)]
    pub audit_head_every: u64,

    /// The secret the KYC provider signs its callbacks to `POST /v1/webhooks/kyc` with.
    #[arg(long, env = "VELKA_KYC_WEBHOOK_SECRET", hide_env_values = true, default_value = DEVELOPMENT_KYC_SECRET)]
    pub kyc_webhook_secret: String,

    /// The KYC provider's base URL (`velka simulate kyc` listens on `http://127.0.0.1:8091`).
    /// Set, the KYC saga sends submitted documents there; unset, support decides by hand.
    #[arg(long, env = "VELKA_KYC_PROVIDER_URL")]
    pub kyc_provider_url: Option<String>,

    /// How long the KYC saga waits for the provider's answer before asking for manual review,
    /// in hours of business time (the injected clock).
    #[arg(long, env = "VELKA_KYC_DEADLINE_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=24 * 30))]
    pub kyc_deadline_hours: u32,
}

impl ServeArgs {
    /// The NATS servers of `NATS_URL`, one or a cluster's (comma-separated).
    pub fn nats_servers(&self) -> Vec<&str> {
        self.nats_url.split(',').map(str::trim).collect()
    }

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
