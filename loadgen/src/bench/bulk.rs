//! `velka bench replay` and `velka bench history`: benchmarks over a large, bulk-loaded log.
//!
//! Both load events straight into the `events` table with `INSERT … SELECT` over
//! `generate_series` on the scratch database `<name>_bench` (every secondary index of `events`,
//! the audit's included, is dropped during the load and rebuilt after it exactly as the catalog
//! defined it, which is how a bulk load is done), then measure:
//!
//! - `replay`: the log is a template of real events — customers registered and verified, cars
//!   added, trips started, parked, resumed and ended with telemetry and charges — produced by a
//!   real `velka serve` through its API, copied many times with every UUID given a per-copy
//!   prefix, so each copy is a consistent set of new streams the projectors understand. Every
//!   read model is then rebuilt from it at once (side by side, then switched), and the result is
//!   events per second. The baseline, in the same run, is reading the whole log in delivery
//!   order without applying it.
//! - `history`: streams of 100 small events; one writer loads a random stream and appends an
//!   event to it (as a command does), with a small history and again after topping it up to a
//!   large one. The small history's figures are the baseline: the ratio shows whether the cost
//!   grows with history.

use super::http::{Client, Server, cast, quantile_ms, token};
use super::{Setup, recreate_bench_database};
use crate::error::{Context, Result};
use crate::progress::Progress;
use chrono::Utc;
use event_store::{
    AppendRequest, Claims, EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite,
};
use futures::TryStreamExt;
use http_edge::Role;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Every secondary index and unique constraint of `events` as the catalog defines it now (so the
/// migrations' own definitions, audit indexes included), with the statements that drop and
/// recreate it. The primary key stays.
async fn secondary_indexes(connection: &mut sqlx::PgConnection) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT format('ALTER TABLE events DROP CONSTRAINT %I', c.conname),
                format('ALTER TABLE events ADD CONSTRAINT %I %s', c.conname,
                       pg_get_constraintdef(c.oid))
         FROM pg_constraint c
         WHERE c.conrelid = 'events'::regclass AND c.contype = 'u'
         UNION ALL
         SELECT format('DROP INDEX %I', i.relname), pg_get_indexdef(i.oid)
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indrelid = 'events'::regclass AND NOT x.indisprimary
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
    )
    .fetch_all(&mut *connection)
    .await
    .context("reading the event indexes from the catalog")?;
    Ok(rows)
}

/// Runs `load` (a list of statements, each run on its own with `$1`/`$2` bound to a chunk's
/// first and last number) over `0..total` in chunks, with every secondary index of `events`
/// dropped, then rebuilds them and analyses the table; prints progress on stderr. Returns the
/// seconds taken.
pub(crate) async fn bulk_load(
    pool: &PgPool,
    from: i64,
    to: i64,
    chunk: i64,
    statements: &[&str],
) -> Result<f64> {
    let started = Instant::now();
    let mut connection = pool.acquire().await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut *connection)
        .await?;
    sqlx::query("SET maintenance_work_mem = '512MB'")
        .execute(&mut *connection)
        .await?;
    let indexes = secondary_indexes(&mut connection).await?;
    for (drop, _) in &indexes {
        sqlx::query(drop).execute(&mut *connection).await?;
    }
    let mut first = from;
    let progress = Progress::new(
        "velka bench: loading",
        u64::try_from(to - from).ok(),
        Duration::from_secs(2),
    );
    while first < to {
        let last = (first + chunk).min(to) - 1;
        for statement in statements {
            sqlx::query(statement)
                .bind(first)
                .bind(last)
                .execute(&mut *connection)
                .await
                .with_context(|| format!("bulk-loading {first}..={last}"))?;
        }
        first = last + 1;
        progress.set_position(first - from);
        progress.set_message(format!("({:.0} s)", started.elapsed().as_secs_f64()));
    }
    progress.finish_and_clear();
    eprintln!(
        "velka bench: rebuilding the {} event indexes ({:.0} s)",
        indexes.len(),
        started.elapsed().as_secs_f64()
    );
    for (_, create) in &indexes {
        sqlx::query(create)
            .execute(&mut *connection)
            .await
            .with_context(|| format!("recreating an event index: {create}"))?;
    }
    sqlx::query("ANALYZE events")
        .execute(&mut *connection)
        .await?;
    sqlx::query("ANALYZE streams")
        .execute(&mut *connection)
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The first 14 digits of the template fine's 25-digit resolution number; a copy writes its
/// number in the other 11.
const RESOLUTION_PREFIX: &str = "18810177231125";

