//! What the read models share: every row remembers the version of the last event of its stream
//! that was applied, and every write applies only a newer one.
//!
//! The checkpoint already guarantees each event is applied once; the version guard is a second
//! line for rebuilds and replays (re-running a projector over rows it already wrote), where
//! without it an old event could move a row backwards.

use crate::projector::ProjectionError;
use sqlx::PgConnection;
use uuid::Uuid;

/// A read-model table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// `trips_view`, keyed by `trip_id`.
    Trips,
    /// `vehicles_view`, keyed by `vehicle_id`.
    Vehicles,
    /// `service_tasks_view`, keyed by `task_id`.
    ServiceTasks,
    /// `reservations_view`, keyed by `reservation_id`.
    Reservations,
    /// `vehicle_possessions`, keyed by `trip_id`.
    Possessions,
    /// `customers_view`, keyed by `customer_id`.
    Customers,
}

impl View {
    fn version_query(self) -> &'static str {
        match self {
            View::Trips => "SELECT stream_version FROM trips_view WHERE trip_id = $1",
            View::Vehicles => "SELECT stream_version FROM vehicles_view WHERE vehicle_id = $1",
            View::ServiceTasks => {
                "SELECT stream_version FROM service_tasks_view WHERE task_id = $1"
            }
            View::Reservations => {
                "SELECT stream_version FROM reservations_view WHERE reservation_id = $1"
            }
            View::Possessions => {
                "SELECT stream_version FROM vehicle_possessions WHERE trip_id = $1"
            }
            View::Customers => "SELECT stream_version FROM customers_view WHERE customer_id = $1",
        }
    }

    fn table(self) -> &'static str {
        match self {
            View::Trips => "trips_view",
            View::Vehicles => "vehicles_view",
            View::ServiceTasks => "service_tasks_view",
            View::Reservations => "reservations_view",
            View::Possessions => "vehicle_possessions",
            View::Customers => "customers_view",
        }
    }
}

/// A version-guarded write to one row.
#[derive(Debug)]
pub(crate) struct Guarded<'a> {
    pub(crate) view: View,
    pub(crate) id: Uuid,
    /// The version of the event written.
    pub(crate) version: i64,
    pub(crate) event_type: &'a str,
}

impl Guarded<'_> {
    /// Accepts a write that changed the row, or that changed nothing because the row already
    /// holds this event or a later one (a replay). A write that found no row at all means the
    /// event's stream began before anything this projector saw: the log and the read model
    /// disagree, and the projector must stop rather than guess.
    pub(crate) async fn check(
        &self,
        conn: &mut PgConnection,
        rows_affected: u64,
    ) -> Result<(), ProjectionError> {
        if rows_affected > 0 {
            return Ok(());
        }
        let current: Option<i64> = sqlx::query_scalar(self.view.version_query())
            .bind(self.id)
            .fetch_optional(&mut *conn)
            .await?;
        match current {
            Some(current) if current >= self.version => Ok(()),
            Some(current) => Err(ProjectionError::Inconsistent(format!(
                "{} for {} at version {} left the {} row at version {current}",
                self.event_type,
                self.id,
                self.version,
                self.view.table()
            ))),
            None => Err(ProjectionError::Inconsistent(format!(
                "{} (version {}) for {}, which {} does not have",
                self.event_type,
                self.version,
                self.id,
                self.view.table()
            ))),
        }
    }
}
