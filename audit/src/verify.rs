//! `velka audit verify`: recompute the hash chain from the `events` table and compare.
//!
//! # What it proves
//!
//! For every sealed event (every entry of `event_chain` up to the sealer's checkpoint) it reads
//! the event's row, recomputes its digest and the chain link, and compares with the stored
//! entry. It stops at the first entry that does not match and names its position: an event
//! whose content changed (any covered field), an event that is gone, a chain entry removed or
//! renumbered, or a stored link that does not follow from the previous entry. Then it checks the
//! recomputed head against the sealer's checkpoint and against every `ChainHeadSealed` in the log
//! and every head given on the command line: a chain cut short, or rewritten from some point on,
//! disagrees with a head published before.
//!
//! # What it cannot prove
//!
//! - Events not sealed yet (appended after the sealer's last batch, normally milliseconds ago)
//!   are not covered: verify reports how many there are.
//! - Someone able to write the database can rewrite events *and* recompute every later entry,
//!   the checkpoint and the head events. Only a head held outside the database (the NATS
//!   publications, or one an auditor noted down, given as `--head EVENTS:HASH`) exposes that:
//!   the rewritten chain does not reach the same hash at that entry.
//! - It says nothing about whether an event was right to be appended; only that what was sealed
//!   has not changed since.
//!
//! # Speed
//!
//! Entries are read in chunks of consecutive `seq`, several chunks at once on separate
//! connections, each as one binary `COPY` parsed in place and digested in its own task, and
//! linked in order; memory holds only the chunks in flight. PostgreSQL producing the rows
//! (mostly rendering `jsonb` as text) is what bounds it: `velka bench verify` measures it against
//! a plain `COPY` of the same columns.

use crate::chain::{self, EVENT_COLUMNS, EventFields, GENESIS, Hash};
use crate::error::AuditError;
use crate::record::{CHAIN_STREAM, ChainHeadSealed};
use futures::{StreamExt, TryStreamExt};
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;
use uuid::Uuid;

/// How verify reads.
#[derive(Copy, Clone, Debug)]
pub struct VerifyOptions {
    /// Entries per query.
    pub chunk: i64,
    /// Queries in flight at once (connections used).
    pub parallel: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            chunk: 20_000,
            parallel: 2,
        }
    }
}

/// How far verify has got.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Entries checked so far.
    pub checked: i64,
    /// Entries to check.
    pub total: i64,
    /// The position of the last checked entry's event.
    pub position: i64,
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every sealed event matches.
    Intact {
        /// Entries checked.
        events: i64,
        /// The last entry's event position (0 when the chain is empty).
        position: i64,
        /// The recomputed head.
        head: Hash,
        /// Heads published in the log (and given by the caller) that were checked.
        heads_checked: usize,
        /// Events in the table that the chain does not cover (yet).
        unsealed: i64,
    },
    /// The first entry that does not match.
    Broken {
        /// Its number in the chain.
        seq: i64,
        /// The position it covers.
        position: i64,
        /// What is wrong.
        reason: Mismatch,
        /// Entries before it, all matching.
        intact_events: i64,
    },
}

/// Why an entry does not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The event's content differs from what was sealed.
    Changed,
    /// The event is no longer in the table.
    Missing,
    /// The row at the position holds another event.
    OtherEvent { sealed: Uuid, found: Uuid },
    /// Entries are missing before this one (the chain skips from `expected` to this `seq`).
    Gap { expected: i64 },
    /// The entry's stored previous hash is not the previous entry's hash.
    Link,
    /// The chain ends before the checkpoint (entries removed) or goes past it.
    Length { entries: i64, checkpoint: i64 },
    /// A published head names a hash this entry does not have (`source` says where it was
    /// published).
    Head { source: String, expected: String },
    /// A published head names an entry the chain does not reach.
    Truncated { source: String, events: i64 },
    /// The checkpoint's hash differs from the recomputed head.
    Checkpoint,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Changed => f.write_str("the event's content differs from what was sealed"),
            Mismatch::Missing => f.write_str("the sealed event is no longer in the events table"),
            Mismatch::OtherEvent { sealed, found } => {
                write!(f, "event {sealed} was sealed here, the table holds {found}")
            }
            Mismatch::Gap { expected } => {
                write!(f, "chain entries from {expected} on are missing")
            }
            Mismatch::Link => f.write_str("the entry does not link to the previous entry's hash"),
            Mismatch::Length {
                entries,
                checkpoint,
            } => write!(
                f,
                "the chain has {entries} entries but the sealer's checkpoint says {checkpoint}"
            ),
            Mismatch::Head { source, expected } => {
                write!(f, "the head published by {source} says {expected}")
            }
            Mismatch::Truncated { source, events } => write!(
                f,
                "the head published by {source} covers {events} events, more than the chain holds"
            ),
            Mismatch::Checkpoint => {
                f.write_str("the sealer's checkpoint holds another hash than the recomputed head")
            }
        }
    }
}

