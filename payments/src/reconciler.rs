//! The hold reconciler: what slips through anyway. It lists the holds the gateway keeps open and
//! compares them with what Velka recorded; a hold that nothing explains — no trip's
//! `PaymentHeld`, no noted intent — for longer than the grace period is let go.
//!
//! Intents make such holds rare (every hold Velka asks for is noted first), so what this finds
//! is the unforeseen: a hold from before intents existed, a gateway that forgot an idempotence
//! key and made a second hold under it, a hold made by hand at the gateway for a customer.
//!
//! A pass, by the injected clock:
//!
//! 1. every open hold not explained by a pending intent is recorded in `gateway_holds_seen` the
//!    first time it is seen (rows of holds no longer open are forgotten);
//! 2. a hold seen longer than the grace period ago, and not yet explained, is looked up on its
//!    customer's account (`customer_ref`): a trip that took it explains it for good (the payment
//!    saga captures or releases it);
//! 3. otherwise it is abandoned on the account (`HoldAbandoned`, reason `unknown_to_velka`, so
//!    an auditor sees what was let go and why) and cancelled at the gateway.
//!
//! Each step repeats safely, so a crash anywhere is finished by a later pass.

use crate::account::{decide, load};
use crate::gateway::{GatewayError, GatewayPayment};
use crate::intents;
use crate::{Payments, PaymentsError};
use chrono::{DateTime, Utc};
use domain::account::{AbandonReason, AccountCommand, AccountId, HoldToAbandon};
use domain::ids::CustomerId;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// How often the reconciler lists the gateway's open holds.
pub const DEFAULT_POLL: Duration = Duration::from_secs(30);
/// Holds asked for per page.
const PAGE: u32 = 100;
/// The most pages read in one pass (a bound on one pass's work).
const MAX_PAGES: usize = 1_000;

/// What one pass found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcilePass {
    /// Holds open at the gateway.
    pub open: usize,
    /// Of those, noted by a pending intent (the sweeper's).
    pub noted: usize,
    /// Taken by a trip (found on the account).
    pub taken: usize,
    /// Unexplained, still within the grace period.
    pub waiting: usize,
    /// Unexplained past the grace period, and let go.
    pub released: usize,
    /// Not settled this pass (the gateway or the database did not answer).
    pub failed: usize,
}

#[derive(Debug, sqlx::FromRow)]
struct Seen {
    payment_id: String,
    customer_ref: String,
    hold_key: Option<String>,
    amount_kopecks: i64,
    first_seen_at: DateTime<Utc>,
    explained_at: Option<DateTime<Utc>>,
}

/// Lets go of open holds nothing explains, every `poll`.
#[derive(Debug)]
pub struct HoldReconciler {
    payments: Payments,
    poll: Duration,
}

impl HoldReconciler {
    /// A reconciler of `payments`' gateway.
    pub fn new(payments: Payments) -> Self {
        Self {
            payments,
            poll: DEFAULT_POLL,
        }
    }