/// What `velka bench replay` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct ReplayConfig {
    /// Events in the bulk-loaded log.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub events: u64,
    /// Events each projector reads per batch.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
}

/// `velka bench replay`.
///
/// The template's server encrypts personal data with `pii_secret`; the projectors read its
/// events decoded, as `velka serve` gives them.
pub async fn replay(setup: &Setup, args: ReplayConfig, pii_secret: &str) -> Result<()> {
    // The template: a small city's real events, through a real server. Its clock is manual and
    // moves a few minutes a step, so that trips cost something and their charges reach the
    // accounts (a trip of milliseconds is free, and a free trip charges nothing).
    // The manual clock starts at the system time it is started at, a little after this.
    let before_start = chrono::Utc::now();
    let server = Server::start_with_clock(setup, "manual").await?;
    let client = Client::new(server.base.clone(), 8)?;
    let telematics = token(&server.keys, Role::Service, "bench-telematics")?;
    let clock = token(&server.keys, Role::Service, "bench-clock")?;
    let advance = |seconds: u32| {
        let (client, clock) = (client.clone(), clock.clone());
        async move {
            client
                .post(
                    "/v1/admin/clock",
                    Some(&clock),
                    json!({"advance_seconds": seconds}),
                )
                .await
        }
    };
    let actors = cast(&server, &client, 4).await?;
    for actor in &actors {
        // Demand and reservations: a quote, and a reservation cancelled again.
        client
            .post(
                "/v1/quotes",
                Some(&actor.token),
                json!({"vehicle_id": actor.vehicle_id}),
            )
            .await?;
        let reserved = client
            .post(
                "/v1/reservations",
                Some(&actor.token),
                json!({"vehicle_id": actor.vehicle_id}),
            )
            .await?;
        let reservation_id = reserved["reservation_id"]
            .as_str()
            .context("no reservation_id")?;
        advance(60).await?;
        client
            .post(
                &format!("/v1/reservations/{reservation_id}/cancel"),
                Some(&actor.token),
                json!({}),
            )
            .await?;
        for trip in 0..3u32 {
            let started = client
                .post(
                    "/v1/trips",
                    Some(&actor.token),
                    json!({"vehicle_id": actor.vehicle_id}),
                )
                .await?;
            let trip_id = started["trip_id"].as_str().context("no trip_id")?;
            for (n, step) in ["telemetry", "park", "resume", "telemetry", "end"]
                .iter()
                .enumerate()
            {
                advance(180).await?;
                if *step == "telemetry" {
                    // The last trip leaves the tank low: its end opens a refuel task.
                    let fuel_percent = if trip == 2 && n == 3 { 10 } else { 79 - trip };
                    client
                        .post(
                            &format!("/v1/vehicles/{}/telemetry", actor.vehicle_id),
                            Some(&telematics),
                            json!({
                                "lat": actor.lat + if n == 0 { 0.003 } else { 0.0 },
                                "lon": actor.lon,
                                "fuel_percent": fuel_percent,
                                "odometer_km": 12_000 + trip * 10 + n as u32,
                                "doors_locked": n != 0,
                            }),
                        )
                        .await?;
                } else {
                    client
                        .post(
                            &format!("/v1/trips/{trip_id}/{step}"),
                            Some(&actor.token),
                            json!({}),
                        )
                        .await?;
                }
            }
        }
    }
    // A fine for the first car, during its first trip (which started a minute after the clock's
    // start and lasted 15 minutes): the fines saga matches it to the trip and charges it.
    let first = actors.first().context("no actors")?;
    let occurred_at = before_start + chrono::Duration::seconds(60 + 450);
    client
        .post(
            "/v1/fines",
            Some(&clock),
            json!({
                "plate": first.plate,
                "occurred_at": occurred_at,
                "lat": first.lat,
                "lon": first.lon,
                "amount_kopecks": 50_000,
                "resolution_number": format!("{RESOLUTION_PREFIX}{:011}", 0),
                "issued_on": occurred_at.date_naive(),
            }),
        )
        .await?;
    let url = server.url.clone();
    drop(server);
    let pool = event_store::database::connect(&url, 12).await?;
    // The projectors read as `serve` gives them events: personal data decoded. The copies'
    // customers have no key (their ids are new), so they read as erased customers do.
    let codec = command_api::pii::PiiCodec::new(
        pool.clone(),
        command_api::pii::PiiSecret::new(pii_secret.as_bytes()),
    );
    let store = EventStore::new(pool.clone()).with_codec(Arc::new(codec));
    sqlx::query("CREATE TABLE bench_template AS SELECT * FROM events ORDER BY position")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE bench_template_streams AS SELECT * FROM streams")
        .execute(&pool)
        .await?;
    let per_copy: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_template")
        .fetch_one(&pool)
        .await?;
    let types: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM bench_template GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .fetch_all(&pool)
    .await?;
    let copies = (i64::try_from(args.events)?.saturating_sub(per_copy) + per_copy - 1) / per_copy;
    println!(
        "velka bench replay: a template of {per_copy} events ({}) copied {copies} times, database {}",
        types
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        event_store::database::redacted(&url)
    );
    // Every UUID's first eight hex digits become the copy's number: same UUID, same copy, same
    // replacement, so the streams of a copy refer to each other as the template's did.
    const NEW_IDS: &str = "regexp_replace(%s, '[0-9a-f]{8}-([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})', lpad(to_hex(k), 8, '0') || '-\\1', 'g')";
    let ids = |column: &str| NEW_IDS.replace("%s", column);
    // A fine's resolution number is unique in the world (and in `fines_view`): its last 11
    // digits become the copy's number too.
    let data = format!(
        "regexp_replace({}, '\"({RESOLUTION_PREFIX})[0-9]{{11}}\"', '\"\\1' || lpad(k::text, 11, '0') || '\"', 'g')",
        ids("t.data::text")
    );
    let copy_events = format!(
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data,
                             correlation_id, causation_id, actor, command_id, occurred_at, recorded_at)
         SELECT {}, t.stream_version, ({})::uuid, t.event_type, t.schema_version, ({})::json,
                t.correlation_id, t.causation_id, t.actor, t.command_id, t.occurred_at, t.recorded_at
         FROM generate_series($1::bigint + 1, $2::bigint + 1) AS k CROSS JOIN bench_template t
         ORDER BY k, t.position",
        ids("t.stream_id"),
        ids("t.event_id::text"),
        data,
    );
    let copy_streams = format!(
        "INSERT INTO streams (stream_id, version)
         SELECT {}, s.version
         FROM generate_series($1::bigint + 1, $2::bigint + 1) AS k CROSS JOIN bench_template_streams s",
        ids("s.stream_id")
    );
    let load_s = bulk_load(
        &pool,
        0,
        copies,
        (200_000 / per_copy).max(1),
        &[&copy_events, &copy_streams],
    )
    .await?;
    let events = store.count().await?;
    println!(
        "  loaded {events} events in {load_s:.1} s ({:.0} events/s)",
        events as f64 / load_s
    );

    // The baseline: a raw binary `COPY` of the same events' columns in delivery order, parsed
    // into nothing — the fastest PostgreSQL hands them out. Twice (the first warms the cache for
    // everything after it); the second counts.
    let mut read_rate = 0.0;
    for _ in 0..2 {
        let started = Instant::now();
        let mut connection = pool.acquire().await?;
        let mut bytes = 0usize;
        let mut out = connection
            .copy_out_raw(
                "COPY (SELECT position, transaction_id::text::bigint, stream_id, stream_version,
                              event_id, event_type, schema_version, data, correlation_id,
                              causation_id, actor, command_id, occurred_at, recorded_at
                       FROM events ORDER BY events.transaction_id, events.position)
                 TO STDOUT (FORMAT binary)",
            )
            .await?;
        while let Some(chunk) = out.try_next().await? {
            bytes += chunk.len();
        }
        let read_s = started.elapsed().as_secs_f64();
        read_rate = events as f64 / read_s;
        println!(
            "  baseline: COPY out of {events} events in delivery order ({:.0} MB) in {read_s:.1} s ({read_rate:.0} events/s)",
            bytes as f64 / 1e6
        );
    }

    // Rebuild every read model at once, reading the log once for all of them.
    let started = Instant::now();
    let models = projectors::read_models();
    let progress = Progress::counting(
        &format!("velka bench: rebuilding {} read models", models.len()),
        u64::try_from(events).ok(),
        "positions",
        true,
        Duration::from_secs(10),
    );
    let reports = projectors::rebuild::rebuild_all(&store, models, args.batch_size, |p| {
        progress.set_position(p.position);
    })
    .await;
    progress.finish_and_clear();
    let took = started.elapsed();
    for report in reports? {
        println!(
            "  rebuilt {}: {} events applied ({:.0} events/s over the whole rebuild)",
            report.name,
            report.events_applied,
            report.events_applied as f64 / took.as_secs_f64()
        );
    }
    let rebuild_s = took.as_secs_f64();
    let rate = events as f64 / rebuild_s;
    let models = projectors::read_models().len();
    pool.close().await;
    println!(
        "result: bench=replay events={events} read_models={models} rebuild_s={rebuild_s:.1} rate={rate:.0} load_s={load_s:.1} baseline_read_rate={read_rate:.0} baseline=copy_out ratio={:.3}",
        rate / read_rate
    );
    Ok(())
}

