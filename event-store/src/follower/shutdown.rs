//! The signal that stops followers (and whatever a process stops with them): a
//! [`tokio_util::sync::CancellationToken`] under a name that says what it is for. Cancellation
//! (rather than a `watch<bool>`) because it can be awaited by any number of tasks, can have
//! children that stop with it, and cannot be "un-triggered".

use tokio_util::sync::CancellationToken;

/// Stops every runner given a clone of it. Cheap to clone; all clones are one signal.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every runner to stop after the batch in hand.
    pub fn trigger(&self) {
        self.0.cancel();
    }

    /// Whether it has been triggered.
    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once triggered.
    pub async fn triggered(&self) {
        self.0.cancelled().await;
    }

    /// A signal triggered with this one, or on its own (to stop some runners and not others).
    pub fn child(&self) -> Self {
        Self(self.0.child_token())
    }

    /// The underlying token, for code that speaks `tokio_util`.
    pub fn token(&self) -> &CancellationToken {
        &self.0
    }
}

impl From<CancellationToken> for Shutdown {
    fn from(token: CancellationToken) -> Self {
        Self(token)
    }
}
