//! `velka bench verify`: how fast `velka audit verify` recomputes the hash chain, against the
//! fastest possible read of the same columns in the same run.
//!
//! Bulk-loads telemetry-like events (about 300 bytes of JSON each, the log's commonest kind)
//! into the scratch database `<name>_bench`, seals them into the chain with the sealer's own
//! [`audit::sealer::seal`], then measures, one after the other on the same data:
//!
//! - the baseline: on one connection, `COPY` of the chain columns verify reads and `COPY
//!   (SELECT <the columns the chain covers> FROM events) TO STDOUT (FORMAT binary)`, the bytes
//!   read and thrown away — PostgreSQL producing the rows verify needs, with no hashing and no
//!   parsing on our side;
//! - `audit verify` with its default options (and the `--parallel` values given).
//!
//! The result line carries the rate, the baseline, their ratio, and the mission's target.

use super::{Setup, recreate_bench_database};
use crate::error::{Context, Result};
use crate::progress::Progress;
use audit::verify::{CHAIN_READ_COLUMNS, VERIFY_EVENT_COLUMNS, Verdict, VerifyOptions};
use event_store::{EventStore, LogPosition};
use futures::TryStreamExt;
use std::time::{Duration, Instant};

/// The mission's target for an integrity check of the whole log.
const TARGET_EVENTS_PER_S: f64 = 1_000_000.0;

/// The sealer's checkpoint name, as `velka serve` runs it: the chain `velka audit verify` checks.
const CHAIN: &str = "chain";

/// What `velka bench verify` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct VerifyConfig {
    /// Sealed events to verify.
    #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000_000))]
    pub events: u64,
    /// Verify's `--parallel` values to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2, 4], value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: Vec<u32>,
    /// Verify's `--chunk`: entries per query.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    pub chunk: i64,
    /// Runs of verify at each `--parallel` (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
}

