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
//! connections; a chunk is two binary `COPY`s (its entries, then its events by position range,
//! not joined), parsed in place and digested in the chunk's own task, and the chunks are linked
//! in order; memory holds only the chunks in flight. PostgreSQL producing the rows is what
//! bounds it: `velka bench verify` measures it against a plain `COPY` of the same columns.

use crate::chain::{self, EventFields, GENESIS, Hash};
use crate::error::AuditError;
use crate::record::{CHAIN_STREAM, ChainHeadSealed};
use crate::sealer::ChainHead;
use event_store::copy::{CopyReader, CopyRows, POSTGRES_EPOCH_MICROS};
use event_store::follower::checkpoint;
use futures::{StreamExt, TryStreamExt};
use sqlx::{PgPool, Row};
use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// How verify reads.
#[derive(Copy, Clone, Debug)]
pub struct VerifyOptions {
    /// Entries per query.
    pub chunk: i64,
    /// Queries in flight at once (connections used).
    pub parallel: usize,
    /// Position ranges one chunk's events are read in before verify looks them up one by one
    /// instead (see `events_query`).
    pub max_ranges: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            chunk: 20_000,
            parallel: 2,
            max_ranges: 32,
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

/// A chain entry as a chunk reads it, checked on its own.
struct Entry {
    seq: i64,
    position: i64,
    hash: Hash,
    prev_hash: Hash,
    /// Whether `hash` is the link from `prev_hash` over the event the table holds at `position`
    /// now; `None` if no event is there.
    links: Option<bool>,
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
    let checkpoint = checkpoint::read(&mut *tx, &crate::sealer::follower_id(name)).await?;
    let (entries, events_in_table): (Option<i64>, i64) =
        sqlx::query_as("SELECT (SELECT max(seq) FROM event_chain), (SELECT count(*) FROM events)")
            .fetch_one(&mut *tx)
            .await?;
    let published = published_heads(&mut tx).await?;
    tx.commit().await?;

