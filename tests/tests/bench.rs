//! Smoke tests of the benchmarks: each `velka bench …` subcommand runs at a tiny size and ends
//! with one machine-readable `result: bench=…` line whose figures parse as numbers.

#![allow(clippy::unwrap_used)]

use event_store::testing::{admin_url, database_url};
use std::collections::BTreeMap;
use std::process::Command;
use tests::velka_binary;

/// Runs `velka bench <args>` on a database of its own (the bench makes `<name>_bench`), drops
/// the scratch database again, and returns the `result:` line's fields.
fn bench(args: &[&str]) -> BTreeMap<String, String> {
    let binary = velka_binary().unwrap();
    let name = format!("velka_test_{}", uuid::Uuid::new_v4().simple());
    let output = Command::new(&binary)
        .arg("bench")
        .args(args)
        .env("DATABASE_URL", database_url(&admin_url(), &name))
        .env("VELKA_LOG", "warn")
        .output()
        .unwrap();
    let dropped = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
        .arg(format!("DROP DATABASE IF EXISTS {name}_bench WITH (FORCE)"))
        .status();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dropped.is_ok());
    let results: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("result: "))
        .collect();
    assert_eq!(results.len(), 1, "one result line: {stdout}");
    let fields: BTreeMap<String, String> = results[0]
        .trim_start_matches("result: ")
        .split_whitespace()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect();
    for (key, value) in &fields {
        if key != "bench" && key != "baseline" {
            assert!(
                value.parse::<f64>().is_ok(),
                "{key}={value} is not a number: {stdout}"
            );
        }
    }
    fields
}

fn number(fields: &BTreeMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .parse()
        .unwrap()
}

#[test]
fn bench_commands_reports_the_knee_against_pgbench() {
    let fields = bench(&["commands", "--duration", "2s", "--clients", "1,2"]);
    assert_eq!(fields["bench"], "commands");
    assert!(number(&fields, "rate") > 0.0, "{fields:?}");
    assert!(number(&fields, "baseline_rate") > 0.0, "{fields:?}");
    assert_eq!(number(&fields, "errors"), 0.0, "{fields:?}");
    assert!(number(&fields, "ratio") > 0.0, "{fields:?}");
}

#[test]
fn bench_peak_reports_rate_latency_lag_and_memory() {
    let fields = bench(&["peak", "--duration", "2", "--rate", "40", "--cars", "4"]);
    assert_eq!(fields["bench"], "peak");
    assert_eq!(number(&fields, "requests"), 80.0, "{fields:?}");
    assert_eq!(number(&fields, "errors"), 0.0, "{fields:?}");
    assert!(number(&fields, "rss_mb") > 1.0, "{fields:?}");
}

#[test]
fn bench_replay_rebuilds_every_read_model() {
    let fields = bench(&["replay", "--events", "3000", "--batch-size", "500"]);
    assert_eq!(fields["bench"], "replay");
    assert!(number(&fields, "events") >= 3000.0, "{fields:?}");
    assert!(number(&fields, "rate") > 0.0, "{fields:?}");
}

#[test]
fn bench_history_compares_a_small_and_a_large_history() {
    let fields = bench(&[
        "history",
        "--small",
        "1000",
        "--large",
        "5000",
        "--duration",
        "1",
    ]);
    assert_eq!(fields["bench"], "history");
    assert_eq!(number(&fields, "large_events"), 5000.0, "{fields:?}");
    assert!(number(&fields, "append_p50_ms") > 0.0, "{fields:?}");
}
