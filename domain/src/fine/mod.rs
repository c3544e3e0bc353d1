//! Traffic fines: a camera or an officer fines the *car* (plate, time, place, amount, resolution
//! number); the fine reaches the operator days or weeks later through the fine feed, and is
//! re-billed to whoever drove the car then, plus an admin fee.
//!
//! This module records a fine as it arrives (`fine-<id>`, `FineReceived`) and keeps it `open`.
//! The fine saga then asks for it to be matched ([`match_fine`]): to the trip that had the car at
//! the time of the offence (`FineMatched`, appended together with the fine and its admin fee on
//! the trip payer's account and a notice to the driver), or, when no trip had it, to the fleet
//! for review (`FineAssignedToFleet`). Either way the fine leaves `open` once and for all.
//!
//! A fine is identified in the world by its resolution number: the feed may send one twice, so
//! the import deduplicates by it. The number is held as an exclusive claim
//! (`fine-resolution:<number>`, see [`crate::claims`]) taken in the append that records the fine,
//! so two concurrent imports of one resolution cannot both land; the loser decides again against
//! the winner's fine, which makes its import an idempotent no-op when the details agree and a
//! conflict when they do not.

#[cfg(test)]
mod tests;

use crate::account::{
    AccountContext, AccountEvent, AccountId, AccountState, ChargeId, ChargeReason, ChargeSource,
    NewCharge, charges_for, payer_of_trip, positive_amount,
};
use crate::customer::{CustomerEvent, CustomerState, Notice, notify};
use crate::decider::{Decider, DomainEvent};
use crate::geo::GeoPoint;
use crate::ids::{CustomerId, FineId, TripId};
use crate::money::Kopecks;
use crate::rejection::{FieldError, Rejection};
use crate::trip::{TripPhase, TripState};
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
    /// Matched to the trip that had the car, and charged to its payer.
    Matched,
    /// No trip had the car then: the fleet carries it until someone reviews it.
    AssignedToFleet,
}

impl FineStatus {
    /// The status as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Matched => "matched",
            Self::AssignedToFleet => "assigned_to_fleet",
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
    /// The fine was matched to the trip that had the car at the time of the offence; the fine
    /// and its admin fee were charged to the trip's payer in the same append.
    FineMatched {
        fine_id: FineId,
        trip_id: TripId,
        /// The driver.
        customer_id: CustomerId,
        /// Who was charged: the trip's payer.
        account_id: AccountId,
        /// The charge of the fine itself.
        fine_charge_id: ChargeId,
        /// The charge of the admin fee.
        fee_charge_id: ChargeId,
        matched_at: DateTime<Utc>,
    },
    /// No trip had the car at the time of the offence: the fleet carries the fine until a person
    /// reviews it (a car moved by staff, a plate misread by the camera).
    FineAssignedToFleet {
        fine_id: FineId,
        /// Why, for the reviewer.
        reason: String,
        assigned_at: DateTime<Utc>,
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
    /// Record that the fine is the driver's of a trip (see [`match_fine`], which also charges).
    Match {
        trip_id: TripId,
        customer_id: CustomerId,
        account_id: AccountId,
        fine_charge_id: ChargeId,
        fee_charge_id: ChargeId,
    },
    /// Record that no trip had the car, so the fleet carries the fine for review.
    AssignToFleet {
        /// Why, for the reviewer.
        reason: String,
    },
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
        let fine_id = context.fine_id;
        let details = match command {
            FineCommand::Receive(details) => details,
            FineCommand::Match {
                trip_id,
                customer_id,
                account_id,
                fine_charge_id,
                fee_charge_id,
            } => {
                open(state, fine_id)?;
                return Ok(vec![FineEvent::FineMatched {
                    fine_id,
                    trip_id: *trip_id,
                    customer_id: *customer_id,
                    account_id: *account_id,
                    fine_charge_id: *fine_charge_id,
                    fee_charge_id: *fee_charge_id,
                    matched_at: context.now,
                }]);
            }
            FineCommand::AssignToFleet { reason } => {
                open(state, fine_id)?;
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(FieldError::new("reason", "must say why").into());
                }
                return Ok(vec![FineEvent::FineAssignedToFleet {
                    fine_id,
                    reason: reason.to_owned(),
                    assigned_at: context.now,
                }]);
            }
        };
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
            FineEvent::FineMatched { .. } => state.status = FineStatus::Matched,
            FineEvent::FineAssignedToFleet { .. } => state.status = FineStatus::AssignedToFleet,
        }
        state
    }
}

