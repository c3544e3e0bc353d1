//! The query API over real HTTP: the router on a random port, a fresh database per test, events
//! appended as the command side would, projected by the real projectors, read with reqwest.

#![allow(clippy::unwrap_used)]

mod helpers;
mod service_tasks;
mod streams;
mod trips;
mod vehicles;
