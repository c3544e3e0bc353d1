//! What stops a follower's attempt. Every one of them is retried from the stored checkpoint.

use super::status::FailedEvent;
use crate::error::StoreError;
use crate::model::{LogPosition, RecordedEvent};

/// A follower's effect failed: the follower's own error, and the event it failed on if it was
/// in applying one.
#[derive(Debug)]
pub struct EffectError {
    event: Option<FailedEvent>,
    error: Box<dyn std::error::Error + Send + Sync>,
}

impl EffectError {
    /// The effect failed with `error` (not on one event in particular).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            event: None,
            error: error.into(),
        }
    }

    /// The effect failed with `error` on `event`.
    pub fn on(
        event: &RecordedEvent,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            event: Some(FailedEvent::of(event)),
            error: error.into(),
        }
    }

    /// The event it failed on, if any.
    pub fn event(&self) -> Option<&FailedEvent> {
        self.event.as_ref()
    }
}

// Says what the follower's error says, and hands on its causes: the effect error is only a
// carrier, and `error_chain` would otherwise repeat its text.
impl std::fmt::Display for EffectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for EffectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Why an attempt of a follower failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    /// Reading the log, or reading or writing the checkpoint, failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored checkpoint is not where this runner left it: another runner of the same
    /// follower moved it, or a rebuild's switch, or a manual reset. The runner starts again from
    /// what is stored.
    #[error(
        "checkpoint of {follower} moved: expected {expected:?}, found {found:?} (another runner \
         of it is active, or it was reset)"
    )]
    CheckpointMoved {
        /// The follower, as `kind:name`.
        follower: String,
        /// Where this runner left it.
        expected: LogPosition,
        /// Where it is (`None`: it is gone).
        found: Option<LogPosition>,
    },
    /// The follower's effect failed.
    #[error(transparent)]
    Effect(#[from] EffectError),
    /// The follower's checkpoints are split into another number of segments than this runner
    /// was started with (`velka followers segments` ran meanwhile): restart the process.
    #[error(
        "{follower} is split into {stored} segments, but this process runs it as {running}: \
         restart it to run the new segments"
    )]
    Segments {
        /// The follower, as `kind:name`.
        follower: String,
        /// How many segments its checkpoints have.
        stored: u32,
        /// How many this runner's id says.
        running: u32,
    },
    /// This process lost the follower's lease: a newer owner has claimed its checkpoint (see
    /// [`crate::lease`]), so this one's write was refused and nothing it did in the batch was
    /// committed. It stands by.
    #[error(
        "{follower} is owned by another process now (fence {fence}, this process's token \
         {token}): the write was refused"
    )]
    Fenced {
        /// The follower, as `kind:name`.
        follower: String,
        /// The token of the lease this process held.
        token: i64,
        /// The checkpoint's fence: the newest owner's token.
        fence: i64,
    },
}

impl From<sqlx::Error> for FollowerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::from(error))
    }
}

impl FollowerError {
    /// Whether the database ended the batch because this process went quiet in the middle of
    /// it for longer than a batch may (`idle_in_transaction_session_timeout`, SQLSTATE 25P03):
    /// the process was paused or starved, and has most likely lost its lease meanwhile. Not a
    /// fault of the follower's; it is retried like any failure.
    pub fn stalled(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = match self {
            FollowerError::Effect(effect) => Some(effect.error.as_ref()),
            other => Some(other),
        };
        while let Some(error) = cause {
            let database = error.downcast_ref::<sqlx::Error>().or_else(|| {
                match error.downcast_ref::<StoreError>() {
                    Some(StoreError::Database(database)) => Some(database),
                    _ => None,
                }
            });
            if let Some(sqlx::Error::Database(database)) = database
                && database.code().as_deref() == Some("25P03")
            {
                return true;
            }
            cause = error.source();
        }
        false
    }

    /// The event the attempt failed on, if it failed in applying one.
    pub fn event(&self) -> Option<&FailedEvent> {
        match self {
            FollowerError::Effect(effect) => effect.event(),
            _ => None,
        }
    }
}

/// The error and its sources, `: `-separated, as one line (for a status, a log line, a column).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // thiserror's `{0}` messages often repeat the source; don't say it twice.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
