//! `velka audit verify`, `export`, `money`, `state` and `rebuild-as-of`: progress on stderr, the
//! result on stdout.

use crate::config::{
    AuditExportArgs, AuditMoneyArgs, AuditRebuildAsOfArgs, AuditStateArgs, AuditVerifyArgs, Global,
};
use crate::serve::CHAIN;
use anyhow::Context;
use audit::verify::{ExpectedHead, Verdict, VerifyOptions};
use event_store::EventStore;
use loadgen::progress::Progress;
use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a progress line is written.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// `velka audit verify`.
pub async fn verify(global: &Global, args: AuditVerifyArgs) -> anyhow::Result<()> {
    let heads = args
        .heads
        .iter()
        .map(|text| parse_head(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let parallel = usize::try_from(args.parallel).unwrap_or(2);
    let pool = crate::serve::connect(global, args.parallel + 1).await?;
    let started = Instant::now();
    let bar = Progress::counting("velka: verifying", None, "events", true, PROGRESS_EVERY);
    let options = VerifyOptions {
        chunk: args.chunk,
        parallel,
        ..VerifyOptions::default()
    };
    let verdict = audit::verify::verify(&pool, CHAIN, &heads, options, |progress| {
        bar.set_length(progress.total);
        bar.set_position(progress.checked);
        bar.set_message(format!("at position {}", progress.position));
    })
    .await
    .context("verifying the hash chain")?;
    bar.finish_and_clear();
    pool.close().await;
    let seconds = started.elapsed().as_secs_f64();
    match verdict {
        Verdict::Intact {
            events,
            position,
            head,
            heads_checked,
            unsealed,
        } => {
            eprintln!(
                "velka: verified {events} events in {seconds:.1}s ({:.0}/s); head {}; {heads_checked} published heads matched; {unsealed} events not sealed yet",
                events as f64 / seconds.max(1e-3),
                audit::chain::hex(&head)
            );
            println!("intact up to position {position} ({events} events)");
            Ok(())
        }
        Verdict::Broken {
            seq,
            position,
            reason,
            intact_events,
        } => {
            println!(
                "mismatch at position {position} (chain entry {seq}): {reason}; the {intact_events} events before it are intact"
            );
            anyhow::bail!("the hash chain does not match at position {position}")
        }
    }
}

fn parse_head(text: &str) -> anyhow::Result<ExpectedHead> {
    let wrong = || anyhow::anyhow!("--head {text:?}: expected EVENTS:HASH (64 hex digits)");
    let (events, hash) = text.split_once(':').ok_or_else(wrong)?;
    Ok(ExpectedHead {
        events: events.trim().parse().map_err(|_| wrong())?,
        hash: audit::chain::parse_hex(hash.trim()).ok_or_else(wrong)?,
        source: format!("--head {text}"),
    })
}

/// `velka audit export`.
pub async fn export(global: &Global, args: AuditExportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.from < args.to, "--from must be before --to");
    let by = match args.by.clone().or_else(|| std::env::var("USER").ok()) {
        Some(by) if !by.trim().is_empty() => by.trim().to_owned(),
        _ => anyhow::bail!("say who exports: --by NAME (or VELKA_AUDITOR)"),
    };
    let pool = crate::serve::connect(global, 2).await?;
    let store = EventStore::new(pool.clone());
    let mut out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout(),
        )),
    };
    let started = Instant::now();
    let bar = Progress::counting(
        "velka: exporting",
        None,
        "events written",
        true,
        PROGRESS_EVERY,
    );
    let summary = audit::export::export(&pool, args.from, args.to, &mut out, |written| {
        bar.set_position(written);
    })
    .await
    .context("exporting events")?;
    bar.finish_and_clear();
    drop(out);
    let actor = format!("auditor:{by}");
    audit::record::append(
        &store,
        audit::record::AUDIT_LOG_STREAM,
        audit::record::EXPORT_PERFORMED,
        json!({
            "by": actor,
            "from": args.from,
            "to": args.to,
            "events": summary.events,
            "sealed": summary.sealed,
            "first_position": summary.first_position,
            "last_position": summary.last_position,
            "output": args.output.as_ref().map(|p| p.display().to_string()),
            "sha256": summary.sha256,
        }),
        &actor,
        chrono::Utc::now(),
    )
    .await
    .context("recording the export")?;
    pool.close().await;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "velka: exported {} events ({} sealed) in {seconds:.1}s ({:.0}/s); sha256 {}",
        summary.events,
        summary.sealed,
        summary.events as f64 / seconds.max(1e-3),
        summary.sha256
    );
    Ok(())
}

