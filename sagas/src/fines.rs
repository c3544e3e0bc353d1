//! The fine saga: a traffic fine received from the feed is matched to whoever had the car.
//!
//! One instance per fine (`fine-<id>`): on `FineReceived` it sends `match_fine`
//! (`POST /v1/fines/{fine_id}/match`), and is done. The command API does the matching: it waits
//! until the `vehicle_possessions` read model has reached the fine (answering 503, so the outbox
//! retries, if it has not within a few seconds), finds the trip that had the car at the time of
//! the offence, and in one append records `FineMatched`, charges the fine and the admin fee to
//! the trip's payer and notifies the driver, or, when no trip had the car, records
//! `FineAssignedToFleet` for review. The command id (derived from the `FineReceived` event) is
//! the `Idempotency-Key`, so however often the command is sent the fine is charged once.

use crate::saga::{FiredTimer, Reaction, ReactionError, Saga};
use domain::ids::FineId;
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The command API operation that matches a fine.
pub const MATCH_FINE: &str = "match_fine";

/// The fine saga; see the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct FineSaga;

/// The fine an instance matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FineSagaState {
    /// The fine.
    pub fine_id: FineId,
}

impl Saga for FineSaga {
    type State = FineSagaState;

    fn name(&self) -> &'static str {
        "fines"
    }

    fn categories(&self) -> &'static [&'static str] {
        &["fine"]
    }

    fn instance_of(&self, event: &RecordedEvent) -> Option<String> {
        (event.event_type == "FineReceived")
            .then(|| FineId::from_stream_id(&event.stream_id))
            .flatten()
            .map(|fine_id| fine_id.to_string())
    }

    fn react(
        &self,
        _state: Option<FineSagaState>,
        event: &RecordedEvent,
    ) -> Result<Reaction<FineSagaState>, ReactionError> {
        let fine_id = FineId::from_stream_id(&event.stream_id)
            .ok_or_else(|| ReactionError::new(format!("not a fine: {}", event.stream_id)))?;
        Ok(Reaction::new(FineSagaState { fine_id })
            .with_command(MATCH_FINE, json!({ "fine_id": fine_id }))
            .completed())
    }

    fn on_timer(
        &self,
        state: FineSagaState,
        _timer: &FiredTimer,
    ) -> Result<Reaction<FineSagaState>, ReactionError> {
        // The saga sets no timers.
        Ok(Reaction::new(state))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::{DateTime, Utc};
    use event_store::{LogPosition, Metadata};
    use serde_json::Value;
    use uuid::Uuid;

    fn event(stream_id: &str, event_type: &str) -> RecordedEvent {
        let at: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        RecordedEvent {
            position: 7,
            log_position: LogPosition::default(),
            stream_id: stream_id.to_owned(),
            stream_version: 1,
            event_id: Uuid::from_u128(0xE1),
            event_type: event_type.to_owned(),
            schema_version: 1,
            data: Value::Null,
            metadata: Metadata {
                correlation_id: Uuid::nil(),
                causation_id: None,
                actor: "service:fine-feed".to_owned(),
                command_id: None,
            },
            occurred_at: at,
            recorded_at: at,
        }
    }

    #[test]
    fn a_received_fine_is_sent_to_be_matched_once() {
        let fine_id = FineId(Uuid::from_u128(0x701));
        let received = event(&fine_id.stream_id(), "FineReceived");
        assert_eq!(FineSaga.instance_of(&received), Some(fine_id.to_string()));
        let reaction = FineSaga.react(None, &received).unwrap();
        assert_eq!(reaction.commands.len(), 1);
        assert_eq!(reaction.commands[0].name, MATCH_FINE);
        assert_eq!(reaction.commands[0].payload, json!({"fine_id": fine_id}));
        assert!(reaction.set_timers.is_empty());
        // Matching is the command API's; the saga's part is over.
        assert!(reaction.completed);
    }

    #[test]
    fn the_fines_later_events_start_nothing() {
        let fine_id = FineId(Uuid::from_u128(0x701));
        for event_type in ["FineMatched", "FineAssignedToFleet"] {
            assert_eq!(
                FineSaga.instance_of(&event(&fine_id.stream_id(), event_type)),
                None
            );
        }
    }
}