    let (total, checkpoint_hash) = match checkpoint {
        Some(stored) => {
            let head = ChainHead::of(name, &stored.checkpoint)?;
            (head.seq, head.hash)
        }
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
    let max_ranges = options.max_ranges;
    let mut chunks = futures::stream::iter(ranges)
        .map(|(after, upto)| {
            let pool = pool.clone();
            tokio::spawn(async move { read_chunk(&pool, after, upto, max_ranges).await })
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
            let Some(links) = entry.links else {
                return Ok(broken(Mismatch::Missing));
            };
            // The chunk checked the entry's link from its stored previous hash; that hash being
            // the previous entry's makes the stored chain the recomputed one.
            if entry.prev_hash != previous {
                return Ok(broken(Mismatch::Link));
            }
            if !links {
                return Ok(broken(changed(pool, entry.seq, entry.position).await?));
            }
            let hash = entry.hash;
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

/// Why an entry whose link does not hold is broken: another event at its position, or its
/// event changed. Asked only once, for the entry verify stops at, so the chunks need not read
/// each entry's event id.
async fn changed(pool: &PgPool, seq: i64, position: i64) -> Result<Mismatch, AuditError> {
    let ids: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT c.event_id, e.event_id FROM event_chain c JOIN events e ON e.position = $2
         WHERE c.seq = $1",
    )
    .bind(seq)
    .bind(position)
    .fetch_optional(pool)
    .await?;
    Ok(match ids {
        Some((sealed, found)) if sealed != found => Mismatch::OtherEvent { sealed, found },
        _ => Mismatch::Changed,
    })
}

/// Entries `after < seq <= upto`, each with its link checked against the event at its position.
///
/// Two binary `COPY`s on one connection, parsed as they arrive (no row objects, no strings; the
/// digest is computed from slices of the received data): the chain entries, then the events at
/// their positions. The events are read by position ranges rather than joined to the entries,
/// because a join probes the events' index once per entry, which cost PostgreSQL more than
/// producing the rows; the chain's order (delivery order) differs from position order only where
/// concurrent appends interleave, so a chunk's positions are nearly one range.
async fn read_chunk(
    pool: &PgPool,
    after: i64,
    upto: i64,
    max_ranges: usize,
) -> Result<Vec<Entry>, AuditError> {
    let mut connection = pool.acquire().await?;
    let mut entries = Vec::new();
    // Both bounds are integers, so formatting them into the statement is safe (COPY takes no
    // parameters).
    let chain = format!(
        "COPY (SELECT {CHAIN_READ_COLUMNS} FROM event_chain
               WHERE seq > {after} AND seq <= {upto} ORDER BY seq) TO STDOUT (FORMAT binary)"
    );
    copy_out(&mut connection, &chain, |row| {
        entries.push(parse_entry(row)?);
        Ok(())
    })
    .await?;
    if entries.is_empty() {
        return Ok(entries);
    }
    let positions: Vec<i64> = entries.iter().map(|entry| entry.position).collect();
    let mut events = EventsByPosition::new(&mut entries);
    copy_out(
        &mut connection,
        &events_query(positions, max_ranges),
        |row| events.attach(row),
    )
    .await?;
    Ok(entries)
}

/// Runs a binary `COPY … TO STDOUT` and hands each row to `on_row` as it arrives.
async fn copy_out(
    connection: &mut sqlx::PgConnection,
    statement: &str,
    on_row: impl FnMut(CopyReader<'_>) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let mut stream = connection.copy_out_raw(statement).await?;
    let mut rows = CopyRows::new(on_row);
    while let Some(piece) = stream.try_next().await? {
        rows.feed(&piece)?;
    }
    rows.finish()
}

/// Positions closer than this are read as one range (the rows between them that belong to
/// other chunks are read and skipped).
const RANGE_GAP: i64 = 256;

/// The chain's columns verify reads.
pub const CHAIN_READ_COLUMNS: &str = "seq, position, hash, prev_hash";

/// The covered columns as verify reads them: [`chain::EVENT_COLUMNS`] with `data` as stored (a `json`
/// value's binary form is its text, so the bytes are the same without a cast).
pub const VERIFY_EVENT_COLUMNS: &str = "e.position, e.stream_id, e.stream_version, e.event_id, \
    e.event_type, e.schema_version, e.data, e.correlation_id, e.causation_id, \
    e.actor, e.command_id, e.occurred_at, e.recorded_at";

/// The `COPY` of the events at `positions` ([`VERIFY_EVENT_COLUMNS`]): one index range scan per
/// run of nearby positions, or, past `max_ranges` runs (positions scattered by long-open
/// transactions), one lookup per position.
fn events_query(mut positions: Vec<i64>, max_ranges: usize) -> String {
    positions.sort_unstable();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for &position in &positions {
        match ranges.last_mut() {
            Some((_, high)) if position - *high <= RANGE_GAP => *high = position,
            _ => ranges.push((position, position)),
        }
    }
    // Integers only, so formatting them into the statement is safe.
    let select = format!("SELECT {VERIFY_EVENT_COLUMNS} FROM events e WHERE");
    let query = if ranges.len() <= max_ranges {
        ranges
            .iter()
            .map(|(low, high)| format!("{select} e.position BETWEEN {low} AND {high}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    } else {
        let list: Vec<String> = positions.iter().map(i64::to_string).collect();
        format!(
            "{select} e.position = ANY ('{{{}}}'::bigint[])",
            list.join(",")
        )
    };
    format!("COPY ({query}) TO STDOUT (FORMAT binary)")
}

/// The columns of a chain row in [`read_chunk`]'s first `COPY`.
const CHAIN_COLUMNS: i16 = 4;

/// The columns of an event row ([`VERIFY_EVENT_COLUMNS`]) in its second.
const EVENT_COLUMN_COUNT: i16 = 13;

/// One chain row: an entry whose event is not read yet.
fn parse_entry(mut row: CopyReader<'_>) -> Result<Entry, AuditError> {
    row.row(CHAIN_COLUMNS)?;
    let seq = row.int8()?;
    let corrupt = |what: &str| AuditError::Corrupt(format!("chain entry {seq}: {what}"));
    let position = row.int8()?;
    let hash = chain::from_bytes(row.bytes()?).ok_or_else(|| corrupt("hash"))?;
    let prev_hash = chain::from_bytes(row.bytes()?).ok_or_else(|| corrupt("previous hash"))?;
    Ok(Entry {
        seq,
        position,
        hash,
        prev_hash,
        links: None,
    })
}

/// Gives each entry the verdict on the event at its position, as event rows arrive. Events at
/// positions no entry names (read because they lie between) are skipped; an entry no event
/// arrives for keeps `links: None` (its event is gone).
struct EventsByPosition<'a> {
    entries: &'a mut [Entry],
    at_position: HashMap<i64, usize>,
    /// Entries naming a position an earlier entry names too (the chain's unique key dropped and
    /// rows copied): each is judged on its own.
    repeated: Vec<usize>,
}

impl<'a> EventsByPosition<'a> {
    fn new(entries: &'a mut [Entry]) -> Self {
        let mut at_position = HashMap::with_capacity(entries.len());
        let mut repeated = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match at_position.entry(entry.position) {
                Slot::Occupied(_) => repeated.push(index),
                Slot::Vacant(vacant) => {
                    vacant.insert(index);
                }
            }
        }
        Self {
            entries,
            at_position,
            repeated,
        }
    }

    fn attach(&mut self, mut row: CopyReader<'_>) -> Result<(), AuditError> {
        row.row(EVENT_COLUMN_COUNT)?;
        let position = row.int8()?;
        let Some(&index) = self.at_position.get(&position) else {
            return Ok(());
        };
        let digest = EventFields {
            position,
            stream_id: row.bytes()?,
            stream_version: row.int8()?,
            event_id: row.uuid()?,
            event_type: row.bytes()?,
            schema_version: row.int4()?,
            data: row.bytes()?,
            correlation_id: row.uuid()?,
            causation_id: row.optional_uuid()?,
            actor: row.bytes()?,
            command_id: row.optional_uuid()?,
            occurred_at_micros: row.int8()? + POSTGRES_EPOCH_MICROS,
            recorded_at_micros: row.int8()? + POSTGRES_EPOCH_MICROS,
        }
        .digest();
        let repeated = self.repeated.iter().copied();
        for index in std::iter::once(index).chain(repeated) {
            let entry = &mut self.entries[index];
            if entry.position == position {
                entry.links = Some(chain::link(&entry.prev_hash, &digest) == entry.hash);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY of `rows` (each column's bytes, `None` for null).
    fn copy(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut bytes = CopyReader::SIGNATURE.to_vec();
        bytes.extend(0i32.to_be_bytes());
        bytes.extend(0i32.to_be_bytes());
        for row in rows {
            bytes.extend(i16::try_from(row.len()).expect("few").to_be_bytes());
            for column in row {
                match column {
                    None => bytes.extend((-1i32).to_be_bytes()),
                    Some(value) => {
                        bytes.extend(i32::try_from(value.len()).expect("short").to_be_bytes());
                        bytes.extend(value);
                    }
                }
            }
        }
        bytes.extend((-1i16).to_be_bytes());
        bytes
    }

    fn chain_row(seq: i64, position: i64, hash: Hash) -> Vec<Option<Vec<u8>>> {
        vec![
            Some(seq.to_be_bytes().to_vec()),
            Some(position.to_be_bytes().to_vec()),
            Some(hash.to_vec()),
            Some(GENESIS.to_vec()),
        ]
    }

    fn fields(position: i64, data: &str) -> EventFields<'_> {
        EventFields {
            position,
            stream_id: b"test-1",
            stream_version: 1,
            event_id: [9; 16],
            event_type: b"Tested",
            schema_version: 1,
            data: data.as_bytes(),
            correlation_id: [2; 16],
            causation_id: None,
            actor: b"test",
            command_id: None,
            occurred_at_micros: POSTGRES_EPOCH_MICROS,
            recorded_at_micros: POSTGRES_EPOCH_MICROS,
        }
    }

    fn event_row(event: &EventFields<'_>) -> Vec<Option<Vec<u8>>> {
        vec![
            Some(event.position.to_be_bytes().to_vec()),
            Some(event.stream_id.to_vec()),
            Some(event.stream_version.to_be_bytes().to_vec()),
            Some(event.event_id.to_vec()),
            Some(event.event_type.to_vec()),
            Some(event.schema_version.to_be_bytes().to_vec()),
            Some(event.data.to_vec()),
            Some(event.correlation_id.to_vec()),
            None,
            Some(event.actor.to_vec()),
            None,
            Some(0i64.to_be_bytes().to_vec()),
            Some(0i64.to_be_bytes().to_vec()),
        ]
    }

    /// Feeds `bytes` to a [`CopyRows`] in pieces of `piece` bytes, collecting what `on_row`
    /// makes of each row.
    fn rows<T>(
        bytes: &[u8],
        piece: usize,
        mut on_row: impl FnMut(CopyReader<'_>) -> Result<T, AuditError>,
    ) -> Result<Vec<T>, AuditError> {
        let mut out = Vec::new();
        let mut rows = CopyRows::<_, AuditError>::new(|row| {
            out.push(on_row(row)?);
            Ok(())
        });
        for piece in bytes.chunks(piece) {
            rows.feed(piece)?;
        }
        rows.finish()?;
        Ok(out)
    }

    #[test]
    fn chain_rows_parse_into_entries_without_their_events_in_pieces_of_any_size() {
        let bytes = copy(&[chain_row(3, 40, [1; 32]), chain_row(4, 41, [2; 32])]);
        for piece in [1, 2, 7, 19, 64, bytes.len()] {
            let entries = rows(&bytes, piece, parse_entry).expect("parses");
            let seen: Vec<(i64, i64, Hash, Option<bool>)> = entries
                .iter()
                .map(|e| (e.seq, e.position, e.hash, e.links))
                .collect();
            assert_eq!(seen, vec![(3, 40, [1; 32], None), (4, 41, [2; 32], None)]);
            assert_eq!(entries[0].prev_hash, GENESIS);
        }
    }

    #[test]
    fn events_go_to_the_entries_at_their_positions_and_the_rest_are_skipped() {
        // Entries at 40, 42 and 40 again (a chain whose unique key was dropped and a row
        // copied); events at 40 and 41 (another chunk's), none at 42 (deleted).
        let sealed = fields(40, r#"{"a":1}"#);
        let hash = chain::link(&GENESIS, &sealed.digest());
        let chain_rows = copy(&[
            chain_row(1, 40, hash),
            chain_row(2, 42, hash),
            chain_row(3, 40, hash),
        ]);
        let mut entries = rows(&chain_rows, 64, parse_entry).expect("parses");
        let mut events = EventsByPosition::new(&mut entries);
        let event_rows = copy(&[event_row(&sealed), event_row(&fields(41, "{}"))]);
        rows(&event_rows, 5, |row| events.attach(row)).expect("parses");
        let links: Vec<Option<bool>> = entries.iter().map(|e| e.links).collect();
        assert_eq!(links, vec![Some(true), None, Some(true)]);

        // The digest is over the bytes as read: another spelling of the same JSON breaks the
        // link.
        let mut entries = rows(&copy(&[chain_row(1, 40, hash)]), 64, parse_entry).expect("parses");
        let mut events = EventsByPosition::new(&mut entries);
        let respelled = copy(&[event_row(&fields(40, r#"{"a": 1}"#))]);
        rows(&respelled, 64, |row| events.attach(row)).expect("parses");
        assert_eq!(entries[0].links, Some(false));
    }

    #[test]
    fn nearby_positions_are_read_as_ranges_and_scattered_ones_one_by_one() {
        let query = events_query(vec![105, 100, 101, 103, 900, 5_000], 32);
        assert!(query.contains("BETWEEN 100 AND 105 UNION ALL"), "{query}");
        assert!(query.contains("BETWEEN 900 AND 900 UNION ALL"), "{query}");
        assert!(query.contains("BETWEEN 5000 AND 5000)"), "{query}");
        assert!(!query.contains("ANY"), "{query}");

        let query = events_query(vec![105, 100, 900, 5_000], 2);
        assert!(
            query.contains("e.position = ANY ('{100,105,900,5000}'::bigint[])"),
            "{query}"
        );
        assert!(!query.contains("BETWEEN"), "{query}");
    }

    #[test]
    fn verify_reads_the_columns_the_sealer_hashes() {
        assert_eq!(
            chain::EVENT_COLUMNS.replace("e.data::text AS data", "e.data"),
            VERIFY_EVENT_COLUMNS
        );
    }

    #[test]
    fn cut_or_foreign_data_is_an_error_not_a_verdict() {
        let bytes = copy(&[chain_row(3, 40, [1; 32])]);
        for cut in [5, 30, bytes.len() - 2] {
            let error = rows(&bytes[..cut], 4, parse_entry).err().expect("an error");
            assert!(matches!(error, AuditError::Corrupt(_)), "{error:?}");
        }
        let error = rows(b"seq,position\n1,2\n........", 64, parse_entry)
            .err()
            .expect("an error");
        assert!(error.to_string().contains("not a binary COPY"), "{error}");
        let mut after_end = bytes.clone();
        after_end.extend(0i16.to_be_bytes());
        let error = rows(&after_end, 64, parse_entry).err().expect("an error");
        assert!(error.to_string().contains("after the end"), "{error}");
        // A chain row where events were expected.
        let mut entries = Vec::new();
        let mut events = EventsByPosition::new(&mut entries);
        let error = rows(&bytes, 64, |row| events.attach(row)).expect_err("an error");
        assert!(error.to_string().contains("not 13"), "{error}");
    }
}
