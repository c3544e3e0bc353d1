//! Traffic fines: a camera or an officer fines the *car* (plate, time, place, amount, resolution
//! number); the fine reaches the operator days or weeks later through the fine feed, and is
//! re-billed to whoever drove the car then, plus an admin fee.
//!
//! This module records a fine as it arrives (`fine-<id>`, `FineReceived`) and keeps it `open`.
//! Matching it to the trip that had the car and charging the driver is the fine saga's job (a
//! later issue), which will add the events that move it on.
//!
//! A fine is identified in the world by its resolution number: the feed may send one twice, so
//! the import deduplicates by it. The number is held as an exclusive claim
//! (`fine-resolution:<number>`, see [`crate::claims`]) taken in the append that records the fine,
//! so two concurrent imports of one resolution cannot both land; the loser decides again against
//! the winner's fine, which makes its import an idempotent no-op when the details agree and a
//! conflict when they do not.

#[cfg(test)]
mod tests;

use crate::account::positive_amount;
use crate::decider::{Decider, DomainEvent};
use crate::geo::GeoPoint;
use crate::ids::FineId;
use crate::money::Kopecks;
use crate::rejection::{FieldError, Rejection};
use crate::value::Plate;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The number of a resolution on an administrative offence, as the State Traffic Inspectorate
/// issues it: its unique accrual identifier (UIN, *уникальный идентификатор начисления*), which
/// the Federal Treasury's rules make 20 or 25 digits long (camera fines carry 20, starting
/// `188`). Nothing in between is a valid UIN, so 21–24 digits are refused. Spaces are dropped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResolutionNumber(String);

impl ResolutionNumber {
    /// Parses a resolution number such as `18810177231234567890`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let length = digits.chars().count();
        if !matches!(length, 20 | 25) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                "must be 20 or 25 digits (a resolution's UIN, for example 18810177231234567890)",
            ));
        }
        Ok(Self(digits))
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResolutionNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fine as the feed describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FineDetails {
    /// The resolution's number: the fine's identity in the world.
    pub resolution_number: ResolutionNumber,
    /// The car's plate.
    pub plate: Plate,
    /// When the offence happened.
    pub occurred_at: DateTime<Utc>,
    /// Where.
    pub place: GeoPoint,
    /// The fine as resolved (before any early-payment discount).
    pub amount_kopecks: Kopecks,
    /// The day the resolution was issued.
    pub issued_on: NaiveDate,
}

/// Where a fine is in its life.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FineStatus {
    /// Received and not yet matched to a driver. (Before a fine is received its state has no
    /// details; the status then means nothing.)
    #[default]
    Open,
}

impl FineStatus {
    /// The status as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
        }
    }
}

/// What happened to a fine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FineEvent {
    /// The fine arrived from the feed. The importing service is the event's actor.
    FineReceived {
        fine_id: FineId,
        #[serde(flatten)]
        details: FineDetails,
        received_at: DateTime<Utc>,
    },
}

impl DomainEvent for FineEvent {}

/// What a fine's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FineState {
    /// The fine as received, or `None` before.
    pub received: Option<FineDetails>,
    /// Where it is.
    pub status: FineStatus,
}

/// What can be asked of a fine.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum FineCommand {
    /// Record a fine from the feed. Decided against the fine that already holds the resolution
    /// number, if any, so that a repeated import is recognised.
    Receive(FineDetails),
}

/// What a fine decision needs from outside.
#[derive(Clone, Debug)]
pub struct FineContext {
    /// The fine decided: the holder of the resolution number, or a fresh id.
    pub fine_id: FineId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

/// The fine decider.
#[derive(Debug)]
pub struct Fine;

impl Decider for Fine {
    type State = FineState;
    type Command = FineCommand;
    type Event = FineEvent;
    type Context = FineContext;

    /// A new fine is received if its facts are possible; the same fine again records nothing
    /// (an idempotent re-import); the same resolution number with other facts is a conflict.
    fn decide(
        state: &FineState,
        command: &FineCommand,
        context: &FineContext,
    ) -> Result<Vec<FineEvent>, Rejection> {
        let FineCommand::Receive(details) = command;
        let fine_id = context.fine_id;
        if let Some(existing) = &state.received {
            if existing.resolution_number != details.resolution_number {
                return Err(Rejection::FineAlreadyReceived { fine_id });
            }
            if existing != details {
                return Err(Rejection::ResolutionNumberConflict {
                    resolution_number: details.resolution_number.to_string(),
                    fine_id,
                });
            }
            return Ok(Vec::new());
        }
        positive_amount("amount_kopecks", details.amount_kopecks.get())?;
        if details.occurred_at > context.now {
            return Err(FieldError::new("occurred_at", "must not be in the future").into());
        }
        // A resolution is issued on or after the day of the offence. The day is compared in UTC,
        // which is never later than the local day anywhere in Russia (UTC+2 to UTC+12), so this
        // never refuses a real resolution.
        if details.issued_on < details.occurred_at.date_naive() {
            return Err(
                FieldError::new("issued_on", "must not be before the day of the offence").into(),
            );
        }
        // "Today" in Kamchatka (UTC+12) may already be tomorrow in UTC.
        let latest_issue_day = context
            .now
            .date_naive()
            .checked_add_days(Days::new(1))
            .unwrap_or(NaiveDate::MAX);
        if details.issued_on > latest_issue_day {
            return Err(FieldError::new("issued_on", "must not be in the future").into());
        }
        Ok(vec![FineEvent::FineReceived {
            fine_id,
            details: details.clone(),
            received_at: context.now,
        }])
    }

    fn evolve(mut state: FineState, event: &FineEvent) -> FineState {
        match event {
            FineEvent::FineReceived { details, .. } => {
                state.received = Some(details.clone());
                state.status = FineStatus::Open;
            }
        }
        state
    }
}
