//! What a saga is: a pure reaction to events and timers.

use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// A process manager. Implementations are pure: no IO, no clock (times come from the event or
/// the timer), so that reacting again to the same input decides the same thing.
///
/// The runtime is generic over the saga (one [`crate::SagaRunner`] and one
/// [`crate::TimerWorker`] per saga), so the state is a plain Rust type stored as JSON.
pub trait Saga: Send + Sync + 'static {
    /// The state of one instance, stored as JSON in `saga_instances.state`.
    type State: Serialize + DeserializeOwned + Send;

    /// The saga's name: the key of its checkpoint, instances, timers and commands. Never rename.
    fn name(&self) -> &'static str;

    /// The stream categories whose events the saga reacts to; others are skipped cheaply.
    fn categories(&self) -> &'static [&'static str];

    /// The instance an event belongs to, or `None` to ignore the event.
    fn instance_of(&self, event: &RecordedEvent) -> Option<String>;

    /// Reacts to an event of the instance. `state` is `None` for a new instance.
    fn react(
        &self,
        state: Option<Self::State>,
        event: &RecordedEvent,
    ) -> Result<Reaction<Self::State>, ReactionError>;

    /// Reacts to one of the instance's timers falling due.
    fn on_timer(
        &self,
        state: Self::State,
        timer: &FiredTimer,
    ) -> Result<Reaction<Self::State>, ReactionError>;
}

/// What a saga decided. Built with [`Reaction::new`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
pub struct Reaction<S> {
    /// The instance's new state.
    pub state: S,
    /// Whether the instance is finished: it then ignores further events, and its pending timers
    /// are cancelled.
    pub completed: bool,
    /// Commands to send, in order.
    pub commands: Vec<CommandToSend>,
    /// Timers to set. A timer replaces a pending timer of the instance with the same name.
    pub set_timers: Vec<TimerToSet>,
    /// Names of pending timers to cancel.
    pub cancel_timers: Vec<String>,
}

impl<S> Reaction<S> {
    /// Only a new state.
    pub fn new(state: S) -> Self {
        Self {
            state,
            completed: false,
            commands: Vec::new(),
            set_timers: Vec::new(),
            cancel_timers: Vec::new(),
        }
    }

    /// Also sends `name` (a command API operation, as NATS names it) with `payload`.
    pub fn with_command(mut self, name: impl Into<String>, payload: Value) -> Self {
        self.commands.push(CommandToSend {
            name: name.into(),
            payload,
        });
        self
    }

    /// Also sets timer `name` to fire at `due_at`.
    pub fn with_timer(
        mut self,
        name: impl Into<String>,
        due_at: DateTime<Utc>,
        payload: Value,
    ) -> Self {
        self.set_timers.push(TimerToSet {
            name: name.into(),
            due_at,
            payload,
        });
        self
    }

    /// Also cancels the pending timer `name`, if any.
    pub fn cancelling(mut self, name: impl Into<String>) -> Self {
        self.cancel_timers.push(name.into());
        self
    }

    /// Marks the instance finished.
    pub fn completed(mut self) -> Self {
        self.completed = true;
        self
    }
}

/// A command a saga wants sent.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandToSend {
    /// The command's name (the command API's operation id).
    pub name: String,
    /// Its body.
    pub payload: Value,
}

/// A timer a saga wants set.
#[derive(Clone, Debug, PartialEq)]
pub struct TimerToSet {
    /// Its name within the instance.
    pub name: String,
    /// When it falls due, in business time (the injected clock).
    pub due_at: DateTime<Utc>,
    /// Handed back in [`FiredTimer::payload`].
    pub payload: Value,
}

/// A timer that fell due.
#[derive(Clone, Debug, PartialEq)]
pub struct FiredTimer {
    /// Its id (derived from what set it).
    pub timer_id: Uuid,
    /// The instance it belongs to.
    pub instance_id: String,
    /// Its name.
    pub name: String,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// What the saga stored with it.
    pub payload: Value,
}

/// A command in the outbox, as handed to a [`crate::CommandSink`].
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxCommand {
    /// Derived from its cause; use it as the `Idempotency-Key`.
    pub command_id: Uuid,
    /// The saga that decided it.
    pub saga: String,
    /// The instance that decided it (also a sensible correlation).
    pub instance_id: String,
    /// The command's name.
    pub name: String,
    /// Its body.
    pub payload: Value,
    /// How many times sending it has been attempted, this one included.
    pub attempt: i32,
}

/// A saga could not react (an event it cannot decode, a state that breaks its rules). The
/// runner stops at the event and retries it; it never skips it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReactionError(pub String);

impl ReactionError {
    /// An error saying `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}
