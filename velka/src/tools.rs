//! `velka bench …`, `velka seed` and `velka simulate [traffic]`: their command lines turned into
//! the load tools' configuration (`loadgen`), which does the work.

use crate::config::{self, Global};
use loadgen::bench::Setup;
use loadgen::client::Api;

impl Global {
    /// Where the benchmarks run: beside the configured database, starting this binary as the
    /// server, with pgbench if it is on the `PATH`.
    fn bench_setup(&self) -> anyhow::Result<Setup> {
        let pgbench = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("pgbench"))
                .find(|candidate| candidate.is_file())
        });
        Ok(Setup {
            database_url: self.database_url.clone(),
            velka: std::env::current_exe()?,
            pii_secret: self.pii_secret.clone().filter(|secret| !secret.is_empty()),
            pgbench,
            scratch_dir: std::env::temp_dir(),
        })
    }

    /// A client of the server at `url`, signing tokens with this configuration's secret.
    fn api(&self, url: &str) -> anyhow::Result<Api> {
        Ok(Api::new(url, self.token_keys().0)?)
    }
}

/// `velka bench …`.
pub async fn bench(global: &Global, command: config::BenchCommand) -> anyhow::Result<()> {
    use config::BenchCommand as Bench;
    use loadgen::bench::{append, bulk, lag, load, verify};
    let setup = global.bench_setup()?;
    match command {
        Bench::Append(args) => {
            let group = append::GroupCommit {
                max_group: args.append_group,
                writers: args.append_writers,
            };
            append::append(&setup, args.run, group).await?
        }
        Bench::Lag(config) => lag::lag(&setup, config).await?,
        Bench::Commands(config) => load::commands(&setup, config).await?,
        Bench::Peak(config) => load::peak(&setup, config).await?,
        Bench::Replay(config) => bulk::replay(&setup, config, global.pii_secret()).await?,
        Bench::History(config) => bulk::history(&setup, config).await?,
        Bench::Verify(config) => verify::verify(&setup, config).await?,
    }
    Ok(())
}

/// `velka seed`.
pub async fn seed(global: &Global, args: config::SeedArgs) -> anyhow::Result<()> {
    let plan = loadgen::seed::Plan {
        seed: args.seed,
        cars: args.cars as usize,
        customers: args.customers as usize,
        concurrency: args.concurrency as usize,
        progress: true,
    };
    Ok(loadgen::seed::run(&global.api(&args.url)?, &plan).await?)
}

/// `velka simulate [traffic]`: drive, report; stops early on Ctrl-C.
pub async fn simulate(global: &Global, args: config::TrafficArgs) -> anyhow::Result<()> {
    use loadgen::traffic::{Options, PaymentFaultRate, Simulation};
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0 && args.rate <= 100_000.0,
        "--rate must be more than 0 and at most 100000"
    );
    let percent = args.payment_failure_percent;
    anyhow::ensure!(
        percent.is_finite() && (0.0..=100.0).contains(&percent),
        "--payment-failure-percent must be between 0 and 100"
    );
    let payment_faults = match (percent > 0.0, args.gateway_url) {
        (false, _) => None,
        (true, Some(gateway_url)) => Some(PaymentFaultRate {
            gateway_url,
            percent,
        }),
        (true, None) => anyhow::bail!(
            "--payment-failure-percent needs the gateway simulator's address: \
             --gateway-url or VELKA_GATEWAY_URL"
        ),
    };
    let simulation = Simulation {
        options: Options {
            rate: args.rate,
            duration: Some(args.duration),
            users: args.users as usize,
            seed: args.seed,
            concurrency: args.concurrency as usize,
            report: true,
            wind_down: true,
        },
        simulated_speed: (args.clock == config::SimulatedClock::Simulated).then_some(args.speed),
        payment_faults,
    };
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    Ok(loadgen::traffic::run(global.api(&args.url)?, simulation, interrupted).await?)
}