    /// Lists every `poll` instead of the default.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Runs passes until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            match self.pass().await {
                Ok(pass) if pass.released > 0 || pass.failed > 0 => {
                    tracing::info!(?pass, "holds reconciled with the gateway");
                }
                Ok(pass) => tracing::debug!(?pass, "holds reconciled with the gateway"),
                Err(error) => tracing::warn!(%error, "hold reconciliation failed; retrying"),
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Every hold the gateway keeps open, and whether the listing was complete.
    async fn open_holds(&self) -> Result<(Vec<GatewayPayment>, bool), GatewayError> {
        let mut holds = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .payments
                .gateway()
                .open_holds(cursor.as_deref(), PAGE)
                .await?;
            holds.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok((holds, true)),
            }
        }
        Ok((holds, false))
    }

    /// One pass: see the module documentation.
    pub async fn pass(&self) -> Result<ReconcilePass, PaymentsError> {
        let pool = self.payments.pool();
        let now = self.payments.now();
        let (open, complete) = self.open_holds().await?;
        let mut pass = ReconcilePass {
            open: open.len(),
            ..ReconcilePass::default()
        };
        let keys: Vec<String> = open
            .iter()
            .filter_map(|hold| hold.hold_key().map(str::to_owned))
            .collect();
        let noted = intents::pending_among(pool, &keys).await?;
        let mut unexplained = Vec::new();
        for hold in &open {
            if hold
                .hold_key()
                .is_some_and(|key| noted.iter().any(|n| n == key))
            {
                pass.noted += 1;
                continue;
            }
            unexplained.push(hold);
        }
        record_seen(pool, &unexplained, now).await?;
        if complete {
            let open_ids: Vec<&str> = open.iter().map(|hold| hold.id.as_str()).collect();
            sqlx::query("DELETE FROM gateway_holds_seen WHERE NOT (payment_id = ANY($1))")
                .bind(&open_ids)
                .execute(pool)
                .await?;
        }
        let candidates: Vec<&str> = unexplained.iter().map(|hold| hold.id.as_str()).collect();
        let rows: Vec<Seen> = sqlx::query_as(
            "SELECT payment_id, customer_ref, hold_key, amount_kopecks, first_seen_at, explained_at
             FROM gateway_holds_seen WHERE payment_id = ANY($1) ORDER BY first_seen_at",
        )
        .bind(&candidates)
        .fetch_all(pool)
        .await?;
        let mut due = Vec::new();
        for seen in rows {
            if seen.explained_at.is_some() {
                pass.taken += 1;
            } else if seen.first_seen_at > now - self.payments.grace() {
                pass.waiting += 1;
            } else {
                due.push(seen);
            }
        }
        for seen in due {
            match self.settle(&seen).await {
                Ok(Outcome::Taken) => pass.taken += 1,
                Ok(Outcome::Released) => pass.released += 1,
                Ok(Outcome::NotOurs) => {}
                Ok(Outcome::GatewayUnavailable) => pass.failed += 1,
                Err(error) => {
                    tracing::warn!(payment_id = %seen.payment_id, %error, "an unexplained hold could not be settled; next pass");
                    pass.failed += 1;
                }
            }
        }
        metrics::gauge!("velka_gateway_holds_open").set(pass.open as f64);
        metrics::gauge!("velka_gateway_holds_unexplained").set(pass.waiting as f64);
        Ok(pass)
    }

    async fn settle(&self, seen: &Seen) -> Result<Outcome, PaymentsError> {
        let pool = self.payments.pool();
        let Ok(customer) = Uuid::parse_str(&seen.customer_ref) else {
            tracing::warn!(payment_id = %seen.payment_id, customer_ref = %seen.customer_ref,
                "an open hold at the gateway is for no customer of Velka's; left alone");
            mark(pool, "explained_at", &seen.payment_id, self.payments.now()).await?;
            return Ok(Outcome::NotOurs);
        };
        let account_id = AccountId::Customer(CustomerId(customer));
        let account = load(self.payments.store(), account_id).await?;
        let by_trip = account.state.holds.values().any(|held| {
            held.payment_id == seen.payment_id || seen.hold_key.as_ref() == Some(&held.key)
        });
        if by_trip {
            mark(pool, "explained_at", &seen.payment_id, self.payments.now()).await?;
            return Ok(Outcome::Taken);
        }
        let key = seen
            .hold_key
            .clone()
            .unwrap_or_else(|| format!("payment:{}", seen.payment_id));
        let abandoned = decide(
            self.payments.store(),
            account_id,
            &AccountCommand::AbandonHold(HoldToAbandon {
                key,
                payment_id: Some(seen.payment_id.clone()),
                trip_id: None,
                amount_kopecks: domain::money::Kopecks(seen.amount_kopecks),
                reason: AbandonReason::UnknownToVelka,
            }),
            self.payments.now(),
        )
        .await?;
        match abandoned {
            Ok(_) => {}
            Err(domain::Rejection::HoldTaken { .. }) => {
                mark(pool, "explained_at", &seen.payment_id, self.payments.now()).await?;
                return Ok(Outcome::Taken);
            }
            Err(other) => return Err(other.into()),
        }
        event_store::crash::point("reconcile.after_abandon");
        let release_key = format!("reconcile-release-{}", seen.payment_id);
        match self
            .payments
            .gateway()
            .cancel(&seen.payment_id, &release_key)
            .await
        {
            Ok(_) => {}
            Err(GatewayError::Unavailable(_)) => return Ok(Outcome::GatewayUnavailable),
            Err(GatewayError::Refused { code, description }) => {
                // Captured or cancelled meanwhile: nothing held any more.
                tracing::info!(payment_id = %seen.payment_id, code = code.as_str(), %description,
                    "an unexplained hold was settled at the gateway meanwhile");
            }
        }
        mark(pool, "released_at", &seen.payment_id, self.payments.now()).await?;
        tracing::warn!(payment_id = %seen.payment_id, customer = %seen.customer_ref,
            amount_kopecks = seen.amount_kopecks, "let go of a hold nothing in Velka explained");
        metrics::counter!("velka_holds_released_total", "reason" => "unknown_to_velka")
            .increment(1);
        Ok(Outcome::Released)
    }
}

enum Outcome {
    Taken,
    Released,
    NotOurs,
    GatewayUnavailable,
}

async fn record_seen(
    pool: &sqlx::PgPool,
    holds: &[&GatewayPayment],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if holds.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = holds.iter().map(|hold| hold.id.as_str()).collect();
    let customers: Vec<&str> = holds
        .iter()
        .map(|hold| hold.customer_ref.as_str())
        .collect();
    let keys: Vec<Option<&str>> = holds.iter().map(|hold| hold.hold_key()).collect();
    let amounts: Vec<i64> = holds.iter().map(|hold| hold.amount_kopecks.get()).collect();
    sqlx::query(
        "INSERT INTO gateway_holds_seen
             (payment_id, customer_ref, hold_key, amount_kopecks, first_seen_at)
         SELECT id, customer, key, amount, $5
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS h(id, customer, key, amount)
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&keys)
    .bind(&amounts)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

async fn mark(
    pool: &sqlx::PgPool,
    column: &'static str,
    payment_id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE gateway_holds_seen SET {column} = $2 WHERE payment_id = $1"
    ))
    .bind(payment_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}