/// `velka audit money`: the reconciliation, one difference a paragraph, then the result line;
/// fails (exit 1) when there are differences.
pub async fn money(global: &Global, args: AuditMoneyArgs) -> anyhow::Result<()> {
    let actor = auditor(args.by.as_deref());
    let pool = crate::serve::connect(global, 2).await?;
    // Projectors read events for their meaning: personal data decoded (or erased), as live.
    let store = EventStore::new(pool.clone()).with_codec(Arc::new(global.pii_codec(&pool)));
    let started = Instant::now();
    eprintln!(
        "velka: reconciling accounts: events, read models{}",
        if args.gateway_url.is_some() {
            " and the gateway's ledger"
        } else {
            " (no --gateway-url: the gateway is not compared)"
        }
    );
    let found = audit::money::run(
        &store,
        &pool,
        args.gateway_url.as_deref(),
        &actor,
        args.at.unwrap_or_else(chrono::Utc::now),
    )
    .await
    .context("reconciling money")?;
    pool.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&found)?);
    }
    for difference in &found.differences {
        let value = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        println!(
            "difference: account {} field {}: events {}, read model {}, gateway {}",
            difference.account,
            difference.field,
            value(difference.events),
            value(difference.read_model),
            value(difference.gateway)
        );
        for event in &difference.explained_by {
            let mut line = format!(
                "  event position {} (version {}) {} {}",
                event.position, event.stream_version, event.event_type, event.event_id
            );
            if let Some(amount) = event.amount_kopecks {
                line.push_str(&format!(" amount {amount}"));
            }
            if let Some(charge) = event.charge_id {
                line.push_str(&format!(" charge {charge}"));
            }
            if let Some(payment) = &event.payment_id {
                line.push_str(&format!(" payment {payment}"));
            }
            println!("{line}");
        }
        for payment in &difference.gateway_payments {
            println!(
                "  gateway payment {} ({}, key {}): gateway {}, events {}",
                payment.payment_id,
                payment.status,
                payment.key.as_deref().unwrap_or("unknown"),
                payment.gateway_kopecks,
                payment.events_kopecks
            );
        }
    }
    for hold in &found.waiting {
        println!(
            "waiting: account {} payment {} (key {}): {} kopecks held, {}, settled by {}",
            hold.account,
            hold.payment_id,
            hold.key,
            hold.amount_kopecks,
            hold.state,
            hold.settles_at.to_rfc3339()
        );
    }
    for lag in &found.lagging {
        eprintln!(
            "velka: {} read model at version {} of {} (compared at its own version)",
            lag.account, lag.read_model_version, lag.stream_version
        );
    }
    eprintln!(
        "velka: reconciled {} accounts ({} events) in {:.1}s",
        found.accounts,
        found.events,
        started.elapsed().as_secs_f64()
    );
    println!("{}", found.result_line());
    if found.differences.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} money differences", found.differences.len())
    }
}

/// `auditor:<by>`, `by` defaulting to the login name.
fn auditor(by: Option<&str>) -> String {
    let by = by
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .filter(|by| !by.trim().is_empty())
        .map_or_else(|| "unknown".to_owned(), |by| by.trim().to_owned());
    format!("auditor:{by}")
}

/// `velka audit state STREAM --as-of T`: the state as JSON on stdout.
pub async fn state(global: &Global, args: AuditStateArgs) -> anyhow::Result<()> {
    let actor = auditor(args.by.as_deref());
    let pool = crate::serve::connect(global, 2).await?;
    // Decoding, so a customer's personal data reads in clear while its key exists.
    let store = EventStore::new(pool.clone()).with_codec(Arc::new(global.pii_codec(&pool)));
    let state = audit::as_of::load(&store, &args.stream, args.as_of)
        .await
        .with_context(|| format!("folding {} as of {}", args.stream, args.as_of))?;
    audit::record::append(
        &store,
        audit::record::AUDIT_LOG_STREAM,
        audit::as_of::STATE_QUERIED,
        json!({
            "by": actor,
            "stream_id": args.stream,
            "as_of": args.as_of,
            "version": state.version,
            "last_position": state.last_position,
        }),
        &actor,
        chrono::Utc::now(),
    )
    .await
    .context("recording the query")?;
    pool.close().await;
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(())
}

/// `velka audit rebuild-as-of --at T [--schema NAME]`.
pub async fn rebuild_as_of(global: &Global, args: AuditRebuildAsOfArgs) -> anyhow::Result<()> {
    let actor = auditor(args.by.as_deref());
    let schema = args
        .schema
        .clone()
        .unwrap_or_else(|| projectors::as_of::default_schema(args.at));
    // A connection per read model (they apply each page at once) and one to read the next page.
    let models = u32::try_from(projectors::read_models().len())?;
    let pool = crate::serve::connect(global, models + 2).await?;
    // Projectors read events for their meaning: personal data decoded (or erased), as live.
    let store = EventStore::new(pool.clone()).with_codec(Arc::new(global.pii_codec(&pool)));
    let started = Instant::now();
    let what = format!("velka: rebuilding as of {}", args.at);
    let bar = Progress::new(&what, None, PROGRESS_EVERY);
    let models = projectors::read_models();
    let report = projectors::as_of::rebuild_as_of(
        &store,
        &models,
        args.at,
        &schema,
        args.batch,
        |progress| {
            bar.set_length(progress.head);
            bar.set_position(progress.position);
            bar.set_message(format!("{} applications", progress.applied));
        },
    )
    .await
    .with_context(|| format!("rebuilding the read models as of {} into {schema}", args.at))?;
    bar.finish_and_clear();
    audit::record::append(
        &store,
        audit::record::AUDIT_LOG_STREAM,
        audit::record::READ_MODELS_REBUILT_AS_OF,
        json!({
            "by": actor,
            "at": args.at,
            "schema": report.schema,
            "events": report.events,
            "rows": report.rows.iter().map(|(t, n)| json!({"table": t, "rows": n})).collect::<Vec<_>>(),
        }),
        &actor,
        chrono::Utc::now(),
    )
    .await
    .context("recording the rebuild")?;
    pool.close().await;
    eprintln!(
        "velka: rebuilt {} tables from {} events recorded by {} in {:.1}s",
        report.rows.len(),
        report.events,
        args.at,
        started.elapsed().as_secs_f64()
    );
    for (table, rows) in &report.rows {
        println!("{schema}.{table}: {rows} rows");
    }
    println!(
        "query it with: psql \"$DATABASE_URL\" -c 'SET search_path TO {schema}; SELECT * FROM trips_view' (drop it with DROP SCHEMA {schema} CASCADE)"
    );
    println!(
        "result: audit=rebuild-as-of schema={schema} events={}",
        report.events
    );
    Ok(())
}
