//! `velka simulate …`: simulators of the outside systems Velka talks to, for tests and demos.
//! Each prints where it listens as its first line and stops on Ctrl-C or SIGTERM.

use crate::config::{SimulateGatewayArgs, SimulateKycArgs};
use anyhow::Context;
use fixtures::gateway::{GatewayConfig, GatewaySimulator};
use fixtures::kyc_provider::{KycBehaviour, KycProviderConfig};

/// `velka simulate gateway`: the payment gateway simulator (see `fixtures::gateway`).
pub async fn gateway(args: SimulateGatewayArgs) -> anyhow::Result<()> {
    let config = GatewayConfig {
        webhook_url: args.webhook_url,
        seed: args.seed,
        ..GatewayConfig::default()
    };
    let running = GatewaySimulator::start(args.addr, config)
        .await
        .context("starting the gateway simulator")?;
    println!("velka: gateway simulator listening on {}", running.url());
    stop_requested().await;
    running
        .shutdown()
        .await
        .context("stopping the gateway simulator")?;
    Ok(())
}

/// `velka simulate kyc`: the KYC provider simulator (see `fixtures::kyc_provider`).
pub async fn kyc(args: SimulateKycArgs) -> anyhow::Result<()> {
    let config = KycProviderConfig {
        secret: args.secret,
        seed: args.seed,
        behaviour: KycBehaviour {
            delay_ms: args.delay_ms,
            ..KycBehaviour::default()
        },
    };
    let running = fixtures::kyc_provider::start(args.addr, config)
        .await
        .context("starting the KYC provider simulator")?;
    println!(
        "velka: KYC provider simulator listening on {}",
        running.url()
    );
    stop_requested().await;
    running
        .shutdown()
        .await
        .context("stopping the KYC provider simulator")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (or never, where neither can be listened for).
async fn stop_requested() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
