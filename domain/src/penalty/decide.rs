//! A penalty's own rules: issued once, with a note and a positive amount.

use super::{PenaltyCommand, PenaltyContext, PenaltyEvent, PenaltyState};
use crate::account::positive_amount;
use crate::rejection::{FieldError, Rejection};

pub(super) fn decide(
    state: &PenaltyState,
    command: &PenaltyCommand,
    context: &PenaltyContext,
) -> Result<Vec<PenaltyEvent>, Rejection> {
    let penalty_id = context.penalty_id;
    match command {
        PenaltyCommand::Issue(facts) => {
            if state.issued.is_some() {
                return Err(Rejection::PenaltyAlreadyIssued { penalty_id });
            }
            if facts.penalty_id != penalty_id {
                return Err(FieldError::new(
                    "penalty_id",
                    "must be the id of the penalty being issued",
                )
                .into());
            }
            // The note is the evidence the customer is shown and a dispute is decided on.
            let note = facts.note.trim();
            if note.is_empty() {
                return Err(FieldError::new("note", "must say what support saw").into());
            }
            if note.chars().count() > 2_000 {
                return Err(FieldError::new("note", "must be at most 2000 characters").into());
            }
            positive_amount("amount_kopecks", facts.amount_kopecks.get())?;
            let mut facts = facts.clone();
            facts.note = note.to_owned();
            Ok(vec![PenaltyEvent::PenaltyIssued {
                facts,
                issued_at: context.now,
            }])
        }
    }
}
