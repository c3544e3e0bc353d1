//! The audit tools: what lets an auditor trust and read the log.
//!
//! - [`as_of`]: an aggregate's state as of a time, its events recorded by then folded with the
//!   domain's evolve (`velka audit state`, `GET /v1/audit/streams/{id}/state`).
//! - [`chain`]: the hash chain's encoding — every event's content (stream, version, position,
//!   type, schema version, data, metadata, id, times) hashed and linked to the previous entry.
//! - [`sealer`]: the [`Sealer`](sealer::Sealer), run by `velka serve`, extends the chain over
//!   the log in delivery order after commit (so appends never wait on a global lock) and
//!   publishes the chain's head periodically as a `ChainHeadSealed` event and on NATS.
//! - [`verify`]: `velka audit verify` recomputes the chain from the `events` table and names the
//!   first position that does not match.
//! - [`history`] and [`http`]: `GET /v1/audit/events`, the whole log filtered by category, event
//!   type, actor, correlation id and recorded time, paged in delivery order, with chain hashes.
//! - [`export`]: `velka audit export`, JSON Lines of a time range through a server-side cursor.
//! - [`money`]: `velka audit money` and `GET /v1/audit/money`, every account recomputed from
//!   its events and compared with the read model and the payment gateway's ledger.
//! - [`record`]: auditor actions (queries, exports) recorded as events on `audit-log`.
//!
//! Architecture invariant: writes only its own table (`event_chain`; the sealer's checkpoint,
//! with the chain's head, is the follower module's) and its own streams (`audit-chain`,
//! `audit-log`); never changes an event, and never makes an append wait for it.

pub mod as_of;
pub mod chain;
mod error;
pub mod export;
pub mod history;
pub mod http;
pub mod money;
pub mod record;
pub mod sealer;
pub mod verify;

pub use error::AuditError;