/// A small deterministic random sequence (xorshift), enough to pick streams.
struct Picker(u64);

impl Picker {
    fn next(&mut self, below: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below.max(1) as u64) as i64
    }
}

/// What one history size measured.
struct Costs {
    appends: usize,
    append_p50: f64,
    append_p99: f64,
    load_p50: f64,
    load_p99: f64,
}

/// What `velka bench history` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct HistoryConfig {
    /// Stored events in the first measurement.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub small: u64,
    /// Stored events in the second measurement (bulk-loaded on top of the first).
    #[arg(long, default_value_t = 20_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub large: u64,
    /// Seconds of appends and of loads at each size.
    #[arg(long = "duration", default_value = "10s", value_parser = super::parse_seconds)]
    pub duration_s: u64,
}

/// `velka bench history`.
pub async fn history(setup: &Setup, args: HistoryConfig) -> Result<()> {
    let (url, _options) = recreate_bench_database(&setup.database_url).await?;
    let pool = event_store::database::connect(&url, 4).await?;
    event_store::database::migrate(&pool, &url).await?;
    let store = EventStore::new(pool.clone());
    println!(
        "velka bench history: {} then {} stored events, {} s of load+append at each, database {}",
        args.small,
        args.large,
        args.duration_s,
        event_store::database::redacted(&url)
    );
    // Streams of 100 events: event g is version g % 100 + 1 of stream g / 100.
    let events = "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version,
                                       data, correlation_id, actor, occurred_at, recorded_at)
         SELECT 'bench-' || lpad(to_hex(g / 100), 12, '0'), g % 100 + 1, lpad(to_hex(g), 32, '0')::uuid,
                'BenchEvent', 1, jsonb_build_object('n', g, 'reading', g % 977),
                lpad(to_hex(g / 100), 32, '0')::uuid, 'bench', now(), now()
         FROM generate_series($1::bigint, $2::bigint) AS g";
    let streams = "INSERT INTO streams (stream_id, version)
         SELECT 'bench-' || lpad(to_hex(s), 12, '0'), 100
         FROM generate_series($1::bigint / 100, $2::bigint / 100) AS s";
    let small = round_up(args.small);
    let large = round_up(args.large.max(args.small));
    let mut picker = Picker(0x9e37_79b9_7f4a_7c15);
    let load_small_s = bulk_load(&pool, 0, small, 500_000, &[events, streams]).await?;
    println!("  loaded {small} events in {load_small_s:.1} s");
    let at_small = measure(&store, &mut picker, small / 100, args.duration_s).await?;
    report(small, &at_small);
    let load_large_s = bulk_load(&pool, small, large, 500_000, &[events, streams]).await?;
    println!(
        "  loaded {} more events in {load_large_s:.1} s ({:.0} events/s)",
        large - small,
        (large - small) as f64 / load_large_s
    );
    let at_large = measure(&store, &mut picker, large / 100, args.duration_s).await?;
    report(large, &at_large);
    pool.close().await;
    println!(
        "result: bench=history small_events={small} large_events={large} append_p50_ms={:.2} append_p99_ms={:.2} load_p50_ms={:.2} load_p99_ms={:.2} baseline_append_p50_ms={:.2} baseline_append_p99_ms={:.2} baseline_load_p50_ms={:.2} baseline_load_p99_ms={:.2} append_ratio={:.2} load_ratio={:.2} load_rate={:.0}",
        at_large.append_p50,
        at_large.append_p99,
        at_large.load_p50,
        at_large.load_p99,
        at_small.append_p50,
        at_small.append_p99,
        at_small.load_p50,
        at_small.load_p99,
        at_large.append_p50 / at_small.append_p50,
        at_large.load_p50 / at_small.load_p50,
        (large - small) as f64 / load_large_s,
    );
    Ok(())
}

