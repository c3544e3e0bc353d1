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
                note: "Checked with the customer".to_owned(),
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
                note: "Checked with the customer".to_owned(),
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
            note: "Debt paid".to_owned(),
        },
        ivan_now(),
    )
    .then();
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(after.blocks, BTreeSet::from([BlockReason::Fraud]));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn block_with_a_note_over_a_thousand_characters_is_rejected() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(
            CustomerCommand::Block {
                reason: BlockReason::Support,
                note: "x".repeat(1001),
            },
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "note"
    ));
    assert_yaml_snapshot!(scenario, {".when.note" => "[1001 characters]"});
}

// KYC: age and driving experience on approval. The fixture's policy: 21 years, 2 years.

fn registered_born(birth_date: &str, licence_issued_on: &str) -> CustomerEvent {
    let mut young = profile(IVAN);
    young.birth_date = day(birth_date);
    young.licence = crate::value::Licence::parse(
        "licence",
        "77 12 345678",
        day(licence_issued_on),
        day("2034-01-01"),
    )
    .unwrap();
    registered_with(young)
}

#[test]
fn approve_a_customer_younger_than_the_minimum_age_is_rejected() {
    // 25 November 2026: born 26 November 2005, Ivan turns 21 tomorrow.
    let scenario = Customer::given([registered_born("2005-11-26", "2023-12-01")])
        .when(approve(), ivan_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerTooYoung {
            customer_id: IVAN,
            age_years: 20,
            min_age_years: 21,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_on_the_day_the_customer_reaches_the_minimum_age_is_allowed() {
    let scenario = Customer::given([registered_born("2005-11-25", "2023-12-01")])
        .when(approve(), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerVerified { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_with_less_driving_experience_than_the_minimum_is_rejected() {
    // The licence was issued on 26 November 2024: two years of driving tomorrow.
    let scenario = Customer::given([registered_born("1990-05-17", "2024-11-26")])
        .when(approve(), ivan_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::DrivingExperienceTooShort {
            customer_id: IVAN,
            experience_years: 1,
            min_experience_years: 2,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_on_the_day_driving_experience_reaches_the_minimum_is_allowed() {
    let scenario = Customer::given([registered_born("1990-05-17", "2024-11-25")])
        .when(approve(), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerVerified { .. }]
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_applies_the_minimums_of_the_policy_in_the_context() {
    // The same 22-year-old with 3 years of driving passes Moscow's rules but not stricter ones:
    // the numbers come from the context (the fixture), not from the code.
    let history = [registered_born("2004-03-01", "2023-06-01")];
    let strict = CustomerContext {
        kyc: KycPolicy {
            min_age_years: 23,
            min_driving_experience_years: 2,
        },
        ..ivan_now()
    };
    let refused = Customer::given(history.clone())
        .when(approve(), strict)
        .then();
    assert!(matches!(
        refused.rejection(),
        Rejection::CustomerTooYoung {
            age_years: 22,
            min_age_years: 23,
            ..
        }
    ));
    let accepted = Customer::given(history).when(approve(), ivan_now()).then();
    assert!(matches!(
        accepted.events(),
        [CustomerEvent::CustomerVerified { .. }]
    ));
    assert_yaml_snapshot!(refused);
}

// KYC documents.

fn documents() -> KycDocuments {
    KycDocuments {
        passport: Passport::parse(
            "passport",
            "4510",
            "123456",
            day("2010-06-01"),
            "ОВД Тверского района г. Москвы",
        )
        .unwrap(),
        licence: crate::value::Licence::parse(
            "licence",
            "99 01 654321",
            day("2016-03-10"),
            day("2036-03-10"),
        )
        .unwrap(),
        licence_categories: LicenceCategories::parse(
            "licence.categories",
            &["B".to_owned(), "B1".to_owned()],
        )
        .unwrap(),
        birth_date: day("1990-05-17"),
    }
}

#[test]
fn submit_documents_records_them_and_puts_verification_back_to_pending() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(CustomerCommand::SubmitDocuments(documents()), ivan_now())
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::KycDocumentsSubmitted { .. }]
    ));
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(after.verification, VerificationStatus::Pending);
    let profile = after.profile.as_ref().unwrap();
    assert_eq!(
        profile.licence,
        documents().licence,
        "the new licence replaces the old"
    );
    assert_eq!(after.documents, Some(documents()));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn approve_checks_the_licence_of_the_documents_submitted_last() {
    // Registered with a fine licence, then submitted one issued a year ago.
    let mut recent = documents();
    recent.licence = crate::value::Licence::parse(
        "licence",
        "99 01 654321",
        day("2025-10-01"),
        day("2035-10-01"),
    )
    .unwrap();
    let submitted = CustomerEvent::KycDocumentsSubmitted {
        customer_id: IVAN,
        documents: recent,
        submitted_at: at("2026-11-20T10:00:00Z"),
    };
    let scenario = Customer::given([registered(IVAN), submitted])
        .when(approve(), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::DrivingExperienceTooShort {
            experience_years: 1,
            ..
        }
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn submit_documents_of_an_unregistered_customer_is_rejected() {
    let scenario = Customer::given([])
        .when(CustomerCommand::SubmitDocuments(documents()), ivan_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotFound { customer_id: IVAN }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn submit_a_licence_without_category_b_is_rejected() {
    let mut trucks_only = documents();
    trucks_only.licence_categories =
        LicenceCategories::parse("licence.categories", &["C".to_owned(), "CE".to_owned()]).unwrap();
    let scenario = Customer::given([registered(IVAN)])
        .when(CustomerCommand::SubmitDocuments(trucks_only), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "licence.categories"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn submit_a_licence_issued_in_the_future_is_rejected() {
    let mut future = documents();
    future.licence = crate::value::Licence::parse(
        "licence",
        "99 01 654321",
        day("2026-11-26"),
        day("2036-11-26"),
    )
    .unwrap();
    let scenario = Customer::given([registered(IVAN)])
        .when(CustomerCommand::SubmitDocuments(future), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "licence.issued_on"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn submit_a_passport_issued_before_its_holder_was_born_is_rejected() {
    let mut impossible = documents();
    impossible.passport.issued_on = day("1989-01-01");
    let scenario = Customer::given([registered(IVAN)])
        .when(CustomerCommand::SubmitDocuments(impossible), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "passport.issued_on"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn submit_a_birth_date_in_the_future_is_rejected() {
    let mut unborn = documents();
    unborn.birth_date = day("2026-12-01");
    let scenario = Customer::given([registered(IVAN)])
        .when(CustomerCommand::SubmitDocuments(unborn), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "birth_date"
    ));
    assert_yaml_snapshot!(scenario);
}

// Companies, the customer's side.

fn joined(company_id: CompanyId) -> CustomerEvent {
    CustomerEvent::CustomerJoinedCompany {
        customer_id: IVAN,
        company_id,
        joined_at: at("2026-11-15T09:00:00Z"),
    }
}

#[test]
fn join_a_company_makes_it_the_customers_company() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(
            CustomerCommand::JoinCompany {
                company_id: ROMASHKA,
            },
            ivan_now(),
        )
        .then();
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(after.company_id, Some(ROMASHKA));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn join_a_second_company_is_rejected() {
    let scenario = Customer::given([registered(IVAN), joined(LUTIK)])
        .when(
            CustomerCommand::JoinCompany {
                company_id: ROMASHKA,
            },
            ivan_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerInAnotherCompany {
            customer_id: IVAN,
            company_id: LUTIK,
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn join_the_same_company_twice_is_rejected() {
    let scenario = Customer::given([registered(IVAN), joined(ROMASHKA)])
        .when(
            CustomerCommand::JoinCompany {
                company_id: ROMASHKA,
            },
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::CustomerAlreadyEmployee { .. }
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn join_a_company_as_an_unregistered_customer_is_rejected() {
    let scenario = Customer::given([])
        .when(
            CustomerCommand::JoinCompany {
                company_id: ROMASHKA,
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
fn leave_the_company_frees_the_customer_to_join_another() {
    let scenario = Customer::given([registered(IVAN), joined(ROMASHKA)])
        .when(
            CustomerCommand::LeaveCompany {
                company_id: ROMASHKA,
            },
            ivan_now(),
        )
        .then();
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(after.company_id, None);
    assert_yaml_snapshot!(scenario);
}

#[test]
fn leave_a_company_the_customer_is_not_in_is_rejected() {
    let scenario = Customer::given([registered(IVAN), joined(LUTIK)])
        .when(
            CustomerCommand::LeaveCompany {
                company_id: ROMASHKA,
            },
            ivan_now(),
        )
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::CustomerNotEmployee {
            customer_id: IVAN,
            company_id: ROMASHKA,
        }
    );
    assert_yaml_snapshot!(scenario);
}

// The KYC provider's checks and manual review.

const SUBMISSION: &str =
    "00000000-0000-0000-0000-000000000101:00000000-0000-0000-0000-0000000005b1";

fn submitted() -> CustomerEvent {
    CustomerEvent::KycDocumentsSubmitted {
        customer_id: IVAN,
        documents: documents(),
        submitted_at: at("2026-11-24T10:00:00Z"),
    }
}

fn record_check(check_id: &str, outcome: KycOutcome, reason: Option<&str>) -> CustomerCommand {
    CustomerCommand::RecordKycCheck {
        check_id: check_id.to_owned(),
        reference: SUBMISSION.to_owned(),
        outcome,
        reason: reason.map(str::to_owned),
    }
}

fn check_completed(check_id: &str) -> CustomerEvent {
    CustomerEvent::KycCheckCompleted {
        customer_id: IVAN,
        check_id: check_id.to_owned(),
        reference: SUBMISSION.to_owned(),
        outcome: KycOutcome::Verified,
        reason: None,
        completed_at: at("2026-11-24T10:05:00Z"),
    }
}

fn manual_review(reason: &str) -> CustomerCommand {
    CustomerCommand::RequestManualReview {
        reason: reason.to_owned(),
    }
}

#[test]
fn a_providers_result_is_recorded_without_deciding_anything() {
    let scenario = Customer::given([registered(IVAN), submitted()])
        .when(
            record_check("chk_1", KycOutcome::Verified, None),
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::KycCheckCompleted {
            outcome: KycOutcome::Verified,
            ..
        }]
    ));
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(
        after.verification,
        VerificationStatus::Pending,
        "the saga decides, not the callback"
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn the_same_check_recorded_again_records_nothing() {
    let scenario = Customer::given([registered(IVAN), submitted(), check_completed("chk_1")])
        .when(
            record_check("chk_1", KycOutcome::Verified, None),
            ivan_now(),
        )
        .then();
    assert!(scenario.events().is_empty());
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_rejection_by_the_provider_without_a_reason_is_refused() {
    let scenario = Customer::given([registered(IVAN), submitted()])
        .when(
            record_check("chk_1", KycOutcome::Rejected, Some("  ")),
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "reason"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_check_for_an_unregistered_customer_is_refused() {
    let scenario = Customer::given([])
        .when(
            record_check("chk_1", KycOutcome::Verified, None),
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
fn manual_review_puts_pending_documents_in_front_of_support_until_a_decision() {
    let scenario = Customer::given([registered(IVAN), submitted()])
        .when(
            manual_review("the KYC provider did not answer within 24 hours"),
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::KycManualReviewRequested { .. }]
    ));
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(
        after.manual_review.as_deref(),
        Some("the KYC provider did not answer within 24 hours")
    );
    let decided = Customer::evolve(after, &verified(IVAN));
    assert_eq!(decided.manual_review, None, "a decision ends the review");
    assert_yaml_snapshot!(scenario);
}

#[test]
fn manual_review_of_a_decided_customer_is_rejected_as_unchanged() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(manual_review("photo unclear"), ivan_now())
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::VerificationUnchanged {
            customer_id: IVAN,
            status: "verified".to_owned()
        }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn manual_review_without_a_reason_is_rejected() {
    let scenario = Customer::given([registered(IVAN), submitted()])
        .when(manual_review(" "), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "reason"
    ));
    assert_yaml_snapshot!(scenario);
}

// Erasure (152-FZ / GDPR).

fn erase(reason: &str) -> CustomerCommand {
    CustomerCommand::Erase {
        reason: reason.to_owned(),
        by: "support:olga".to_owned(),
    }
}

#[test]
fn erase_records_who_and_why_and_no_personal_data() {
    let scenario = Customer::given(verified_customer(IVAN))
        .when(
            erase("the customer asked, letter of 2026-11-20"),
            ivan_now(),
        )
        .then();
    assert!(matches!(
        scenario.events(),
        [CustomerEvent::CustomerErased { reason, erased_by, .. }]
            if reason == "the customer asked, letter of 2026-11-20" && erased_by == "support:olga"
    ));
    let after = Customer::fold(scenario.given.iter().chain(scenario.events()));
    assert_eq!(after.erased_at, Some(at(NOW)));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn erase_without_a_reason_is_rejected() {
    let scenario = Customer::given([registered(IVAN)])
        .when(erase("  "), ivan_now())
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "reason"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn an_erased_customer_cannot_be_erased_again_nor_submit_documents() {
    let erased = CustomerEvent::CustomerErased {
        customer_id: IVAN,
        reason: "the customer asked".to_owned(),
        erased_by: "support:olga".to_owned(),
        erased_at: at(VERIFIED_AT),
    };
    let again = Customer::given([registered(IVAN), erased.clone()])
        .when(erase("again"), ivan_now())
        .then();
    assert_eq!(
        again.rejection(),
        &Rejection::CustomerErased { customer_id: IVAN }
    );
    let documents = Customer::given([registered(IVAN), erased])
        .when(CustomerCommand::SubmitDocuments(documents()), ivan_now())
        .then();
    assert_eq!(
        documents.rejection(),
        &Rejection::CustomerErased { customer_id: IVAN }
    );
    assert_yaml_snapshot!(again);
}
