//! Velka's business rules, and nothing else.
//!
//! Each aggregate (customer, vehicle, trip, quote, reservation, account, company, service task,
//! damage report, fine, penalty) is a *decider*: a pure `decide` function that turns a command
//! and the current state into events or a [`Rejection`], and a pure `evolve` function that folds
//! events into state. The edges (HTTP, SQL, clocks) live in other crates and hand this crate
//! plain values: the current time arrives in a context, never from a clock.
//!
//! Architecture invariant: no IO, no async, no database or HTTP types, no reading of the clock.

pub mod account;
pub mod claims;
pub mod company;
pub mod customer;
pub mod damage;
pub mod decider;
pub mod fine;
pub mod fleet;
pub mod geo;
pub mod ids;
pub mod money;
pub mod penalty;
pub mod pricing;
pub mod quote;
pub mod rejection;
pub mod rental;
pub mod reservation;
pub mod service_task;
#[cfg(test)]
mod testing;
pub mod trip;
pub mod value;
pub mod vehicle;
pub mod zone;

pub use decider::{Decider, DomainEvent};
pub use rejection::{FieldError, Rejection};