/// `velka bench verify`.
pub async fn verify(setup: &Setup, args: VerifyConfig) -> Result<()> {
    let (url, _options) = recreate_bench_database(&setup.database_url).await?;
    let max_parallel = args.parallel.iter().copied().max().unwrap_or(2);
    let pool = event_store::database::connect(&url, max_parallel + 2).await?;
    event_store::database::migrate(&pool, &url).await?;
    let events = i64::try_from(args.events).context("--events")?;
    println!(
        "velka bench verify: {events} events, verify --parallel {:?}, database {}",
        args.parallel,
        event_store::database::redacted(&url)
    );

    // Streams of 100 telemetry readings of one car each.
    let load =
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version,
                                     data, correlation_id, actor, occurred_at, recorded_at)
         SELECT 'vehicle-' || lpad(to_hex(g / 100), 32, '0'), g % 100 + 1,
                lpad(to_hex(g), 32, '0')::uuid, 'TelemetryRecorded', 1,
                jsonb_build_object(
                    'vehicle_id', lpad(to_hex(g / 100), 32, '0')::uuid,
                    'position', jsonb_build_object('lat', 55.55 + (g % 4001) / 10000.0,
                                                   'lon', 37.35 + (g % 5003) / 10000.0),
                    'speed_kmh', g % 91, 'heading_deg', g % 360,
                    'fuel_percent', 5 + g % 95, 'odometer_km', 10000 + g / 50,
                    'doors_locked', g % 7 = 0, 'ignition_on', g % 3 <> 0,
                    'read_at', timestamptz '2026-11-01 09:00:00+03' + g * interval '50 ms'),
                lpad(to_hex(g / 100), 32, '0')::uuid, 'telematics',
                timestamptz '2026-11-01 09:00:00+03' + g * interval '50 ms', now()
         FROM generate_series($1::bigint, $2::bigint) AS g";
    let streams = "INSERT INTO streams (stream_id, version)
         SELECT 'vehicle-' || lpad(to_hex(s), 32, '0'), 100
         FROM generate_series($1::bigint / 100, $2::bigint / 100) AS s";
    let events = events.div_euclid(100).max(1) * 100;
    let load_s = super::bulk::bulk_load(&pool, 0, events, 500_000, &[load, streams]).await?;
    let bytes: i64 = sqlx::query_scalar("SELECT avg(pg_column_size(data))::bigint FROM events")
        .fetch_one(&pool)
        .await?;
    println!("  loaded {events} events in {load_s:.1} s (data ~{bytes} bytes each as stored)");

    // Seal them all, as the sealer would have, batch by batch.
    let started = Instant::now();
    let store = EventStore::new(pool.clone());
    let mut head = audit::sealer::load_checkpoint(&pool, CHAIN).await?;
    let mut position = LogPosition::START;
    let progress = Progress::counting(
        "velka bench: sealing",
        u64::try_from(events).ok(),
        "events",
        true,
        Duration::from_secs(10),
    );
    loop {
        let page = store.read_log_page(position, 10_000).await?;
        let Some(last) = page.events.last() else {
            break;
        };
        position = last.log_position;
        head = audit::sealer::seal(&pool, CHAIN, head, &page.events).await?;
        progress.set_position(head.seq);
    }
    progress.finish_and_clear();
    ensure!(
        head.seq == events,
        "sealed {} events of {events}: the log was not read to its end",
        head.seq
    );
    println!(
        "  sealed {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
    sqlx::query("VACUUM ANALYZE event_chain")
        .execute(&pool)
        .await?;

    // The baseline, three times (the first also warms the cache for everything after it); the
    // median is reported.
    let mut baseline_rates = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut connection = pool.acquire().await?;
        let mut read = 0usize;
        for statement in [
            format!(
                "COPY (SELECT {CHAIN_READ_COLUMNS} FROM event_chain) TO STDOUT (FORMAT binary)"
            ),
            format!("COPY (SELECT {VERIFY_EVENT_COLUMNS} FROM events e) TO STDOUT (FORMAT binary)"),
        ] {
            let mut out = connection.copy_out_raw(&statement).await?;
            while let Some(chunk) = out.try_next().await? {
                read += chunk.len();
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        baseline_rates.push(events as f64 / seconds);
        println!(
            "  baseline: COPY out of the chain and of the covered columns, {events} rows ({:.0} MB) in {seconds:.1} s ({:.0} rows/s)",
            read as f64 / 1e6,
            events as f64 / seconds
        );
    }
    let baseline = median(&mut baseline_rates);

    let mut best = 0f64;
    let mut best_parallel = 0;
    for &parallel in &args.parallel {
        let mut rates = Vec::new();
        for _ in 0..args.runs {
            let started = Instant::now();
            let verdict = audit::verify::verify(
                &pool,
                CHAIN,
                &[],
                VerifyOptions {
                    chunk: args.chunk,
                    parallel: parallel as usize,
                    ..VerifyOptions::default()
                },
                |_| {},
            )
            .await
            .context("verifying")?;
            let seconds = started.elapsed().as_secs_f64();
            let Verdict::Intact { events: n, .. } = verdict else {
                bail!("the freshly sealed chain does not verify: {verdict:?}");
            };
            ensure!(n == events, "verify checked {n} events of {events}");
            rates.push(events as f64 / seconds);
            println!(
                "  verify --parallel {parallel}: {events} events intact in {seconds:.1} s ({:.0} events/s)",
                events as f64 / seconds
            );
        }
        let rate = median(&mut rates);
        if rate > best {
            best = rate;
            best_parallel = parallel;
        }
    }
    pool.close().await;
    println!(
        "result: bench=verify events={events} rate={best:.0} parallel={best_parallel} baseline_rate={baseline:.0} baseline=copy_out ratio={:.2} target_rate={TARGET_EVENTS_PER_S:.0} of_target={:.2}",
        best / baseline,
        best / TARGET_EVENTS_PER_S
    );
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
