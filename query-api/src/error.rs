//! What can fail on the read side, and the one place it becomes a problem response.

use event_store::StoreError;
use http_edge::Problem;

/// A read that failed on our side (bad input is a [`Problem`] straight away).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A read-model query failed.
    #[error("read-model query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A read-model row holds a value the projectors never write.
    #[error("read model holds an unexpected value: {0}")]
    Corrupt(String),
}

impl From<QueryError> for Problem {
    fn from(error: QueryError) -> Problem {
        let database = match &error {
            QueryError::Database(error) | QueryError::Store(StoreError::Database(error)) => {
                Some(error)
            }
            _ => None,
        };
        // The database being away is worth a retry (503); anything else is our bug (500).
        // Both are logged once, here.
        match database {
            Some(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_),
            ) => Problem::unavailable(&error),
            _ => Problem::internal(&error),
        }
    }
}
