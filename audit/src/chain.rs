//! The hash chain's arithmetic: how one event is encoded and hashed, and how hashes link.
//!
//! # The encoding
//!
//! An event's *digest* is SHA-256 over, in this order:
//!
//! 1. the 14 bytes `velka-event-v1`;
//! 2. the fields, in order: `stream_id` (text), `stream_version` (8-byte big-endian signed),
//!    `position` (8 bytes), `event_id` (16 bytes), `event_type` (text), `schema_version`
//!    (4 bytes), `data` (text: the stored JSON text, exactly as `data::text` gives it and as
//!    `velka audit export` writes it), `correlation_id` (16 bytes),
//!    `causation_id` (1 byte 0 = none, or 1 then 16 bytes), `actor` (text), `command_id` (like
//!    `causation_id`), `occurred_at` and `recorded_at` (each 8 bytes: microseconds since the Unix
//!    epoch, UTC). A *text* is its UTF-8 length as 4 bytes big-endian, then the bytes.
//!
//! Texts carry their length, and everything else has a fixed size, so no two different events
//! encode to the same bytes. The chain entry for the event is then
//!
//! ```text
//! hash = SHA-256("velka-chain-v1" || previous entry's hash || digest)
//! ```
//!
//! with 32 zero bytes before the first entry. Changing any field of any covered event, removing
//! one, or reordering them changes that entry's hash and every hash after it.
//!
//! `data` is hashed as the text the log stores: the `json` column keeps an event's JSON as its
//! writer sent it, byte for byte, so the sealer and the verifier hash the same bytes without
//! parsing or rendering JSON, which is what lets verify run at the speed of reading the table.
//! The same value spelled differently (keys in another order, other spacing) is a different
//! text and a different digest. Events stored before the column was `json` hold the text
//! PostgreSQL rendered for their `jsonb`, which is what was hashed when they were sealed (see
//! `migrations/20261205000200_events_data_as_sent.sql`).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The "previous hash" of the first entry.
pub const GENESIS: Hash = [0; 32];

/// The columns of `events` (aliased `e`) that the digest covers, in the order
/// [`ChainEvent::from_row`] reads them from `offset`.
pub const EVENT_COLUMNS: &str = "e.position, e.stream_id, e.stream_version, e.event_id, \
    e.event_type, e.schema_version, e.data::text AS data, e.correlation_id, e.causation_id, \
    e.actor, e.command_id, e.occurred_at, e.recorded_at";

/// An event as the chain sees it: every stored field, `data` as its stored JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    /// The stored JSON text.
    pub data: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: String,
    pub command_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl ChainEvent {
    /// Reads [`EVENT_COLUMNS`] from `row`, starting at column `offset` (by index: this runs
    /// once per event in verify).
    pub fn from_row(row: &PgRow, offset: usize) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: row.try_get(offset)?,
            stream_id: row.try_get(offset + 1)?,
            stream_version: row.try_get(offset + 2)?,
            event_id: row.try_get(offset + 3)?,
            event_type: row.try_get(offset + 4)?,
            schema_version: row.try_get(offset + 5)?,
            data: row.try_get(offset + 6)?,
            correlation_id: row.try_get(offset + 7)?,
            causation_id: row.try_get(offset + 8)?,
            actor: row.try_get(offset + 9)?,
            command_id: row.try_get(offset + 10)?,
            occurred_at: row.try_get(offset + 11)?,
            recorded_at: row.try_get(offset + 12)?,
        })
    }

    /// The event's digest (see the module documentation for the encoding).
    pub fn digest(&self) -> Hash {
        EventFields {
            position: self.position,
            stream_id: self.stream_id.as_bytes(),
            stream_version: self.stream_version,
            event_id: *self.event_id.as_bytes(),
            event_type: self.event_type.as_bytes(),
            schema_version: self.schema_version,
            data: self.data.as_bytes(),
            correlation_id: *self.correlation_id.as_bytes(),
            causation_id: self.causation_id.map(|id| *id.as_bytes()),
            actor: self.actor.as_bytes(),
            command_id: self.command_id.map(|id| *id.as_bytes()),
            occurred_at_micros: self.occurred_at.timestamp_micros(),
            recorded_at_micros: self.recorded_at.timestamp_micros(),
        }
        .digest()
    }
}

/// An event's covered fields borrowed from wherever they were read (verify parses them
/// straight out of a binary `COPY` without allocating); the one place the encoding is written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EventFields<'a> {
    pub position: i64,
    pub stream_id: &'a [u8],
    pub stream_version: i64,
    pub event_id: [u8; 16],
    pub event_type: &'a [u8],
    pub schema_version: i32,
    /// The stored JSON text.
    pub data: &'a [u8],
    pub correlation_id: [u8; 16],
    pub causation_id: Option<[u8; 16]>,
    pub actor: &'a [u8],
    pub command_id: Option<[u8; 16]>,
    /// Microseconds since the Unix epoch.
    pub occurred_at_micros: i64,
    pub recorded_at_micros: i64,
}

