//! Leases: which process runs each follower of the log and each singleton worker, when several
//! worker processes share one database.
//!
//! A lease is a row of `leases` (`migrations/*_event_store_leases.sql`): a name, its holder, a
//! fencing token and an expiry. A process keeps one [`Leases`] with the names it wants; its
//! [`Leases::run`] task renews the ones it holds and takes the ones that lapsed, all of them at
//! once, every sixth of the lease's life: a few statements a round whatever the number of
//! followers, and a standby says nothing in the logs.
//!
//! Processes that want the same leases share them: each also holds a membership lease
//! (`member:<holder>`), and takes at most its share — the leases it wants divided by the live
//! members, rounded up — giving back what is beyond it when a new member comes. So adding a
//! worker spreads the followers over one more process within a second or so, and when one dies
//! the others' shares grow and they take its leases as they lapse.
//!
//! Taking a lease draws a new token from one sequence; renewing keeps it. The token is the
//! fence: an owner hands it to what it writes (a follower's checkpoint: see
//! [`crate::follower::checkpoint::claim`]), which refuses any token older than the newest it has
//! seen. A holder that was paused or cut off past its lease's expiry may still believe it holds
//! it, but its writes carry a token that has been overtaken, and change nothing.
//!
//! How fast a lapsed lease moves: its holder stopped renewing at most a lease life (`ttl`) ago,
//! and a standby looks every `ttl / 6`: after a crash, another process owns it within about
//! `ttl * 7 / 6`. A process that stops cleanly releases what it holds at once.

use crate::error::StoreError;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The default life of a lease: after a holder dies, its work moves within about 3.5 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3);

/// A lease this process holds: its fencing token, and until when it is certainly still held
/// (by this process's clock, a margin before the database's expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The fencing token drawn when the lease was taken.
    pub token: i64,
    valid_until: Instant,
}

