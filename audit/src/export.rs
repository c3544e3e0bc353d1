//! `velka audit export`: every event recorded in a time range as JSON Lines, streamed.
//!
//! One line per event, in delivery order (the chain's order), with its position and, once
//! sealed, its chain entry (`seq`, `hash`, `prev_hash`), so the file can be checked against the
//! chain by anyone who knows the encoding (`crate::chain`). The rows come through a server-side
//! cursor in a read-only repeatable-read transaction: one consistent snapshot, a fixed number of
//! rows in memory at a time, however long the range. A read-only transaction takes no
//! transaction id, so it does not hold back the log's delivery horizon while it runs.

use crate::error::AuditError;
use crate::history::{self, Filters};
use chrono::{DateTime, Utc};
use event_store::LogPosition;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::io::Write;

/// Rows fetched from the cursor at a time.
const FETCH: i64 = 2_000;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Lines (events) written.
    pub events: u64,
    /// Of them, sealed (with a hash).
    pub sealed: u64,
    /// The first and last positions written.
    pub first_position: Option<i64>,
    pub last_position: Option<i64>,
    /// SHA-256 of every byte written, hex: recorded with the export, so the file can be matched
    /// to the record later.
    pub sha256: String,
}

/// Writes the events recorded in `[from, to)` to `out`, one JSON object a line; `progress` is
/// called with the events written so far after every fetch.
pub async fn export(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<ExportSummary, AuditError> {
    let filters = Filters {
        from: Some(from),
        to: Some(to),
        ..Filters::default()
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut declare = history::query(
        "DECLARE audit_export NO SCROLL CURSOR FOR ",
        &filters,
        LogPosition::START,
    );
    declare.build().execute(&mut *tx).await?;

    let mut digest = Sha256::new();
    let mut summary = ExportSummary {
        events: 0,
        sealed: 0,
        first_position: None,
        last_position: None,
        sha256: String::new(),
    };
    let mut line = Vec::with_capacity(1024);
    loop {
        let rows = sqlx::query(&format!("FETCH FORWARD {FETCH} FROM audit_export"))
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let event = history::decode(row)?;
            line.clear();
            serde_json::to_writer(&mut line, &event)?;
            line.push(b'\n');
            out.write_all(&line)?;
            digest.update(&line);
            summary.events += 1;
            if event.hash.is_some() {
                summary.sealed += 1;
            }
            summary.first_position.get_or_insert(event.position);
            summary.last_position = Some(event.position);
        }
        progress(summary.events);
    }
    out.flush()?;
    tx.commit().await?;
    summary.sha256 = crate::chain::hex(&digest.finalize());
    Ok(summary)
}
