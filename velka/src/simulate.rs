//! `velka simulate …`: simulators of the outside systems Velka talks to, for tests and demos.
//! Each prints where it listens as its first line and stops on Ctrl-C or SIGTERM.

use crate::config::SimulateGatewayArgs;
use anyhow::Context;
use fixtures::gateway::{GatewayConfig, GatewaySimulator};

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
