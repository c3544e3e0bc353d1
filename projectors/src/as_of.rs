//! Read models as of a time, for auditors (`velka audit rebuild-as-of`).
//!
//! [`rebuild_as_of`] creates a schema of its own (`asof_…`), an empty copy of every read model
//! table in it (as [`crate::rebuild`] does: secondary indexes built after the load), and runs every
//! projector over the events *recorded* at or before T, with `search_path` pointing at the copy
//! (projectors name their tables without a schema, so their SQL is unchanged), through the same
//! page loop as a rebuild ([`crate::replay`]: the log read once, each projector in a
//! transaction of its own). The live read
//! models are never touched; the schema stays for the auditor to query and drop.
//!
//! Recorded time is what the system knew: an event appended after T about something earlier (a
//! fine learned in December about November) is not in the copy.

use crate::projector::{ProjectionError, Projector};
use crate::replay::{ApplyError, LogPages, Target, apply_page, create_copy, create_indexes};
use chrono::{DateTime, Utc};
use event_store::{EventStore, LogPosition, RecordedEvent, StoreError};
use std::sync::Arc;

/// How far the build has come, for a progress line.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AsOfProgress {
    /// The log position read so far.
    pub position: i64,
    /// The log's head when the build started.
    pub head: i64,
    /// Events applied (recorded by T, of a projector's categories; once per projector).
    pub applied: u64,
}

/// What the build did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOfReport {
    /// The schema built.
    pub schema: String,
    /// Events recorded by T that were read.
    pub events: u64,
    /// Applications of an event to a projector.
    pub applied: u64,
    /// Rows in each table.
    pub rows: Vec<(String, i64)>,
}

/// Why the build stopped; the schema is left as far as it got.
#[derive(Debug, thiserror::Error)]
pub enum AsOfError {
    /// The schema name is not `asof_` followed by lower-case letters, digits and `_`.
    #[error(
        "schema {0:?} must be asof_ followed by lower-case letters, digits or _ (at most 63 characters)"
    )]
    BadSchema(String),
    /// A projector failed on an event.
    #[error("projector {name} failed at position {position}: {source}")]
    Apply {
        name: &'static str,
        position: i64,
        #[source]
        source: ProjectionError,
    },
    /// A query failed.
    #[error("as-of rebuild query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the log failed.
    #[error("reading the event log failed: {0}")]
    Store(#[from] StoreError),
    /// A projector stopped taking pages without an error (a bug).
    #[error("a projector stopped taking pages")]
    Stopped,
}

impl From<ApplyError> for AsOfError {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Apply {
                name,
                position,
                source,
            } => AsOfError::Apply {
                name,
                position,
                source,
            },
            ApplyError::Database(error) => AsOfError::Database(error),
            ApplyError::Stopped => AsOfError::Stopped,
        }
    }
}

/// The default schema for T: `asof_<yyyymmddhhmmss>`.
pub fn default_schema(at: DateTime<Utc>) -> String {
    format!("asof_{}", at.format("%Y%m%d%H%M%S"))
}

/// Whether `schema` is a name this module may create and replace.
pub fn valid_schema(schema: &str) -> bool {
    schema.len() <= 63
        && schema.len() > "asof_".len()
        && schema.starts_with("asof_")
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Builds every projector's tables in `schema` from the events recorded at or before `at`,
/// replacing the schema if it exists; calls `progress` after each batch.
pub async fn rebuild_as_of(
    store: &EventStore,
    projectors: &[Arc<dyn Projector>],
    at: DateTime<Utc>,
    schema: &str,
    batch_size: u32,
    mut progress: impl FnMut(&AsOfProgress),
) -> Result<AsOfReport, AsOfError> {
    if !valid_schema(schema) {
        return Err(AsOfError::BadSchema(schema.to_owned()));
    }
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let pool = store.pool();
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    let mut tables = Vec::new();
    let mut deferred_indexes = Vec::new();
    for projector in projectors {
        for table in projector.tables() {
            if !plain(table) {
                return Err(AsOfError::BadSchema(format!("table {table}")));
            }
            deferred_indexes.extend(create_copy(&mut tx, schema, table).await?);
            tables.push((*table).to_owned());
        }
    }
    tx.commit().await?;

    let head = store.head().await?;
    let targets: Vec<Target> = projectors
        .iter()
        .map(|projector| Target {
            projector: projector.clone(),
            schema: schema.to_owned(),
        })
        .collect();
    let mut pages = LogPages::new(store, LogPosition::START, batch_size).until(head);
    let (mut events, mut applied) = (0, 0);
    while let Some(page) = pages.next().await? {
        let known: Vec<&RecordedEvent> = page
            .iter()
            .filter(|e| e.recorded_at <= at && e.log_position <= head)
            .collect();
        events += known.len() as u64;
        applied += apply_page(pool, &targets, &known)
            .await?
            .iter()
            .sum::<u64>();
        progress(&AsOfProgress {
            position: pages.position().position,
            head: head.position,
            applied,
        });
    }
    create_indexes(pool, &deferred_indexes).await?;
    let mut rows = Vec::new();
    for table in tables {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.{table}"))
            .fetch_one(pool)
            .await?;
        rows.push((table, count));
    }
    Ok(AsOfReport {
        schema: schema.to_owned(),
        events,
        applied,
        rows,
    })
}

#[cfg(test)]
mod tests {
    //! Schema names: only `asof_…`, so a typo can never drop `public`.

    use super::*;

    #[test]
    fn only_asof_schemas_may_be_built_and_replaced() {
        assert!(valid_schema("asof_20261126075900"));
        assert!(valid_schema("asof_before_the_audit"));
        for bad in [
            "public",
            "asof_",
            "asof_X",
            "asof_a;drop",
            "rebuild_trips_view",
            "",
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
        let at = DateTime::parse_from_rfc3339("2026-11-26T07:59:03Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(default_schema(at), "asof_20261126075903");
    }
}
