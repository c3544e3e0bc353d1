//! Quote rules, one test per rule: given the quote's history, when a price is asked for, then the
//! quote with its multiplier and the observations behind it, or a rejection. Using a quote (to
//! start a trip or reserve) is tested with the rental rules.

use super::*;
use crate::money::Kopecks;
use crate::rejection::FieldError;
use crate::testing::*;
use insta::assert_yaml_snapshot;

fn issue(observed: DemandObservation) -> QuoteCommand {
    QuoteCommand::Issue {
        customer_id: IVAN,
        vehicle_id: KIA,
        position: red_square(),
        observed,
        standard: standard_terms(),
        policy: pricing_policy(),
    }
}

fn issued(events: &[QuoteEvent]) -> &QuoteDetails {
    match events {
        [QuoteEvent::QuoteIssued { details, .. }] => details,
        other => panic!("expected one QuoteIssued, got {other:?}"),
    }
}

#[test]
fn issue_multiplies_the_per_minute_rates_by_the_zones_demand_and_records_why() {
    // Four free cars, four other customers plus Ivan: 5 / 4 = 1.25×.
    let scenario = Quote::given([])
        .when(issue(observed(4, 4)), quote_context(QUOTE_1, NOW))
        .then();
    let quote = issued(scenario.events());
    assert_eq!(quote.multiplier_permille, 1250);
    assert_eq!(quote.observed, observed(4, 4));
    assert_eq!(
        quote.zone,
        PricingZone {
            row: 2787,
            col: 1254
        }
    );
    assert_eq!(
        quote.terms.tariff.driving_kopecks_per_minute,
        Kopecks(1_500)
    );
    assert_eq!(quote.terms.tariff.parking_kopecks_per_minute, Kopecks(375));
    assert_eq!(quote.terms.waiting.kopecks_per_minute, Kopecks(375));
    assert_eq!(quote.terms.tariff.kopecks_per_extra_km, Kopecks(1_500));
    assert_eq!(quote.base, standard_terms());
    assert_eq!(quote.expires_at, at("2026-11-25T10:05:00Z"));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn issue_in_a_zone_full_of_free_cars_is_bounded_below() {
    let scenario = Quote::given([])
        .when(issue(observed(12, 0)), quote_context(QUOTE_1, NOW))
        .then();
    let quote = issued(scenario.events());
    assert_eq!(quote.multiplier_permille, 800);
    assert_eq!(quote.terms.tariff.driving_kopecks_per_minute, Kopecks(960));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn issue_in_a_zone_with_no_free_car_left_is_bounded_above() {
    let scenario = Quote::given([])
        .when(issue(observed(1, 7)), quote_context(QUOTE_1, NOW))
        .then();
    let quote = issued(scenario.events());
    assert_eq!(quote.multiplier_permille, 2500);
    assert_eq!(
        quote.terms.tariff.driving_kopecks_per_minute,
        Kopecks(3_000)
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn issue_with_a_quote_id_used_before_is_rejected() {
    let scenario = Quote::given([quote_issued(QUOTE_1, IVAN, "2026-11-25T09:58:00Z")])
        .when(issue(observed(4, 4)), quote_context(QUOTE_1, NOW))
        .then();
    assert_eq!(
        scenario.rejection(),
        &Rejection::QuoteAlreadyIssued { quote_id: QUOTE_1 }
    );
    assert_yaml_snapshot!(scenario);
}

#[test]
fn issue_with_demand_observed_over_another_window_is_rejected() {
    let mut wrong = observed(4, 4);
    wrong.window_s = 60;
    let scenario = Quote::given([])
        .when(issue(wrong), quote_context(QUOTE_1, NOW))
        .then();
    assert!(matches!(
        scenario.rejection(),
        Rejection::InvalidField(FieldError { field, .. }) if field == "observed.window_s"
    ));
    assert_yaml_snapshot!(scenario);
}

#[test]
fn a_quote_is_usable_by_its_customer_for_its_car_until_it_expires() {
    let state = Quote::fold(&[quote_issued(QUOTE_1, IVAN, NOW)]);
    let just_before = at("2026-11-25T10:04:59Z");
    assert_eq!(
        state
            .terms_for(QUOTE_1, IVAN, KIA, just_before)
            .map(|t| t.tariff.driving_kopecks_per_minute),
        Ok(Kopecks(1_500))
    );
    assert_eq!(
        state.terms_for(QUOTE_1, IVAN, KIA, at("2026-11-25T10:05:00Z")),
        Err(Rejection::QuoteExpired {
            quote_id: QUOTE_1,
            expired_at: at("2026-11-25T10:05:00Z"),
        })
    );
    assert_eq!(
        state.terms_for(QUOTE_1, MARIA, KIA, just_before),
        Err(Rejection::QuoteOfAnotherCustomer { quote_id: QUOTE_1 })
    );
    assert_eq!(
        state.terms_for(QUOTE_1, IVAN, SKODA, just_before),
        Err(Rejection::QuoteForAnotherVehicle {
            quote_id: QUOTE_1,
            quoted_vehicle_id: KIA,
            vehicle_id: SKODA,
        })
    );
    assert_eq!(
        state.terms_for(QUOTE_2, IVAN, KIA, just_before),
        Err(Rejection::QuoteNotFound { quote_id: QUOTE_2 })
    );
}
