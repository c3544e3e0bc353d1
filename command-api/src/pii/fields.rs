//! Which fields of which events are personal data, and what they read as once erased.
//!
//! A placeholder keeps the event's shape, so the rest of it still decodes and folds (a
//! customer's company, blocks and notices outlive their name); readers tell an erased event by
//! [`ERASED_MARK`] in its data.

use serde_json::Value;

pub use event_store::codec::ERASED_MARK;

/// What an erased text field reads as.
pub const ERASED_TEXT: &str = "erased";

/// What an erased date reads as (no one is born, and no document issued, on it).
pub const ERASED_DATE: &str = "0001-01-01";

/// What kind of value a personal field holds, for its placeholder.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A date, `YYYY-MM-DD`.
    Date,
}

impl Kind {
    /// The placeholder an erased field of this kind reads as.
    pub fn placeholder(self) -> Value {
        match self {
            Kind::Text => Value::from(ERASED_TEXT),
            Kind::Date => Value::from(ERASED_DATE),
        }
    }
}

const REGISTERED: &[(&str, Kind)] = &[
    ("/name", Kind::Text),
    ("/phone", Kind::Text),
    ("/email", Kind::Text),
    ("/birth_date", Kind::Date),
    ("/licence/number", Kind::Text),
];

const DOCUMENTS: &[(&str, Kind)] = &[
    ("/passport/series", Kind::Text),
    ("/passport/number", Kind::Text),
    ("/passport/issued_on", Kind::Date),
    ("/passport/issued_by", Kind::Text),
    ("/licence/number", Kind::Text),
    ("/birth_date", Kind::Date),
];

/// The personal fields (JSON pointers into `data`) of an event of a customer stream. KYC
/// documents live only in the customer's stream (see `domain::customer::documents`), so these
/// two event types are all there is.
pub fn personal_fields(event_type: &str) -> &'static [(&'static str, Kind)] {
    match event_type {
        "CustomerRegistered" => REGISTERED,
        "KycDocumentsSubmitted" => DOCUMENTS,
        _ => &[],
    }
}

/// Claims whose value is a person's identifier: kept as keyed hashes, never in plaintext.
pub const PERSONAL_CLAIM_PREFIXES: &[&str] = &["customer-phone:", "customer-email:"];