/// A fine may be matched or assigned only once it is received and while it is open.
fn open(state: &FineState, fine_id: FineId) -> Result<&FineDetails, Rejection> {
    let details = state
        .received
        .as_ref()
        .ok_or(Rejection::FineNotFound { fine_id })?;
    if state.status != FineStatus::Open {
        return Err(Rejection::FineNotOpen {
            fine_id,
            status: state.status.as_str().to_owned(),
        });
    }
    Ok(details)
}

/// Everything matching a fine to a trip looks at. The trip is the one a read model says had the
/// car at the time of the offence; the decision checks that against the trip's own history.
#[derive(Clone, Debug)]
pub struct MatchFine<'a> {
    /// The fine and its state.
    pub fine_id: FineId,
    pub fine: &'a FineState,
    /// The trip and its state.
    pub trip_id: TripId,
    pub trip: &'a TripState,
    /// The trip's payer (see [`payer_of_trip`]) and the account's state.
    pub account_id: AccountId,
    pub account: &'a AccountState,
    /// The driver's state, for the notice.
    pub customer: &'a CustomerState,
    /// Fresh ids for the two charges.
    pub fine_charge_id: ChargeId,
    pub fee_charge_id: ChargeId,
    /// The admin fee (`fixtures/data/fees.json`).
    pub admin_fee_kopecks: Kopecks,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

/// What matching a fine appends, in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FineMatchDecision {
    /// Events for the fine's stream.
    pub fine: Vec<FineEvent>,
    /// The account charged.
    pub account_id: AccountId,
    /// The fine and the admin fee, for the account's stream.
    pub account: Vec<AccountEvent>,
    /// The driver.
    pub customer_id: CustomerId,
    /// The notice, for the driver's stream.
    pub customer: Vec<CustomerEvent>,
}

/// Matches an open fine to the trip that had the car when the offence happened: the trip must
/// have started by then and not ended before; the fine and its admin fee are charged to the
/// trip's payer (the company for an employee's trip), and the driver is notified.
pub fn match_fine(input: MatchFine<'_>) -> Result<FineMatchDecision, Rejection> {
    let MatchFine {
        fine_id,
        fine,
        trip_id,
        trip,
        account_id,
        account,
        customer,
        fine_charge_id,
        fee_charge_id,
        admin_fee_kopecks,
        now,
    } = input;
    let details = open(fine, fine_id)?;
    let Some(start) = trip.started.as_ref().filter(|s| s.trip_id == trip_id) else {
        return Err(Rejection::TripNotFound { trip_id });
    };
    if payer_of_trip(trip) != Some(account_id)
        || account
            .account_id
            .is_some_and(|loaded| loaded != account_id)
    {
        return Err(
            FieldError::new("trip_id", "the account charged must be the trip's payer").into(),
        );
    }
    // The read model found the trip; the trip's own history must not say it had already ended.
    let ended_before =
        matches!(trip.phase, TripPhase::Ended { ended_at } if ended_at < details.occurred_at);
    if ended_before {
        return Err(FieldError::new(
            "trip_id",
            "the trip did not have the car when the offence happened",
        )
        .into());
    }
    let customer_id = start.customer_id;
    let fine_events = Fine::decide(
        fine,
        &FineCommand::Match {
            trip_id,
            customer_id,
            account_id,
            fine_charge_id,
            fee_charge_id,
        },
        &FineContext { fine_id, now },
    )?;
    let charges = charges_for(
        account,
        &AccountContext { account_id, now },
        [
            NewCharge {
                charge_id: fine_charge_id,
                reason: ChargeReason::Fine,
                source: ChargeSource::Fine { fine_id },
                amount_kopecks: details.amount_kopecks,
                customer_id,
            },
            NewCharge {
                charge_id: fee_charge_id,
                reason: ChargeReason::FineAdminFee,
                source: ChargeSource::Fine { fine_id },
                amount_kopecks: admin_fee_kopecks,
                customer_id,
            },
        ],
    )?;
    let notice = notify(
        customer,
        customer_id,
        Notice::FineCharged {
            fine_id,
            trip_id,
            resolution_number: details.resolution_number.to_string(),
            occurred_at: details.occurred_at,
            amount_kopecks: details.amount_kopecks,
            admin_fee_kopecks,
            account_id,
        },
        now,
    )?;
    Ok(FineMatchDecision {
        fine: fine_events,
        account_id,
        account: charges,
        customer_id,
        customer: notice,
    })
}