/// Whole streams only: up to the next multiple of 100.
fn round_up(events: u64) -> i64 {
    (events.div_ceil(100) * 100) as i64
}

fn report(events: i64, costs: &Costs) {
    println!(
        "  with {events} events: {} load+append pairs; load (100-event stream) p50 {:.2} ms p99 {:.2} ms; append p50 {:.2} ms p99 {:.2} ms",
        costs.appends, costs.load_p50, costs.load_p99, costs.append_p50, costs.append_p99
    );
}

/// One writer for `seconds`: load a random stream, append one event after its last.
async fn measure(
    store: &EventStore,
    picker: &mut Picker,
    streams: i64,
    seconds: u64,
) -> Result<Costs> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut loads = Vec::new();
    let mut appends = Vec::new();
    while Instant::now() < deadline {
        let stream = format!("bench-{:012x}", picker.next(streams));
        let t0 = Instant::now();
        let history = store.read_stream(&stream, 0).await?;
        loads.push(t0.elapsed());
        let now = Utc::now();
        let request = AppendRequest {
            writes: vec![StreamWrite {
                stream_id: stream,
                expected: ExpectedVersion::after(history.len() as u64),
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "BenchEvent".to_owned(),
                    schema_version: 1,
                    data: json!({"n": history.len(), "at": now}),
                    occurred_at: now,
                }],
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
        appends.push(t0.elapsed());
    }
    Ok(Costs {
        appends: appends.len(),
        append_p50: quantile_ms(&mut appends, 0.5),
        append_p99: quantile_ms(&mut appends, 0.99),
        load_p50: quantile_ms(&mut loads, 0.5),
        load_p99: quantile_ms(&mut loads, 0.99),
    })
}