impl Held {
    fn valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// The leases one process wants and holds. Clones share them.
#[derive(Clone, Debug)]
pub struct Leases {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    holder: String,
    ttl: Duration,
    wanted: Mutex<BTreeMap<String, watch::Sender<Option<Held>>>>,
    /// The token of this process's membership lease (`member:<holder>`), while it has one.
    member: Mutex<Option<i64>>,
    /// Leases given up by their handles, to delete in the next round (all of the leases' IO is
    /// the renewing task's, on its runtime and pool, whatever runtime a handle lives on).
    released: Mutex<Vec<(String, i64)>>,
    /// Wakes the renewing task when a name is wanted, so a free lease is taken at once.
    more: Notify,
}

/// The live members: processes that want leases, each holding a membership lease.
const MEMBERS: &str =
    "SELECT count(*) FROM leases WHERE name LIKE 'member:%' AND expires_at > clock_timestamp()";

/// Of the names given, those free to take, at most `$3`, in an order of this holder's own (so
/// that two processes with room do not all reach for the same names first).
const FREE: &str = "
    SELECT wanted.name FROM unnest($2::text[]) AS wanted(name)
    LEFT JOIN leases AS l ON l.name = wanted.name
    WHERE l.name IS NULL OR l.expires_at <= clock_timestamp() OR l.holder = $1
    ORDER BY md5(wanted.name || $1)
    LIMIT $3";

/// Gives up leases this holder holds.
const SHED: &str = "DELETE FROM leases WHERE holder = $1 AND name = ANY($2)";

/// Gives up leases this holder holds with the tokens given (released by their handles).
const RELEASE: &str = "
    DELETE FROM leases AS l USING unnest($2::text[], $3::bigint[]) AS released(name, token)
    WHERE l.name = released.name AND l.token = released.token AND l.holder = $1";

/// Renews the leases this process holds, each with the token it was taken with, while they
/// have not lapsed; answers those renewed.
const RENEW: &str = "
    UPDATE leases AS l SET expires_at = clock_timestamp() + make_interval(secs => $4)
    FROM unnest($2::text[], $3::bigint[]) AS held(name, token)
    WHERE l.name = held.name AND l.token = held.token AND l.holder = $1
      AND l.expires_at > clock_timestamp()
    RETURNING l.name, l.token";

/// Takes the wanted leases that are free: never taken, lapsed, or left by an earlier process
/// with this holder's name. Each taking draws a new token.
const TAKE: &str = "
    INSERT INTO leases AS l (name, holder, token, expires_at, acquired_at)
    SELECT name, $1, nextval('lease_tokens'),
           clock_timestamp() + make_interval(secs => $3), clock_timestamp()
    FROM unnest($2::text[]) AS wanted(name)
    ORDER BY name
    ON CONFLICT (name) DO UPDATE
    SET holder = EXCLUDED.holder, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at,
        acquired_at = EXCLUDED.acquired_at
    WHERE l.holder = EXCLUDED.holder OR l.expires_at <= clock_timestamp()
    RETURNING l.name, l.token";

impl Leases {
    /// Leases held as `holder`, each lasting `ttl` past its last renewal. Nothing is taken until
    /// [`run`](Self::run) runs. A holder's name is the process's ([`holder_name`]), or a stable
    /// name of the worker's (a restarted worker then takes back at once what it held, with new
    /// tokens); two live processes must never share one.
    pub fn new(pool: PgPool, holder: impl Into<String>, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                holder: holder.into(),
                ttl,
                wanted: Mutex::new(BTreeMap::new()),
                member: Mutex::new(None),
                released: Mutex::new(Vec::new()),
                more: Notify::new(),
            }),
        }
    }

    /// Who this process is, as a holder.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// The life of a lease past its last renewal.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Wants the lease `name` from now on, until the returned handle is dropped or released.
    /// Wanting a name twice in one process hands the second handle the same lease.
    pub fn want(&self, name: impl Into<String>) -> Lease {
        let name = name.into();
        let receiver = {
            let mut wanted = lock(&self.inner.wanted);
            match wanted.get(&name) {
                Some(sender) => sender.subscribe(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    wanted.insert(name.clone(), sender);
                    receiver
                }
            }
        };
        self.inner.more.notify_one();
        Lease {
            name,
            receiver,
            leases: self.clone(),
        }
    }

    /// Renews and takes the wanted leases until `stop` resolves, then releases those held so
    /// that other processes take them at once. A failure to reach the database is logged once
    /// per outage; the leases held run out by themselves meanwhile.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let every = self.inner.ttl / 6;
        let mut failing = false;
        loop {
            match self.renew().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(holder = %self.inner.holder, "leases renewed again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(holder = %self.inner.holder, %error,
                        "cannot renew leases; those held lapse unless this passes");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(every) => {}
                () = self.inner.more.notified() => {}
            }
        }
        if let Err(error) = self.release_all().await {
            tracing::warn!(holder = %self.inner.holder, %error,
                "cannot release the leases held; they lapse by themselves");
        }
    }

    /// One round: renew what is held and this process's membership (one statement); count the
    /// members (another); then give back what is beyond this process's share — the leases
    /// wanted divided by the members, rounded up — or take free ones up to it (two more); and
    /// tell each handle. So N processes wanting the same leases end up holding about one N-th
    /// each, a new one getting its share from the others within a round or two, and the
    /// survivors of a dead one taking its leases once they lapse.
    pub async fn renew(&self) -> Result<(), StoreError> {
        self.delete_released().await?;
        let wanted: Vec<(String, Option<i64>)> = {
            let wanted = lock(&self.inner.wanted);
            wanted
                .iter()
                .map(|(name, sender)| (name.clone(), sender.borrow().map(|held| held.token)))
                .collect()
        };
        let member = format!("member:{}", self.inner.holder);
        if wanted.is_empty() {
            return Ok(());
        }
        let pool = &self.inner.pool;
        let holder = &self.inner.holder;
        let ttl = self.inner.ttl.as_secs_f64();
        let sent = Instant::now();
        // Renew: what this process holds, and its membership.
        let member_token = *lock(&self.inner.member);
        let (mut names, mut tokens): (Vec<String>, Vec<i64>) = wanted
            .iter()
            .filter_map(|(name, token)| Some((name.clone(), (*token)?)))
            .unzip();
        if let Some(token) = member_token {
            names.push(member.clone());
            tokens.push(token);
        }
        let mut held: BTreeMap<String, i64> = BTreeMap::new();
        if !names.is_empty() {
            let rows: Vec<(String, i64)> = sqlx::query_as(RENEW)
                .bind(holder)
                .bind(&names)
                .bind(&tokens)
                .bind(ttl)
                .fetch_all(pool)
                .await?;
            held.extend(rows);
        }
        let member_token = match held.remove(&member) {
            Some(token) => Some(token),
            None => {
                let rows: Vec<(String, i64)> = sqlx::query_as(TAKE)
                    .bind(holder)
                    .bind(vec![member.clone()])
                    .bind(ttl)
                    .fetch_all(pool)
                    .await?;
                rows.into_iter().next().map(|(_, token)| token)
            }
        };
        *lock(&self.inner.member) = member_token;
        let members: i64 = sqlx::query_scalar(MEMBERS).fetch_one(pool).await?;
        let share = wanted
            .len()
            .div_ceil(usize::try_from(members.max(1)).unwrap_or(1));
        if held.len() > share {
            // Beyond the share: give back the last names, keeping the first `share`.
            let shed: Vec<String> = held.keys().skip(share).cloned().collect();
            sqlx::query(SHED)
                .bind(holder)
                .bind(&shed)
                .execute(pool)
                .await?;
            for name in &shed {
                held.remove(name);
            }
        } else if held.len() < share {
            let others: Vec<String> = wanted
                .iter()
                .map(|(name, _)| name)
                .filter(|name| !held.contains_key(*name))
                .cloned()
                .collect();
            let room = i64::try_from(share - held.len()).unwrap_or(i64::MAX);
            let free: Vec<String> = sqlx::query_scalar(FREE)
                .bind(holder)
                .bind(&others)
                .bind(room)
                .fetch_all(pool)
                .await?;
            if !free.is_empty() {
                let rows: Vec<(String, i64)> = sqlx::query_as(TAKE)
                    .bind(holder)
                    .bind(&free)
                    .bind(ttl)
                    .fetch_all(pool)
                    .await?;
                held.extend(rows);
            }
        }
        // A margin of a sixth of the life for the clocks and the round trips.
        let valid_until = sent + self.inner.ttl - self.inner.ttl / 6;
        let wanted = lock(&self.inner.wanted);
        for (name, sender) in wanted.iter() {
            let now = held.get(name).map(|&token| Held { token, valid_until });
            sender.send_if_modified(|current| {
                // A new token, or held again after running out here: wake the waiters.
                let changed = current.map(|h| h.token) != now.map(|h| h.token)
                    || current.is_some_and(|h| !h.valid());
                *current = now;
                changed
            });
        }
        Ok(())
    }

    /// Deletes the leases their handles released since the last round.
    async fn delete_released(&self) -> Result<(), StoreError> {
        let released = std::mem::take(&mut *lock(&self.inner.released));
        if released.is_empty() {
            return Ok(());
        }
        let (names, tokens): (Vec<String>, Vec<i64>) = released.into_iter().unzip();
        sqlx::query(RELEASE)
            .bind(&self.inner.holder)
            .bind(&names)
            .bind(&tokens)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    async fn release_all(&self) -> Result<(), StoreError> {
        self.delete_released().await?;
        let names: Vec<String> = {
            let mut wanted = lock(&self.inner.wanted);
            let mut names: Vec<String> = wanted.keys().cloned().collect();
            names.push(format!("member:{}", self.inner.holder));
            for sender in wanted.values_mut() {
                sender.send_replace(None);
            }
            names
        };
        sqlx::query(SHED)
            .bind(&self.inner.holder)
            .bind(&names)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    fn unwant(&self, name: &str) {
        let mut wanted = lock(&self.inner.wanted);
        if let Some(sender) = wanted.get(name)
            && sender.receiver_count() <= 1
        {
            wanted.remove(name);
        }
    }
}

/// One wanted lease. Dropping it stops wanting it (a lease held then lapses); [`release`]
/// gives it up at once.
///
/// [`release`]: Lease::release
#[derive(Debug)]
pub struct Lease {
    name: String,
    receiver: watch::Receiver<Option<Held>>,
    leases: Leases,
}

impl Lease {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Who this process is, as a holder.
    pub fn holder(&self) -> &str {
        self.leases.holder()
    }

    /// Its token, if this process holds it now.
    pub fn token(&self) -> Option<i64> {
        self.receiver
            .borrow()
            .filter(Held::valid)
            .map(|held| held.token)
    }

    /// Waits until this process holds it; its token.
    pub async fn acquired(&mut self) -> i64 {
        loop {
            if let Some(token) = self.token() {
                return token;
            }
            if self.receiver.changed().await.is_err() {
                // The lease set is gone: nothing will ever be taken again.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves once this process no longer holds it with `token`: taken by another after it
    /// lapsed, not renewed in time, or released.
    pub async fn lost(&mut self, token: i64) {
        loop {
            let valid_until = match *self.receiver.borrow_and_update() {
                Some(held) if held.token == token && held.valid() => held.valid_until,
                _ => return,
            };
            tokio::select! {
                changed = self.receiver.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(valid_until) => {}
            }
        }
    }

    /// Gives it up, if held, so another process takes it without waiting for it to lapse: the
    /// next round of [`Leases::renew`] deletes it (this wakes the renewing task).
    pub fn release(self) {
        let held = *self.receiver.borrow();
        if let Some(held) = held {
            lock(&self.leases.inner.released).push((self.name.clone(), held.token));
            self.leases.inner.more.notify_one();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.leases.unwant(&self.name);
    }
}

/// Runs a singleton worker only while this process holds `lease`: `work` is started each time
/// the lease is taken, with a token that is cancelled when the lease is lost or `stop` resolves,
/// and awaited to its end before anything else happens (it finishes what it has in hand). The
/// lease is released when `stop` resolves. A standby says nothing in the logs.
pub async fn while_held<W, Fut>(mut lease: Lease, stop: impl Future<Output = ()>, mut work: W)
where
    W: FnMut(tokio_util::sync::CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(stop);
    loop {
        let token = tokio::select! {
            () = &mut stop => break,
            token = lease.acquired() => token,
        };
        tracing::info!(lease = %lease.name, token, holder = lease.holder(), "took the lease");
        let cancel = tokio_util::sync::CancellationToken::new();
        let run = work(cancel.clone());
        tokio::pin!(run);
        enum Ended {
            ByItself,
            Stopped,
            Lost,
        }
        let ended = tokio::select! {
            () = &mut run => Ended::ByItself,
            () = &mut stop => Ended::Stopped,
            () = lease.lost(token) => Ended::Lost,
        };
        cancel.cancel();
        if !matches!(ended, Ended::ByItself) {
            run.await;
        }
        match ended {
            Ended::Stopped => break,
            Ended::Lost => {
                tracing::info!(lease = %lease.name, "lost the lease; standing by");
            }
            // A worker that ends by itself is done until its lease is taken again.
            Ended::ByItself => tokio::select! {
                () = &mut stop => break,
                () = lease.lost(token) => {}
            },
        }
    }
    lease.release();
}

/// A holder name unique to this process: host, process id and a random part (a restarted
/// process with a reused pid is a new holder).
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
