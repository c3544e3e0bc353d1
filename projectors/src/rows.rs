//! Page-at-a-time application: a projector is handed a page of events, folds it in memory to the
//! final state of each row it touches, and writes each row once, with set-based statements.
//!
//! [`Rows`] is that in-memory working set for one table. A projector asks it to [`Rows::load`]
//! the stored rows the page's events touch (one `SELECT … WHERE key = ANY(…)`), applies its
//! events to the rows in memory, in order, and then [`Rows::write`]s what changed: one
//! `INSERT … SELECT … FROM jsonb_populate_recordset(…) ON CONFLICT (key) DO UPDATE` for every
//! new or changed row. A page of a thousand events on fifty trips is two statements per table
//! instead of a thousand.
//!
//! Rows travel as JSON objects whose fields are the table's columns ([`Row`] is a plain serde
//! struct), so PostgreSQL converts each value with the column's own input function: the same
//! conversion a bound parameter gets. Times are cut to whole microseconds before they are folded
//! ([`micros`]), as PostgreSQL stores them, so a row folded in memory across a page and one read
//! back between pages hold the same values: the result never depends on where a page ends.

use crate::projector::ProjectionError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgHasArrayType;
use sqlx::{PgConnection, Postgres};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// A row of a read-model table: a serde struct whose fields are exactly the columns the
/// projector writes (columns it leaves out keep their defaults on insert and their values on
/// update).
pub(crate) trait Row:
    Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static
{
    /// The table (unqualified: the `search_path` picks the live table or a rebuild's copy).
    const TABLE: &'static str;
    /// Its primary key column.
    const KEY: &'static str;
    /// The key's Rust type.
    type Key: Clone
        + Eq
        + Hash
        + Send
        + Sync
        + std::fmt::Display
        + for<'q> sqlx::Encode<'q, Postgres>
        + sqlx::Type<Postgres>
        + PgHasArrayType;

    /// The row's key.
    fn key(&self) -> Self::Key;
}

/// A time as PostgreSQL keeps it: whole microseconds (cut, as a bound parameter is).
pub(crate) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let micros = at.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(at)
}

#[derive(Debug)]
struct Slot<R> {
    /// The row as the page leaves it; `None`: absent.
    row: Option<R>,
    /// Whether the page changed it.
    dirty: bool,
}

/// The rows of one table that a page touches. See the module documentation.
#[derive(Debug)]
pub(crate) struct Rows<R: Row> {
    slots: HashMap<R::Key, Slot<R>>,
    /// Keys in the order they were first touched, so writes are deterministic.
    order: Vec<R::Key>,
}

impl<R: Row> Default for Rows<R> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
            order: Vec::new(),
        }
    }
}

