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
//! connections (digests are computed as the rows arrive, in parallel tasks), and linked in
//! order; memory holds only the chunks in flight.

use crate::chain::{self, ChainEvent, EVENT_COLUMNS, GENESIS, Hash};
use crate::error::AuditError;
use crate::record::{CHAIN_STREAM, ChainHeadSealed};
use futures::StreamExt;
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
async fn read_chunk(pool: &PgPool, after: i64, upto: i64) -> Result<Vec<Entry>, AuditError> {
    let rows = sqlx::query(&format!(
        "SELECT c.seq, c.position AS chain_position, c.event_id AS chain_event_id, c.hash,
                c.prev_hash, {EVENT_COLUMNS}
         FROM event_chain c LEFT JOIN events e ON e.position = c.position
         WHERE c.seq > $1 AND c.seq <= $2
         ORDER BY c.seq"
    ))
    .bind(after)
    .bind(upto)
    .fetch_all(pool)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row.try_get(0)?;
        let hash: Vec<u8> = row.try_get(3)?;
        let prev_hash: Vec<u8> = row.try_get(4)?;
        let corrupt = |what: &str| AuditError::Corrupt(format!("chain entry {seq}: {what}"));
        let present: Option<i64> = row.try_get(5)?;
        let found = match present {
            Some(_) => {
                let event = ChainEvent::from_row(row, 5)?;
                Some((event.event_id, event.digest()))
            }
            None => None,
        };
        entries.push(Entry {
            seq,
            position: row.try_get(1)?,
            event_id: row.try_get(2)?,
            hash: chain::from_bytes(&hash).ok_or_else(|| corrupt("hash"))?,
            prev_hash: chain::from_bytes(&prev_hash).ok_or_else(|| corrupt("previous hash"))?,
            found,
        });
    }
    Ok(entries)
}
