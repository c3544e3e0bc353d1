//! Velka's load tools, behind `velka bench …`, `velka seed`, `velka simulate` and
//! `velka serve --demo`: the benchmarks ([`bench`]), the generated city loaded through the
//! command API ([`seed`]), app traffic from simulated users ([`traffic`]), the demo that does
//! both against the server it runs in ([`demo`]), and the small HTTP client they share
//! ([`client`]).
//!
//! Invariant: it talks to a server only over HTTP, NATS or its database, like any outside client
//! (the bulk benchmarks drive the core's libraries on a scratch database of their own, never a
//! live one); nothing in the core depends on it. It reads no environment: the binary hands it
//! plain configuration.

#[macro_use]
mod error;

pub mod bench;
pub mod client;
pub mod demo;
pub mod progress;
pub mod seed;
pub mod traffic;

pub use error::{LoadError, Result};
