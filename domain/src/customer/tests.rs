//! Customer rules, one test per rule: given the customer's history, when support or the app asks
//! something, then these events or this rejection.

use super::*;
use crate::rejection::FieldError;
use crate::testing::*;
use insta::assert_yaml_snapshot;

fn blocked(reason: BlockReason, note: &str) -> CustomerEvent {
    CustomerEvent::CustomerBlocked {
        customer_id: IVAN,
        reason,
        note: note.to_owned(),
        blocked_at: at("2026-11-10T15:00:00Z"),
    }
}

fn rejected(reason: &str) -> CustomerEvent {
    CustomerEvent::CustomerVerificationRejected {
        customer_id: IVAN,
        reason: reason.to_owned(),
        rejected_at: at(VERIFIED_AT),
    }
}

fn approve() -> CustomerCommand {
    CustomerCommand::DecideVerification(VerificationDecision::Approved)
}

fn reject(reason: &str) -> CustomerCommand {
    CustomerCommand::DecideVerification(VerificationDecision::Rejected {
        reason: reason.to_owned(),
    })
}

fn ivan_now() -> CustomerContext {
    customer_context(IVAN, NOW)
}

// Registration.

#[test]
fn register_records_the_profile() {
    let scenario = Customer::given([])
        .when(CustomerCommand::Register(profile(IVAN)), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerRegistered { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn register_twice_is_rejected() {
    let scenario = Customer::given([registered(IVAN)])
        .when(CustomerCommand::Register(profile(IVAN)), ivan_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerAlreadyRegistered { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn register_with_birth_date_in_the_future_is_rejected() {
    let mut unborn = profile(IVAN);
    unborn.birth_date = day("2027-01-01");
    let scenario = Customer::given([])
        .when(CustomerCommand::Register(unborn), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "birth_date"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn register_a_profile_of_another_customer_is_rejected() {
    // The profile names Maria, but the command is for Ivan's stream: appending it would put
    // Maria's registration into Ivan's history.
    let scenario = Customer::given([])
        .when(CustomerCommand::Register(profile(MARIA)), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "customer_id"
    ));
    assert_yaml_snapshot!(scenario);
}

// Verification.

#[test]
fn approve_verifies_a_pending_customer() {
    let scenario = Customer::given([registered(IVAN)])
        .when(approve(), ivan_now())
        .then();
    assert_eq!(
        scenario.events(),
        [CustomerEvent::CustomerVerified {
            customer_id: IVAN,
            verified_at: at(NOW),
        }]
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_twice_is_rejected_as_unchanged() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(approve(), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::VerificationUnchanged { status, .. } if status == "verified"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_with_an_expired_licence_is_rejected() {
    let mut expired = profile(IVAN);
    expired.licence = licence_until("2026-11-24");
    let scenario = Customer::given([registered_with(expired)])
        .when(approve(), ivan_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::LicenceExpired {
            customer_id: IVAN,
            expired_on: day("2026-11-24"),
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_on_the_last_day_of_the_licence_is_allowed() {
    let mut expiring = profile(IVAN);
    expiring.licence = licence_until("2026-11-25");
    let scenario = Customer::given([registered_with(expiring)])
        .when(approve(), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerVerified { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reject_records_the_trimmed_reason() {
    let scenario = Customer::given([registered(IVAN)])
        .when(reject("  Licence photo is unreadable \n"), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerVerificationRejected { reason, .. }]
            if reason == "Licence photo is unreadable"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reject_with_a_blank_reason_is_rejected() {
    let scenario = Customer::given([registered(IVAN)])
        .when(reject(" \t "), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "reason"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reject_after_rejection_is_rejected_as_unchanged() {
    let scenario = Customer::given([registered(IVAN), rejected("Licence photo is unreadable")])
        .when(reject("Still unreadable"), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::VerificationUnchanged { status, .. } if status == "rejected"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_after_rejection_is_allowed() {
    // New documents arrived after a rejection; support may change its mind.
    let scenario = Customer::given([registered(IVAN), rejected("Licence photo is unreadable")])
        .when(approve(), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerVerified { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn reject_after_approval_revokes_the_verification() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(reject("Licence reported stolen"), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerVerificationRejected { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn verification_of_an_unregistered_customer_is_rejected() {
    let scenario = Customer::given([]).when(approve(), ivan_now()).then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotFound { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

// Blocks.

#[test]
fn block_puts_a_block_with_its_note() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(
            CustomerCommand::Block {
                reason: BlockReason::Debt,
                note: " Capture of trip 0301 declined ".to_owned(),
            },
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerBlocked { reason: BlockReason::Debt, note, .. }]
            if note == "Capture of trip 0301 declined"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn block_an_unregistered_customer_is_rejected() {
    let scenario = Customer::given([])
        .when(
            CustomerCommand::Block {
                reason: BlockReason::Fraud,
                note: String::new(),
            },
            ivan_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotFound { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn block_for_the_same_reason_twice_is_rejected_as_unchanged() {
    let scenario = Customer::given([registered(IVAN), blocked(BlockReason::Debt, "first")])
        .when(
            CustomerCommand::Block {
                reason: BlockReason::Debt,
                note: "second".to_owned(),
            },
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::BlockUnchanged { reason, .. } if reason == "debt"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn unblock_lifts_the_block() {
    let scenario = Customer::given([registered(IVAN), blocked(BlockReason::Support, "abusive")])
        .when(
            CustomerCommand::Unblock {
                reason: BlockReason::Support,
            },
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerUnblocked {
            reason: BlockReason::Support,
            ..
        }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn unblock_a_reason_that_is_not_active_is_rejected_as_unchanged() {
    let scenario = Customer::given([registered(IVAN), blocked(BlockReason::Fraud, "chargebacks")])
        .when(
            CustomerCommand::Unblock {
                reason: BlockReason::Debt,
            },
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::BlockUnchanged { reason, .. } if reason == "debt"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn lifting_one_block_leaves_the_other_reasons_active() {
    let scenario = Customer::given([
        registered(IVAN),
        blocked(BlockReason::Debt, "capture declined"),
        blocked(BlockReason::Fraud, "chargebacks"),
    ])
    .when(
        CustomerCommand::Unblock {
            reason: BlockReason::Debt,
        },
        ivan_now(),
    )
    .then();
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(after.blocks, BTreeSet::from([BlockReason::Fraud]));
    assert_yaml_snapshot!(scenario);
}
