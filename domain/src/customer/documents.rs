//! KYC: the documents a customer submits (passport, driving licence with its categories, birth
//! date) and the age and driving-experience rules support's approval checks them against.
//!
//! The documents are personal data: they are recorded only in the customer's own stream (where
//! a later issue encrypts them per customer), never copied into other streams or read models.

use crate::ids::CustomerId;
use crate::rejection::{FieldError, Rejection};
use crate::value::Licence;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How old a customer and how long their licence must be to be approved. Data, not code: the
/// values come from `fixtures/data/kyc.json` and reach the domain in [`super::CustomerContext`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KycPolicy {
    /// Minimum age in full years on the day of approval.
    pub min_age_years: u32,
    /// Minimum driving experience in full years, counted from the licence's issue date.
    pub min_driving_experience_years: u32,
}

impl KycPolicy {
    /// Checks the age and driving-experience rules for someone born on `birth_date` holding
    /// `licence`, on `today`.
    pub fn check(
        &self,
        customer_id: CustomerId,
        birth_date: NaiveDate,
        licence: &Licence,
        today: NaiveDate,
    ) -> Result<(), Rejection> {
        let age_years = full_years(birth_date, today);
        if age_years < self.min_age_years {
            return Err(Rejection::CustomerTooYoung {
                customer_id,
                age_years,
                min_age_years: self.min_age_years,
            });
        }
        let experience_years = full_years(licence.issued_on, today);
        if experience_years < self.min_driving_experience_years {
            return Err(Rejection::DrivingExperienceTooShort {
                customer_id,
                experience_years,
                min_experience_years: self.min_driving_experience_years,
            });
        }
        Ok(())
    }
}

/// Whole years from `since` to `today` (0 if `since` is in the future). Someone born on
/// 29 February turns a year older on 1 March in common years.
pub fn full_years(since: NaiveDate, today: NaiveDate) -> u32 {
    today.years_since(since).unwrap_or(0)
}

/// A Russian internal passport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passport {
    /// Four digits (`45 08` is read as `4508`).
    pub series: String,
    /// Six digits.
    pub number: String,
    /// The day it was issued.
    pub issued_on: NaiveDate,
    /// The issuing authority as printed: 1 to 300 characters.
    pub issued_by: String,
}

/// The digits of `raw` (spaces dropped) if it is exactly `count` digits.
fn digits(raw: &str, count: usize) -> Option<String> {
    let kept: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    (kept.len() == count && kept.chars().all(|c| c.is_ascii_digit())).then_some(kept)
}

impl Passport {
    /// Parses a passport; `field` is the path of the passport object in the request.
    pub fn parse(
        field: &str,
        series: &str,
        number: &str,
        issued_on: NaiveDate,
        issued_by: &str,
    ) -> Result<Self, FieldError> {
        let series = digits(series, 4)
            .ok_or_else(|| FieldError::new(format!("{field}.series"), "must be 4 digits"))?;
        let number = digits(number, 6)
            .ok_or_else(|| FieldError::new(format!("{field}.number"), "must be 6 digits"))?;
        let issued_by = issued_by.trim();
        if issued_by.is_empty()
            || issued_by.chars().count() > 300
            || issued_by.chars().any(char::is_control)
        {
            return Err(FieldError::new(
                format!("{field}.issued_by"),
                "must be 1 to 300 printable characters",
            ));
        }
        Ok(Self {
            series,
            number,
            issued_on,
            issued_by: issued_by.to_owned(),
        })
    }
}

/// The vehicle categories of a Russian driving licence (Federal Law 196-FZ, article 25).
const KNOWN_CATEGORIES: [&str; 16] = [
    "A", "A1", "B", "B1", "BE", "C", "C1", "CE", "C1E", "D", "D1", "DE", "D1E", "M", "TM", "TB",
];

/// The categories a licence opens, upper-cased, each one of the known categories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LicenceCategories(BTreeSet<String>);

impl LicenceCategories {
    /// Parses a list of categories such as `["B", "b1"]`; unknown or no categories are refused.
    /// Latin letters only: the Cyrillic look-alikes on the plastic card are typed as Latin.
    pub fn parse(field: &str, raw: &[String]) -> Result<Self, FieldError> {
        let mut categories = BTreeSet::new();
        for (index, category) in raw.iter().enumerate() {
            let category = category.trim().to_uppercase();
            if !KNOWN_CATEGORIES.contains(&category.as_str()) {
                return Err(FieldError::new(
                    format!("{field}[{index}]"),
                    format!("must be one of {}", KNOWN_CATEGORIES.join(", ")),
                ));
            }
            categories.insert(category);
        }
        if categories.is_empty() {
            return Err(FieldError::new(field, "must list at least one category"));
        }
        Ok(Self(categories))
    }

    /// Whether the licence allows driving a car (category B).
    pub fn includes_cars(&self) -> bool {
        self.0.contains("B")
    }

    /// The categories, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Everything a customer submits for verification. Replaces the birth date and licence given at
/// registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KycDocuments {
    /// The passport.
    pub passport: Passport,
    /// The driving licence; `issued_on` is when the customer's driving experience began.
    pub licence: Licence,
    /// The categories the licence opens; must include B.
    pub licence_categories: LicenceCategories,
    /// Date of birth, as in the passport.
    pub birth_date: NaiveDate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn full_years_count_whole_years_only() {
        assert_eq!(full_years(day("2005-11-25"), day("2026-11-25")), 21);
        assert_eq!(full_years(day("2005-11-26"), day("2026-11-25")), 20);
        assert_eq!(full_years(day("2004-02-29"), day("2025-02-28")), 20);
        assert_eq!(full_years(day("2004-02-29"), day("2025-03-01")), 21);
        assert_eq!(full_years(day("2030-01-01"), day("2026-11-25")), 0);
    }

    #[test]
    fn passport_needs_four_and_six_digits_and_an_authority() {
        let ok = Passport::parse(
            "passport",
            "45 08",
            "123 456",
            day("2010-01-01"),
            " ОВД Тверского района ",
        )
        .unwrap();
        assert_eq!((ok.series.as_str(), ok.number.as_str()), ("4508", "123456"));
        assert_eq!(ok.issued_by, "ОВД Тверского района");
        let err = Passport::parse("passport", "450", "123456", day("2010-01-01"), "x");
        assert_eq!(err.unwrap_err().field, "passport.series");
        let err = Passport::parse("passport", "4508", "12345A", day("2010-01-01"), "x");
        assert_eq!(err.unwrap_err().field, "passport.number");
        let err = Passport::parse("passport", "4508", "123456", day("2010-01-01"), "  ");
        assert_eq!(err.unwrap_err().field, "passport.issued_by");
    }

    #[test]
    fn categories_are_known_upper_cased_and_deduplicated() {
        let raw = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let parsed = LicenceCategories::parse("licence.categories", &raw(&["b", "B", "c1"]));
        let parsed = parsed.unwrap();
        assert_eq!(parsed.iter().collect::<Vec<_>>(), ["B", "C1"]);
        assert!(parsed.includes_cars());
        let err = LicenceCategories::parse("licence.categories", &raw(&["B", "Z"])).unwrap_err();
        assert_eq!(err.field, "licence.categories[1]");
        let err = LicenceCategories::parse("licence.categories", &[]).unwrap_err();
        assert_eq!(err.field, "licence.categories");
        let trucks = LicenceCategories::parse("licence.categories", &raw(&["C"])).unwrap();
        assert!(!trucks.includes_cars());
    }
}
