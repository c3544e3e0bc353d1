//! `velka bench append`: how fast the event store appends, with one writer and with many,
//! side by side with raw single-row PostgreSQL inserts measured in the same run (pgbench when it
//! is installed, else the same inserts from this process), so the ratio holds on a noisy machine.
//!
//! It runs against a scratch database (`<DATABASE_URL's name>_bench`), recreated each run.

use super::{Setup, pgbench_inserts, recreate_bench_database};
use crate::error::{Context, LoadError, Result};
use chrono::Utc;
use event_store::{
    AppendRequest, Claims, EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite,
};
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What one timed phase measured.
struct Phase {
    /// Operations per second in each whole second of the run.
    per_second: Vec<f64>,
    /// Latency of every operation, in seconds.
    latencies_s: Vec<f64>,
}

impl Phase {
    fn median_rate(&self) -> f64 {
        median(&self.per_second)
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_s, p) * 1000.0
    }
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What `velka bench append` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct AppendConfig {
    /// Concurrent writers; one phase per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
    pub writers: Vec<u32>,
    /// Seconds per phase (each writer count runs a baseline phase and an append phase).
    #[arg(long = "duration", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_s: u64,
    /// Events in each append.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub events_per_append: u32,
}

/// Group commit, as `velka serve` is configured (see `EventStore::with_group_commit`).
#[derive(Clone, Copy, Debug)]
pub struct GroupCommit {
    /// Most appends in one transaction.
    pub max_group: u16,
    /// Appends in flight before the next ones queue into a group.
    pub writers: u16,
}

/// `velka bench append`.
pub async fn append(setup: &Setup, args: AppendConfig, group: GroupCommit) -> Result<()> {
    let (url, options) = recreate_bench_database(&setup.database_url).await?;
    let writers_max = args.writers.iter().copied().max().unwrap_or(1);
    let pool = event_store::database::connect(&url, writers_max + 2).await?;
    event_store::database::migrate(&pool, &url).await?;
    sqlx::query("CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, stream_id text NOT NULL, payload jsonb NOT NULL)")
        .execute(&pool)
        .await?;
    let store = EventStore::new(pool.clone())
        .with_group_commit(usize::from(group.max_group), usize::from(group.writers));
    let duration = Duration::from_secs(args.duration_s);
    println!(
        "velka bench append: {} s per phase, {} event(s) per append, writers {:?}, group commit {} in flight then up to {} a transaction, database {}",
        args.duration_s,
        args.events_per_append,
        args.writers,
        group.writers,
        group.max_group,
        event_store::database::redacted(&url)
    );
    let pgbench = &setup.pgbench;
    for &writers in &args.writers {
        // Warm up the pool and the table's pages so the first phase is not penalised.
        append_phase(
            &store,
            writers,
            Duration::from_secs(1),
            args.events_per_append,
        )
        .await?;
        let (baseline_rate, baseline_source) = match &pgbench {
            Some(path) => (
                pgbench_inserts(setup, path, &options, writers, args.duration_s)?,
                "pgbench",
            ),
            None => (
                insert_phase(&pool, writers, duration).await?.median_rate(),
                "sqlx",
            ),
        };
        println!("  writers={writers}: baseline {baseline_rate:.0} inserts/s ({baseline_source})");
        let phase = append_phase(&store, writers, duration, args.events_per_append).await?;
        let rate = phase.median_rate();
        let events_rate = rate * args.events_per_append as f64;
        println!(
            "  writers={writers}: {rate:.0} appends/s ({events_rate:.0} events/s), p50 {:.2} ms, p99 {:.2} ms",
            phase.percentile_ms(0.5),
            phase.percentile_ms(0.99)
        );
        println!(
            "result: bench=append writers={writers} events_per_append={} rate={rate:.0} events_per_s={events_rate:.0} p50_ms={:.2} p99_ms={:.2} baseline_rate={baseline_rate:.0} baseline={baseline_source} ratio={:.2}",
            args.events_per_append,
            phase.percentile_ms(0.5),
            phase.percentile_ms(0.99),
            if baseline_rate > 0.0 {
                rate / baseline_rate
            } else {
                0.0
            }
        );
    }
    pool.close().await;
    Ok(())
}

/// Appends from `writers` tasks for `duration`: each writer appends to its own streams with
/// the expected version it tracks (as a command handler would after loading), starting a new
/// stream every 100 appends.
async fn append_phase(
    store: &EventStore,
    writers: u32,
    duration: Duration,
    events_per_append: u32,
) -> Result<Phase> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done: Vec<(f64, f64)> = Vec::new();
            let mut stream = format!("bench-{}", Uuid::now_v7());
            let mut version = 0u64;
            while started.elapsed() < duration {
                if version >= 100 {
                    stream = format!("bench-{}", Uuid::now_v7());
                    version = 0;
                }
                let now = Utc::now();
                let events = (0..events_per_append)
                    .map(|n| NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: "BenchEvent".to_owned(),
                        schema_version: 1,
                        data: json!({ "n": n, "at": now }),
                        occurred_at: now,
                    })
                    .collect();
                let request = AppendRequest {
                    writes: vec![StreamWrite {
                        stream_id: stream.clone(),
                        expected: ExpectedVersion::after(version),
                        events,
                    }],
                    metadata: Metadata {
                        correlation_id: Uuid::now_v7(),
                        causation_id: None,
                        actor: "bench".to_owned(),
                        command_id: Some(Uuid::now_v7()),
                    },
                    recorded_at: now,
                    claims: Claims::default(),
                    result: None,
                };
                let t0 = Instant::now();
                store.append(&request).await?;
                done.push((started.elapsed().as_secs_f64(), t0.elapsed().as_secs_f64()));
                version += u64::from(events_per_append);
            }
            Ok::<_, LoadError>(done)
        }));
    }
    collect(tasks, duration).await
}

/// The baseline without pgbench: single-row INSERTs in autocommit from `writers` tasks.
async fn insert_phase(pool: &sqlx::PgPool, writers: u32, duration: Duration) -> Result<Phase> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while started.elapsed() < duration {
                let t0 = Instant::now();
                sqlx::query("INSERT INTO bench_baseline (stream_id, payload) VALUES ('baseline', '{\"n\": 1}')")
                    .execute(&pool)
                    .await?;
                done.push((started.elapsed().as_secs_f64(), t0.elapsed().as_secs_f64()));
            }
            Ok::<_, LoadError>(done)
        }));
    }
    collect(tasks, duration).await
}

/// Per operation: (seconds since the phase started when it finished, its latency in seconds).
type Timings = Vec<(f64, f64)>;

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Result<Timings>>>,
    duration: Duration,
) -> Result<Phase> {
    let seconds = duration.as_secs().max(1) as usize;
    let mut per_second = vec![0.0; seconds];
    let mut latencies_s = Vec::new();
    for task in tasks {
        for (finished_at_s, latency_s) in task.await.context("bench writer panicked")?? {
            let second = finished_at_s as usize;
            if second < seconds {
                per_second[second] += 1.0;
            }
            latencies_s.push(latency_s);
        }
    }
    Ok(Phase {
        per_second,
        latencies_s,
    })
}
