//! What stops a load tool: one error for the crate, each failure keeping its source, and a
//! [`Context`] to say what the tool was doing when it failed.

/// A load tool could not go on.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// What the tool was doing when `source` failed.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<LoadError>,
    },
    /// The server, the database or pgbench answered something the tool cannot go on from.
    #[error("{0}")]
    Unexpected(String),
    /// A request did not reach the server, or its answer could not be read.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// A query on the database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Connecting to or migrating the database failed.
    #[error(transparent)]
    Connect(#[from] event_store::database::ConnectError),
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    /// The event store refused or failed an append.
    #[error(transparent)]
    Append(#[from] event_store::AppendError),
    /// Rebuilding the read models failed.
    #[error(transparent)]
    Rebuild(#[from] projectors::rebuild::RebuildError),
    /// Sealing or verifying the hash chain failed.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// The generated city's data is broken.
    #[error(transparent)]
    Fixture(#[from] fixtures::FixtureError),
    /// A token could not be signed.
    #[error(transparent)]
    Token(#[from] http_edge::auth::SignError),
    /// Starting a process, reading its output or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A number does not fit where it goes.
    #[error(transparent)]
    Range(#[from] std::num::TryFromIntError),
    /// A wait ran out of time.
    #[error(transparent)]
    Timeout(#[from] tokio::time::error::Elapsed),
    /// A task of the tool panicked.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// A result of a load tool.
pub type Result<T, E = LoadError> = std::result::Result<T, E>;

/// A failure the tool cannot go on from, said in words.
pub(crate) fn unexpected(what: impl Into<String>) -> LoadError {
    LoadError::Unexpected(what.into())
}

/// Says what the tool was doing, on a failed result or a missing value.
pub(crate) trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;

    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<LoadError>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| LoadError::Context {
            context: context.into(),
            source: Box::new(source.into()),
        })
    }

    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|source| LoadError::Context {
            context: context().into(),
            source: Box::new(source.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| unexpected(context))
    }

    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| unexpected(context()))
    }
}

/// Returns an [`LoadError::Unexpected`] with the formatted words.
macro_rules! bail {
    ($($words:tt)*) => {
        return Err($crate::error::unexpected(format!($($words)*)))
    };
}

/// Returns an [`LoadError::Unexpected`] with the formatted words unless `condition` holds.
macro_rules! ensure {
    ($condition:expr, $($words:tt)*) => {
        if !$condition {
            bail!($($words)*);
        }
    };
}