impl<R: Row> Rows<R> {
    /// Loads the stored rows of `keys` that are not in the working set yet; a key with no row
    /// is remembered as absent.
    pub(crate) async fn load(
        &mut self,
        conn: &mut PgConnection,
        keys: impl IntoIterator<Item = R::Key>,
    ) -> Result<(), ProjectionError> {
        let mut seen = HashSet::new();
        let mut wanted: Vec<R::Key> = Vec::new();
        for key in keys {
            if !self.slots.contains_key(&key) && seen.insert(key.clone()) {
                wanted.push(key);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let stored: Vec<sqlx::types::Json<R>> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) FROM {table} t WHERE {key} = ANY($1)",
            table = R::TABLE,
            key = R::KEY
        ))
        .bind(&wanted)
        .fetch_all(&mut *conn)
        .await?;
        for sqlx::types::Json(row) in stored {
            let key = row.key();
            self.order.push(key.clone());
            self.slots.insert(
                key,
                Slot {
                    row: Some(row),
                    dirty: false,
                },
            );
        }
        for key in wanted {
            if !self.slots.contains_key(&key) {
                self.order.push(key.clone());
                self.slots.insert(
                    key,
                    Slot {
                        row: None,
                        dirty: false,
                    },
                );
            }
        }
        Ok(())
    }

    /// The row of `key` as the page has left it so far (`None`: absent, or never loaded).
    pub(crate) fn get(&self, key: &R::Key) -> Option<&R> {
        self.slots.get(key).and_then(|slot| slot.row.as_ref())
    }

    /// The row of `key`, to change.
    pub(crate) fn get_mut(&mut self, key: &R::Key) -> Option<&mut R> {
        let slot = self.slots.get_mut(key)?;
        let row = slot.row.as_mut()?;
        slot.dirty = true;
        Some(row)
    }

    /// The row of `key`, to change; made by `make` first (with that key) if there is none.
    pub(crate) fn get_or_put(&mut self, key: &R::Key, make: impl FnOnce() -> R) -> &mut R {
        if !self.slots.contains_key(key) {
            self.order.push(key.clone());
        }
        let slot = self.slots.entry(key.clone()).or_insert(Slot {
            row: None,
            dirty: false,
        });
        slot.dirty = true;
        let row = slot.row.get_or_insert_with(make);
        debug_assert!(row.key() == *key, "a row made for another key");
        row
    }

    /// Puts `row` in place of whatever its key holds.
    pub(crate) fn put(&mut self, row: R) {
        let key = row.key();
        match self.slots.get_mut(&key) {
            Some(slot) => {
                slot.row = Some(row);
                slot.dirty = true;
            }
            None => {
                self.order.push(key.clone());
                self.slots.insert(
                    key,
                    Slot {
                        row: Some(row),
                        dirty: true,
                    },
                );
            }
        }
    }

    /// Writes what the page changed: one upsert of the new and changed rows. Answers how many
    /// rows were written.
    pub(crate) async fn write(&self, conn: &mut PgConnection) -> Result<u64, ProjectionError> {
        let upserts: Vec<&R> = self
            .order
            .iter()
            .filter_map(|key| self.slots.get(key))
            .filter(|slot| slot.dirty)
            .filter_map(|slot| slot.row.as_ref())
            .collect();
        let mut written = 0;
        if let Some(first) = upserts.first() {
            let columns = columns_of(*first)?;
            let list = columns.join(", ");
            let updates: Vec<String> = columns
                .iter()
                .filter(|column| column.as_str() != R::KEY)
                .map(|column| format!("{column} = excluded.{column}"))
                .collect();
            let on_conflict = if updates.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            // Serialised straight to text (no `serde_json::Value` in between: building one
            // was a tenth of a rebuild's own CPU), which PostgreSQL parses as `jsonb`.
            let rows = serde_json::to_string(&upserts).map_err(|error| {
                ProjectionError::Inconsistent(format!("a {} row: {error}", R::TABLE))
            })?;
            written += sqlx::query(&format!(
                "INSERT INTO {table} ({list})
                 SELECT {list} FROM jsonb_populate_recordset(NULL::{table}, $1::text::jsonb)
                 ON CONFLICT ({key}) {on_conflict}",
                table = R::TABLE,
                key = R::KEY
            ))
            .bind(rows)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        }
        Ok(written)
    }
}

/// The column names of a row: its serialized fields.
fn columns_of<R: Row>(row: &R) -> Result<Vec<String>, ProjectionError> {
    match serde_json::to_value(row) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields.keys().cloned().collect()),
        Ok(other) => Err(ProjectionError::Inconsistent(format!(
            "a {} row is not an object: {other}",
            R::TABLE
        ))),
        Err(error) => Err(ProjectionError::Inconsistent(format!(
            "a {} row: {error}",
            R::TABLE
        ))),
    }
}

/// Where a stream's event stands against the row it writes: the version guard every read
/// model keeps.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Newer than the row: apply it.
    Apply,
    /// The row already holds it or a later one (a replay): skip it.
    Applied,
}

/// Checks `version` against the row's `stream_version`: newer applies, not newer is a replay,
/// and no row at all means the log and the read model disagree.
pub(crate) fn guard(
    table: &str,
    id: &dyn std::fmt::Display,
    row_version: Option<i64>,
    version: i64,
    event_type: &str,
) -> Result<Guard, ProjectionError> {
    match row_version {
        Some(current) if current >= version => Ok(Guard::Applied),
        Some(_) => Ok(Guard::Apply),
        None => Err(ProjectionError::Inconsistent(format!(
            "{event_type} (version {version}) for {id}, which {table} does not have"
        ))),
    }
}
