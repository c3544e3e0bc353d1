//! Read models: projectors fold the event log into PostgreSQL tables that the query API reads.
//!
//! - A [`Projector`] names the stream categories it reads and applies a page of events at a
//!   time inside a transaction it is handed, folding the page in memory and writing each row it
//!   touches once (`rows`) ([`TripsProjector`] → `trips_view`,
//!   [`VehiclesProjector`] → `vehicles_view`, [`ServiceTasksProjector`] →
//!   `service_tasks_view`, [`PossessionsProjector`] → `vehicle_possessions` and
//!   `vehicle_plates`, [`CustomersProjector`] → `customers_view`).
//! - A [`ProjectorRunner`] runs a projector as a follower of the log
//!   ([`event_store::follower`]): each batch's rows and the new checkpoint commit in one
//!   transaction — exactly-once effects, no skips, a bounded retry on failure, and a
//!   [`FollowerStatus`] that says where it is and what failed.
//! - [`as_of`] builds every read model as of a time into a schema of its own, for auditors.
//! - [`start`] runs the standard read models and returns [`Projections`], which answers
//!   "caught up?" for readiness and waits for the runners to stop after [`Shutdown::trigger`].
//!
//! Architecture invariant: projectors only read the log and write their own tables (the
//! `*_view` tables, created in `migrations/*_projectors.sql`; their checkpoints are the
//! follower module's); they never call the command API, never decide anything, and take every
//! time they store from the events, so a rebuild writes the same rows.

mod accounts;
pub mod as_of;
mod customers;
pub mod demand;
mod fines;
mod possessions;
mod projector;
pub mod rebuild;
mod replay;
mod reservations;
mod rows;
mod runner;
mod running;
mod service_tasks;
#[cfg(feature = "testing")]
pub mod testing;
mod trips;
mod vehicles;

pub use accounts::AccountsProjector;
pub use customers::CustomersProjector;
pub use demand::DemandProjector;
pub use event_store::follower::{
    FailedEvent, Failure, FollowerStatus, Lag, RunnerConfig, RunnerState, Shutdown, StatusSnapshot,
    lag_between,
};
pub use fines::FinesProjector;
pub use possessions::PossessionsProjector;
pub use projector::{ProjectionError, Projector, decode_event};
pub use reservations::ReservationsProjector;
pub use runner::{FOLLOWER_KIND, ProjectorRunner, checkpoint};
pub use running::{Projections, StartError, WaitError, caught_up, start, start_on, wait_caught_up};
pub use service_tasks::ServiceTasksProjector;
pub use trips::TripsProjector;
pub use vehicles::VehiclesProjector;

use std::sync::Arc;

/// The read models the query API serves, to run together.
pub fn read_models() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(TripsProjector),
        Arc::new(VehiclesProjector),
        Arc::new(AccountsProjector),
        Arc::new(FinesProjector),
        Arc::new(ServiceTasksProjector),
        Arc::new(ReservationsProjector),
        Arc::new(DemandProjector),
        Arc::new(PossessionsProjector),
        Arc::new(CustomersProjector),
    ]
}
