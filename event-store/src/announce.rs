//! Telling other processes that the log moved, so that their followers wake at once instead of
//! at their next idle poll.
//!
//! After an append of this process commits, a task of its own sends `NOTIFY velka_log` with
//! this process's token; appends that commit while a notification is on its way share the next
//! one, so at most one is in flight, whatever the append rate. The append itself never waits for
//! it: PostgreSQL serialises the commits of transactions that notify (one lock for the whole
//! notification queue, held across the commit's flush), so a notification sent from the append's
//! own transaction would cost every append its share of the group flush — measured at about 13%
//! of `bench commands`. The other half is the tail's listener (`tail::listen`), which ignores its
//! own process's token.
//!
//! A notification is a hint, never the truth: what a follower delivers is decided by the
//! gap-free read, and a hint lost to a crash between commit and `NOTIFY` costs one idle poll.

use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// The channel appends are announced on.
pub(crate) const CHANNEL: &str = "velka_log";

/// The announcing half, shared by every clone of one store.
#[derive(Debug)]
pub(crate) struct Announcer {
    /// Set by appends; the task takes it and sends one notification for all of them.
    wake: Arc<Notify>,
    started: AtomicBool,
    /// This process's payload, which its own listener ignores.
    token: String,
}

impl Announcer {
    pub(crate) fn new() -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
            token: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// What this process's notifications carry.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// An append committed: announce it soon (starting the task the first time, if a Tokio
    /// runtime is running).
    pub(crate) fn announce(self: &Arc<Self>, pool: &PgPool) {
        if !self.started.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(run(Arc::downgrade(self), self.wake.clone(), pool.clone()));
                }
                Err(_) => {
                    self.started.store(false, Ordering::Release);
                    return;
                }
            }
        }
        self.wake.notify_one();
    }
}

/// Sends one notification per wake-up; ends when every store handle is gone.
async fn run(announcer: Weak<Announcer>, wake: Arc<Notify>, pool: PgPool) {
    let Some(token) = announcer.upgrade().map(|a| a.token.clone()) else {
        return;
    };
    loop {
        // Wake now and then to notice that the store is gone.
        if tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .is_err()
        {
            if announcer.strong_count() == 0 {
                return;
            }
            continue;
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&token)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, "cannot announce an append; other processes poll meanwhile");
        }
    }
}
