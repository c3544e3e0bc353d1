//! `velka`: the one binary. `velka serve` runs the whole core in one process — command API,
//! query API, projectors — on one address; `velka migrate` prepares the database; `velka token`
//! prints a bearer token for trying the API; `velka seed` loads a generated city into a running
//! server; `velka simulate` drives app traffic against one, and `velka simulate gateway` runs the
//! payment gateway simulator; `velka audit` verifies the hash chain, exports the log, reconciles
//! money and shows state as of a time; `velka customer erase` erases a customer's personal data.

mod audit;
mod config;
mod ops;
mod saga_host;
mod serve;
mod simulate;
mod tools;

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
        Command::Bench(command) => tools::bench(&cli.global, command).await,
        Command::Projections(config::ProjectionsCommand::Rebuild(args)) => {
            serve::rebuild(&cli.global, args).await
        }
        Command::Seed(args) => tools::seed(&cli.global, args).await,
        Command::Simulate(config::SimulateArgs {
            command: Some(config::SimulateCommand::Gateway(args)),
            ..
        }) => simulate::gateway(args).await,
        Command::Simulate(config::SimulateArgs {
            command: Some(config::SimulateCommand::Traffic(args)),
            ..
        }) => tools::simulate(&cli.global, args).await,
        Command::Simulate(config::SimulateArgs {
            command: None,
            traffic,
        }) => tools::simulate(&cli.global, traffic).await,
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
        Command::Segments(args) => serve::segments(&cli.global, args).await,
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
