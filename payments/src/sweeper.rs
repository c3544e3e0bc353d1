//! The hold sweeper: settles every noted hold (`hold_intents`) that is due — no trip took it
//! within its grace period, or its start was refused for good — so that none outlives the start
//! it was made for, whatever instant the process died at.
//!
//! Settling one is [`crate::settle::let_go`]; every step of it repeats safely, so a crash
//! anywhere is finished by the next pass. Time is the injected clock's; the sweeper only polls
//! in real time.

use crate::intents::{self, HoldIntent};
use crate::settle::{Settled, let_go};
use crate::{Payments, PaymentsError};
use domain::account::AbandonReason;
use std::future::Future;
use std::time::Duration;

/// How often the sweeper looks (one indexed read of a small table).
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// The most holds settled in one pass.
const BATCH: i64 = 100;

fn reason_of(intent: &HoldIntent) -> AbandonReason {
    match intent.release_reason.as_deref() {
        Some("start_refused") => AbandonReason::StartRefused,
        _ => AbandonReason::NotTaken,
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepPass {
    /// Holds cancelled at the gateway (or found never made).
    pub released: usize,
    /// Intents cleared because a trip holds the hold.
    pub taken: usize,
    /// Holds the gateway did not answer for; tried again next pass.
    pub failed: usize,
}

/// Settles due hold intents, every `poll`.
#[derive(Debug)]
pub struct HoldSweeper {
    payments: Payments,
    poll: Duration,
}

impl HoldSweeper {
    /// A sweeper of `payments`' intents.
    pub fn new(payments: Payments) -> Self {
        Self {
            payments,
            poll: DEFAULT_POLL,
        }
    }

    /// Looks every `poll` instead of the default.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Runs passes until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "hold sweep failed; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Settles the due intents (up to a batch).
    pub async fn pass(&self) -> Result<SweepPass, PaymentsError> {
        let mut pass = SweepPass::default();
        let pool = self.payments.pool();
        let now = self.payments.now();
        intents::forget_released(pool, now).await?;
        let due = intents::due(pool, now, BATCH).await?;
        metrics::gauge!("velka_hold_intents_due").set(due.len() as f64);
        for intent in due {
            match let_go(&self.payments, &intent, reason_of(&intent)).await {
                Ok(Settled::Taken) => pass.taken += 1,
                Ok(Settled::Released) => pass.released += 1,
                Ok(Settled::GatewayUnavailable) => pass.failed += 1,
                // One hold that cannot be settled must not hold back the others.
                Err(error) => {
                    tracing::warn!(key = %intent.hold_key, %error, "a due hold could not be settled; next pass");
                    pass.failed += 1;
                }
            }
        }
        Ok(pass)
    }
}
