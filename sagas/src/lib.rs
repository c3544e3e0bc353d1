//! The saga runtime: long-running processes (payment, KYC, debt, fines) that react to events,
//! keep durable state and timers, and send commands through the same path as the API.
//!
//! A [`Saga`] is pure: given an instance's state and an event (or a due timer) it returns a
//! [`Reaction`]: the new state, commands to send, timers to set or cancel. The runtime does the
//! rest, in PostgreSQL (`migrations/*_sagas.sql`):
//!
//! - [`SagaRunner`] runs the saga as a follower of the log ([`event_store::follower`]): for
//!   each batch, in **one transaction**, the follower module locks the checkpoint, the runner
//!   locks the instances involved, applies the reactions, stores the states, the timers and the
//!   commands (the *outbox*), and the checkpoint moves. A failure rolls everything back and the
//!   batch is retried from the checkpoint with backoff, never skipped.
//! - [`TimerWorker`] fires due timers (`due_at` ≤ the injected clock's now), each in the same
//!   transaction as the state and commands its reaction produced. Timers are rows, so they fire
//!   after a restart; they are claimed with `FOR UPDATE SKIP LOCKED`, so many workers can share
//!   the table and none fires a timer twice.
//! - [`Dispatcher`] sends the outbox's pending commands through a [`CommandSink`] (the binary
//!   implements it over the command API's in-process router) *after* the transaction, never
//!   inside one, and marks them sent or retries them later.
//!
//! # Exactly once, twice over
//!
//! Each instance row remembers the last event it reacted to, so replaying the log from an older
//! checkpoint changes nothing. And each command's id is derived from its cause (the event or
//! timer id), the saga, the instance and its index in the reaction ([`derived_id`]): deciding it
//! again inserts nothing new (`ON CONFLICT DO NOTHING`), and the id is the command's
//! `Idempotency-Key`, so sending it again (a retry, a crash between sending and marking it sent)
//! is answered from the first result and appends nothing.
//!
//! [`overview`] summarises every saga for the admin view: instances by status, overdue and
//! failing timers, pending and failed commands, the last failure.
//!
//! The business sagas: [`kyc`] (documents → the KYC provider → verified, rejected or manual
//! review; silence past the deadline → manual review; with [`kyc::KycProviderClient`], the
//! adapter that performs its `kyc.submit` over HTTP) and [`fines`] (a received fine → matched to
//! the trip that had the car, or assigned to the fleet). The payment saga lives with the rest of
//! payments, in the `payments` crate, on this runtime.
//!
//! Architecture invariant: the only writer of the `saga_*` tables (its checkpoints are the
//! follower module's); never calls the network inside a transaction; never skips an event.

mod dispatcher;
mod error;
pub mod fines;
pub mod kyc;
mod overview;
mod runner;
mod saga;
mod store;
mod timers;

pub use dispatcher::{CommandSink, DispatchPass, Dispatcher, DispatcherConfig, SinkError};
pub use error::SagaError;
pub use event_store::follower::RunnerConfig;
pub use overview::{FailingItem, SagaSummary, overview};
pub use runner::{KIND as FOLLOWER_KIND, SagaRunner};
pub use saga::{
    CommandToSend, FiredTimer, OutboxCommand, Reaction, ReactionError, Saga, TimerToSet,
};
pub use store::derived_id;
pub use timers::{TimerPass, TimerWorker};
