//! `velka simulate gateway` and `velka simulate kyc`: simulators of the outside systems Velka
//! talks to (`fixtures`), for tests and demos. Each prints where it listens as its first line
//! and stops on Ctrl-C or SIGTERM.

use crate::config::{SimulateGatewayArgs, SimulateKycArgs};
use anyhow::Context;
use fixtures::gateway::GatewayConfig;
use fixtures::kyc_provider::{KycBehaviour, KycProviderConfig};
use fixtures::simulator::{Running, SimulatorError};

/// `velka simulate gateway`: the payment gateway simulator (see `fixtures::gateway`).
pub async fn gateway(args: SimulateGatewayArgs) -> anyhow::Result<()> {
    let config = GatewayConfig {
        webhook_url: args.webhook_url,
        seed: args.seed,
        ..GatewayConfig::default()
    };
    let started = fixtures::gateway::start(args.addr, config).await;
    serve_until_stopped("gateway simulator", started).await
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
    let started = fixtures::kyc_provider::start(args.addr, config).await;
    serve_until_stopped("KYC provider simulator", started).await
}

/// Says where the simulator listens, then stops it on Ctrl-C or SIGTERM.
async fn serve_until_stopped<S>(
    name: &str,
    started: Result<Running<S>, SimulatorError>,
) -> anyhow::Result<()> {
    let running = started.with_context(|| format!("starting the {name}"))?;
    println!("velka: {name} listening on {}", running.url());
    crate::serve::shutdown_signal().await;
    running
        .shutdown()
        .await
        .with_context(|| format!("stopping the {name}"))
}