impl EventFields<'_> {
    /// The event's digest (see the module documentation for the encoding).
    pub fn digest(&self) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update(b"velka-event-v1");
        text(&mut hasher, self.stream_id);
        hasher.update(self.stream_version.to_be_bytes());
        hasher.update(self.position.to_be_bytes());
        hasher.update(self.event_id);
        text(&mut hasher, self.event_type);
        hasher.update(self.schema_version.to_be_bytes());
        text(&mut hasher, self.data);
        hasher.update(self.correlation_id);
        optional_uuid(&mut hasher, self.causation_id);
        text(&mut hasher, self.actor);
        optional_uuid(&mut hasher, self.command_id);
        hasher.update(self.occurred_at_micros.to_be_bytes());
        hasher.update(self.recorded_at_micros.to_be_bytes());
        hasher.finalize().into()
    }
}

fn text(hasher: &mut Sha256, value: &[u8]) {
    // Texts longer than 4 GiB cannot be stored in PostgreSQL (1 GB per field), so the length fits.
    let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
    hasher.update(length.to_be_bytes());
    hasher.update(value);
}

fn optional_uuid(hasher: &mut Sha256, value: Option<[u8; 16]>) {
    match value {
        None => hasher.update([0u8]),
        Some(id) => {
            hasher.update([1u8]);
            hasher.update(id);
        }
    }
}

/// The entry after `previous` for an event with digest `digest`.
pub fn link(previous: &Hash, digest: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(b"velka-chain-v1");
    hasher.update(previous);
    hasher.update(digest);
    hasher.finalize().into()
}

/// Lower-case hex, as hashes appear in JSON, events and on NATS.
pub fn hex(hash: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(hash.len() * 2);
    for byte in hash {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// A hash from 64 hex digits (either case).
pub fn parse_hex(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut hash = GENESIS;
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |c: u8| {
            char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        hash[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(hash)
}

/// A stored hash column (`bytea`) as a [`Hash`]; `None` if it is not 32 bytes.
pub fn from_bytes(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> ChainEvent {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
            .single()
            .expect("a valid time");
        ChainEvent {
            position: 7,
            stream_id: "trip-1".into(),
            stream_version: 2,
            event_id: Uuid::from_u128(1),
            event_type: "TripEnded".into(),
            schema_version: 1,
            data: r#"{"a": 1}"#.into(),
            correlation_id: Uuid::from_u128(2),
            causation_id: None,
            actor: "customer:1".into(),
            command_id: Some(Uuid::from_u128(3)),
            occurred_at: at,
            recorded_at: at,
        }
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = event().digest();
        let mut changes: Vec<ChainEvent> = Vec::new();
        let mut e = event();
        e.position = 8;
        changes.push(e);
        let mut e = event();
        e.stream_id = "trip-2".into();
        changes.push(e);
        let mut e = event();
        e.stream_version = 3;
        changes.push(e);
        let mut e = event();
        e.event_id = Uuid::from_u128(9);
        changes.push(e);
        let mut e = event();
        e.event_type = "TripStarted".into();
        changes.push(e);
        let mut e = event();
        e.schema_version = 2;
        changes.push(e);
        let mut e = event();
        e.data = r#"{"a": 2}"#.into();
        changes.push(e);
        let mut e = event();
        e.correlation_id = Uuid::from_u128(9);
        changes.push(e);
        let mut e = event();
        e.causation_id = Some(Uuid::from_u128(0));
        changes.push(e);
        let mut e = event();
        e.actor = "customer:2".into();
        changes.push(e);
        let mut e = event();
        e.command_id = None;
        changes.push(e);
        let mut e = event();
        e.occurred_at += chrono::Duration::microseconds(1);
        changes.push(e);
        let mut e = event();
        e.recorded_at += chrono::Duration::microseconds(1);
        changes.push(e);
        for changed in changes {
            assert_ne!(changed.digest(), base, "{changed:?}");
        }
    }

    #[test]
    fn texts_carry_their_length_so_bytes_cannot_move_between_fields() {
        let mut a = event();
        a.stream_id = "trip-1".into();
        a.event_type = "XTripEnded".into();
        let mut b = event();
        b.stream_id = "trip-1X".into();
        b.event_type = "TripEnded".into();
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn links_depend_on_the_previous_hash_and_hex_round_trips() {
        let digest = event().digest();
        let first = link(&GENESIS, &digest);
        assert_ne!(link(&first, &digest), first);
        assert_eq!(parse_hex(&hex(&first)), Some(first));
        assert_eq!(parse_hex(&hex(&first).to_uppercase()), Some(first));
        assert_eq!(parse_hex("00"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
    }
}
