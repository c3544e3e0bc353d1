//! `velka`: the one binary. `velka serve` runs the whole core in one process — command API,
//! query API, projectors — on one address; `velka migrate` prepares the database; `velka token`
//! prints a bearer token for trying the API; `velka simulate gateway` runs the payment gateway
//! simulator.

mod bench;
mod bench_lag;
mod config;
mod demo;
mod ops;
mod serve;
mod simulate;

use clap::Parser;
use config::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VELKA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Migrate => serve::migrate_only(&cli.global).await,
        Command::Token(args) => config::print_token(&cli.global, &args),
        Command::Bench(config::BenchCommand::Append(args)) => {
            bench::append(&cli.global, args).await
        }
        Command::Bench(config::BenchCommand::Lag(args)) => bench_lag::lag(&cli.global, args).await,
        Command::Projections(config::ProjectionsCommand::Rebuild(args)) => {
            serve::rebuild(&cli.global, args).await
        }
        Command::Simulate(config::SimulateCommand::Gateway(args)) => simulate::gateway(args).await,
        Command::Simulate(config::SimulateCommand::Kyc(args)) => simulate::kyc(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("velka: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
