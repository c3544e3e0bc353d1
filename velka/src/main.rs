//! `velka`: the one binary. `velka serve` runs the whole core in one process — command API,
//! query API, projectors — on one address; `velka migrate` prepares the database; `velka token`
//! prints a bearer token for trying the API; `velka seed` loads a generated city into a running
//! server; `velka simulate` drives app traffic against one, and `velka simulate gateway` runs the
//! payment gateway simulator; `velka audit` verifies the hash chain, exports the log, reconciles
//! money and shows state as of a time; `velka customer erase` erases a customer's personal data.

mod admission;
mod audit;
mod bench;
mod bench_bulk;
mod bench_http;
mod bench_lag;
mod bench_load;
mod bench_verify;
mod client;
mod config;
mod demo;
mod ops;
mod saga_host;
mod seed;
mod serve;
mod simulate;
mod traffic;

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
        Command::Bench(config::BenchCommand::Commands(args)) => {
            bench_load::commands(&cli.global, args).await
        }
        Command::Bench(config::BenchCommand::Peak(args)) => {
            bench_load::peak(&cli.global, args).await
        }
        Command::Bench(config::BenchCommand::Replay(args)) => {
            bench_bulk::replay(&cli.global, args).await
        }
        Command::Bench(config::BenchCommand::History(args)) => {
            bench_bulk::history(&cli.global, args).await
        }
        Command::Bench(config::BenchCommand::Verify(args)) => {
            bench_verify::verify(&cli.global, args).await
        }
        Command::Projections(config::ProjectionsCommand::Rebuild(args)) => {
            serve::rebuild(&cli.global, args).await
        }
        Command::Seed(args) => seed::run(&cli.global, args).await,
        Command::Simulate(config::SimulateArgs {
            command: Some(config::SimulateCommand::Gateway(args)),
            ..
        }) => simulate::gateway(args).await,
        Command::Simulate(config::SimulateArgs {
            command: Some(config::SimulateCommand::Traffic(args)),
            ..
        }) => traffic::run(&cli.global, args).await,
        Command::Simulate(config::SimulateArgs {
            command: None,
            traffic,
        }) => traffic::run(&cli.global, traffic).await,
        Command::Audit(config::AuditCommand::Verify(args)) => {
            audit::verify(&cli.global, args).await
        }
        Command::Audit(config::AuditCommand::Export(args)) => {
            audit::export(&cli.global, args).await
        }
        Command::Audit(config::AuditCommand::Money(args)) => audit::money(&cli.global, args).await,
        Command::Audit(config::AuditCommand::State(args)) => audit::state(&cli.global, args).await,
        Command::Audit(config::AuditCommand::RebuildAsOf(args)) => {
            audit::rebuild_as_of(&cli.global, args).await
        }
        Command::Customer(config::CustomerCommand::Erase(args)) => {
            serve::erase_customer(&cli.global, args).await
        }
        Command::Simulate(config::SimulateArgs {
            command: Some(config::SimulateCommand::Kyc(args)),
            ..
        }) => simulate::kyc(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("velka: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