/// A head to hold the chain to: entry `events` must have `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedHead {
    pub events: i64,
    pub hash: Hash,
    /// Where it comes from, for the report.
    pub source: String,
}

struct Entry {
    seq: i64,
    position: i64,
    event_id: Uuid,
    hash: Hash,
    prev_hash: Hash,
    /// The event's id and digest as the table holds it now; `None` if it is gone.
    found: Option<(Uuid, Hash)>,
}

/// Recomputes the chain up to the sealer's checkpoint `name` and compares. `heads` are extra
/// heads to hold it to (from outside the database); `progress` is called after each chunk.
pub async fn verify(
    pool: &PgPool,
    name: &str,
    heads: &[ExpectedHead],
    options: VerifyOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Verdict, AuditError> {
    // The checkpoint and the chain's extent from one snapshot: the sealer moves both in one
    // transaction, so they agree unless someone else wrote.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let checkpoint: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_chain_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let (entries, events_in_table): (Option<i64>, i64) =
        sqlx::query_as("SELECT (SELECT max(seq) FROM event_chain), (SELECT count(*) FROM events)")
            .fetch_one(&mut *tx)
            .await?;
    let published = published_heads(&mut tx).await?;
    tx.commit().await?;

    let (total, checkpoint_hash) = match checkpoint {
        Some((seq, hash)) => (
            seq,
            chain::from_bytes(&hash)
                .ok_or_else(|| AuditError::Corrupt("checkpoint hash".to_owned()))?,
        ),
        None => (0, GENESIS),
    };
    let mut expected: BTreeMap<i64, Vec<(Hash, String)>> = BTreeMap::new();
    for head in published.iter().chain(heads) {
        expected
            .entry(head.events)
            .or_default()
            .push((head.hash, head.source.clone()));
    }

    let chunk = options.chunk.max(1);
    let ranges: Vec<(i64, i64)> = (0..total)
        .step_by(usize::try_from(chunk).unwrap_or(usize::MAX))
        .map(|start| (start, (start + chunk).min(total)))
        .collect();
    let mut chunks = futures::stream::iter(ranges)
        .map(|(after, upto)| {
            let pool = pool.clone();
            tokio::spawn(async move { read_chunk(&pool, after, upto).await })
        })
        .buffered(options.parallel.max(1));

    let mut previous = GENESIS;
    let mut last_seq = 0;
    let mut last_position = 0;
    let mut heads_checked = 0;
    while let Some(joined) = chunks.next().await {
        let rows = joined
            .map_err(|error| AuditError::Corrupt(format!("a verify task failed: {error}")))??;
        for entry in rows {
            let broken = |reason: Mismatch| Verdict::Broken {
                seq: entry.seq,
                position: entry.position,
                reason,
                intact_events: last_seq,
            };
            if entry.seq != last_seq + 1 {
                return Ok(broken(Mismatch::Gap {
                    expected: last_seq + 1,
                }));
            }
            let Some((found_id, digest)) = entry.found else {
                return Ok(broken(Mismatch::Missing));
            };
            if found_id != entry.event_id {
                return Ok(broken(Mismatch::OtherEvent {
                    sealed: entry.event_id,
                    found: found_id,
                }));
            }
            if entry.prev_hash != previous {
                return Ok(broken(Mismatch::Link));
            }
            let hash = chain::link(&previous, &digest);
            if hash != entry.hash {
                return Ok(broken(Mismatch::Changed));
            }
            if let Some(claims) = expected.remove(&entry.seq) {
                for (claimed, source) in claims {
                    heads_checked += 1;
                    if claimed != hash {
                        return Ok(broken(Mismatch::Head {
                            source,
                            expected: chain::hex(&claimed),
                        }));
                    }
                }
            }
            previous = hash;
            last_seq = entry.seq;
            last_position = entry.position;
        }
        progress(Progress {
            checked: last_seq,
            total,
            position: last_position,
        });
    }
    let at_end = |reason: Mismatch| Verdict::Broken {
        seq: last_seq,
        position: last_position,
        reason,
        intact_events: last_seq,
    };
    if last_seq != total || entries.unwrap_or(0) != total {
        return Ok(at_end(Mismatch::Length {
            entries: entries.unwrap_or(0).max(last_seq),
            checkpoint: total,
        }));
    }
    if previous != checkpoint_hash {
        return Ok(at_end(Mismatch::Checkpoint));
    }
    // Every head left names an entry past the checkpoint. A head is published after its entries
    // are committed, so one in the log means the chain was cut back (or its checkpoint reset); one
    // from the caller may also be newer than this run's snapshot.
    if let Some((events, claims)) = expected.into_iter().next()
        && let Some((_, source)) = claims.into_iter().next()
    {
        return Ok(at_end(Mismatch::Truncated { source, events }));
    }
    Ok(Verdict::Intact {
        events: last_seq,
        position: last_position,
        head: previous,
        heads_checked,
        unsealed: (events_in_table - last_seq).max(0),
    })
}

/// The heads the sealer published in the log.
async fn published_heads(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<Vec<ExpectedHead>, AuditError> {
    let rows = sqlx::query(
        "SELECT position, data FROM events WHERE stream_id = $1 AND event_type = $2
         ORDER BY stream_version",
    )
    .bind(CHAIN_STREAM)
    .bind(ChainHeadSealed::TYPE)
    .fetch_all(&mut **tx)
    .await?;
    let mut heads = Vec::with_capacity(rows.len());
    for row in rows {
        let position: i64 = row.try_get("position")?;
        let data: serde_json::Value = row.try_get("data")?;
        // A head event that no longer parses is itself a change; it is sealed like every event,
        // so the chain walk names it. Here it is simply not used.
        let Ok(head) = serde_json::from_value::<ChainHeadSealed>(data) else {
            continue;
        };
        let Some(hash) = chain::parse_hex(&head.hash) else {
            continue;
        };
        heads.push(ExpectedHead {
            events: head.events,
            hash,
            source: format!("the ChainHeadSealed event at position {position}"),
        });
    }
    Ok(heads)
}

/// Entries `after < seq <= upto` with the events they cover, digested.
///
/// Read as one binary `COPY` and parsed in place: no row objects, no strings, the digest
/// computed from slices of the buffer (most of verify's own time was going to decoding rows).
async fn read_chunk(pool: &PgPool, after: i64, upto: i64) -> Result<Vec<Entry>, AuditError> {
    let mut connection = pool.acquire().await?;
    // Both bounds are integers, so formatting them into the statement is safe (COPY takes no
    // parameters).
    let mut stream = connection
        .copy_out_raw(&format!(
            "COPY (SELECT c.seq, c.position, c.event_id, c.hash, c.prev_hash, {EVENT_COLUMNS}
                   FROM event_chain c LEFT JOIN events e ON e.position = c.position
                   WHERE c.seq > {after} AND c.seq <= {upto}
                   ORDER BY c.seq) TO STDOUT (FORMAT binary)"
        ))
        .await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        bytes.extend_from_slice(&chunk);
    }
    drop(stream);
    parse_entries(&bytes)
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The chain columns (5) and the event columns ([`EVENT_COLUMNS`], 13) of one row.
const COLUMNS: i16 = 18;

/// Parses a binary `COPY` of [`read_chunk`]'s query.
fn parse_entries(bytes: &[u8]) -> Result<Vec<Entry>, AuditError> {
    let mut reader = CopyReader { bytes, at: 0 };
    reader.header()?;
    let mut entries = Vec::new();
    loop {
        let columns = reader.i16()?;
        if columns == -1 {
            return Ok(entries);
        }
        if columns != COLUMNS {
            return Err(reader.error(&format!("a row of {columns} columns, not {COLUMNS}")));
        }
        let seq = reader.int8()?;
        let corrupt = |what: &str| AuditError::Corrupt(format!("chain entry {seq}: {what}"));
        let position = reader.int8()?;
        let event_id = reader.uuid()?;
        let hash = chain::from_bytes(reader.bytes()?).ok_or_else(|| corrupt("hash"))?;
        let prev_hash =
            chain::from_bytes(reader.bytes()?).ok_or_else(|| corrupt("previous hash"))?;
        let found = match reader.field()? {
            None => {
                // No event at the position: the other 12 event columns are null too.
                for _ in 1..COLUMNS - 5 {
                    reader.field()?;
                }
                None
            }
            Some(event_position) => {
                let fields = EventFields {
                    position: be_i64(event_position).ok_or_else(|| corrupt("event position"))?,
                    stream_id: reader.bytes()?,
                    stream_version: reader.int8()?,
                    event_id: reader.uuid()?,
                    event_type: reader.bytes()?,
                    schema_version: reader.int4()?,
                    data: reader.bytes()?,
                    correlation_id: reader.uuid()?,
                    causation_id: reader.optional_uuid()?,
                    actor: reader.bytes()?,
                    command_id: reader.optional_uuid()?,
                    occurred_at_micros: reader.int8()? + POSTGRES_EPOCH_MICROS,
                    recorded_at_micros: reader.int8()? + POSTGRES_EPOCH_MICROS,
                };
                Some((Uuid::from_bytes(fields.event_id), fields.digest()))
            }
        };
        entries.push(Entry {
            seq,
            position,
            event_id: Uuid::from_bytes(event_id),
            hash,
            prev_hash,
            found,
        });
    }
}

fn be_i64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

/// A cursor over PostgreSQL's binary `COPY` format: a header, then per row a 16-bit column
/// count and per column a 32-bit length (-1 for null) and the value's binary form; -1 ends it.
struct CopyReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> CopyReader<'a> {
    const SIGNATURE: &'static [u8] = b"PGCOPY\n\xff\r\n\0";

    fn error(&self, what: &str) -> AuditError {
        AuditError::Corrupt(format!("verify's COPY data at byte {}: {what}", self.at))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AuditError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("ends early"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn i16(&mut self) -> Result<i16, AuditError> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Result<i32, AuditError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn header(&mut self) -> Result<(), AuditError> {
        if self.take(Self::SIGNATURE.len())? != Self::SIGNATURE {
            return Err(self.error("not a binary COPY"));
        }
        let _flags = self.i32()?;
        let extension = usize::try_from(self.i32()?).map_err(|_| self.error("header"))?;
        self.take(extension)?;
        Ok(())
    }

    /// A column's value, `None` when null.
    fn field(&mut self) -> Result<Option<&'a [u8]>, AuditError> {
        let length = self.i32()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| self.error("a negative length"))?;
        self.take(length).map(Some)
    }

    /// A column that may not be null.
    fn bytes(&mut self) -> Result<&'a [u8], AuditError> {
        self.field()?
            .ok_or_else(|| self.error("an unexpected null"))
    }

    fn int8(&mut self) -> Result<i64, AuditError> {
        let bytes = self.bytes()?;
        be_i64(bytes).ok_or_else(|| self.error("an int8 of the wrong size"))
    }

    fn int4(&mut self) -> Result<i32, AuditError> {
        let bytes = self.bytes()?;
        let bytes: [u8; 4] = bytes
            .try_into()
            .map_err(|_| self.error("an int4 of the wrong size"))?;
        Ok(i32::from_be_bytes(bytes))
    }

    fn uuid(&mut self) -> Result<[u8; 16], AuditError> {
        let bytes = self.bytes()?;
        bytes
            .try_into()
            .map_err(|_| self.error("a uuid of the wrong size"))
    }

    fn optional_uuid(&mut self) -> Result<Option<[u8; 16]>, AuditError> {
        match self.field()? {
            None => Ok(None),
            Some(bytes) => bytes
                .try_into()
                .map(Some)
                .map_err(|_| self.error("a uuid of the wrong size")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY of one entry whose event is gone (every event column null).
    fn copy_of_entry_without_event(seq: i64) -> Vec<u8> {
        let mut bytes = CopyReader::SIGNATURE.to_vec();
        bytes.extend(0i32.to_be_bytes());
        bytes.extend(0i32.to_be_bytes());
        bytes.extend(COLUMNS.to_be_bytes());
        let mut column = |value: Option<&[u8]>| match value {
            None => bytes.extend((-1i32).to_be_bytes()),
            Some(value) => {
                bytes.extend(i32::try_from(value.len()).expect("short").to_be_bytes());
                bytes.extend(value);
            }
        };
        column(Some(&seq.to_be_bytes()));
        column(Some(&40i64.to_be_bytes()));
        column(Some(&[7; 16]));
        column(Some(&[1; 32]));
        column(Some(&[0; 32]));
        for _ in 5..COLUMNS {
            column(None);
        }
        bytes.extend((-1i16).to_be_bytes());
        bytes
    }

    #[test]
    fn a_row_without_its_event_parses_as_missing() {
        let entries = parse_entries(&copy_of_entry_without_event(3)).expect("parses");
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!((entry.seq, entry.position), (3, 40));
        assert_eq!(entry.event_id, Uuid::from_bytes([7; 16]));
        assert_eq!((entry.hash, entry.prev_hash), ([1; 32], GENESIS));
        assert!(entry.found.is_none());
    }

    #[test]
    fn cut_or_foreign_data_is_an_error_not_a_verdict() {
        let bytes = copy_of_entry_without_event(3);
        for cut in [5, 30, bytes.len() - 2] {
            let error = parse_entries(&bytes[..cut]).err().expect("an error");
            assert!(matches!(error, AuditError::Corrupt(_)), "{error:?}");
        }
        let error = parse_entries(b"seq,position\n1,2\n")
            .err()
            .expect("an error");
        assert!(error.to_string().contains("not a binary COPY"), "{error}");
    }
}
