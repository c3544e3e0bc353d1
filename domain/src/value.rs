//! Value objects parsed at the edge: once a request has become one of these, it is valid, so the
//! deciders never re-check formats ("parse, don't validate").

use crate::rejection::FieldError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_value!(
    /// A person's full name as they wrote it: 1 to 200 characters, not blank, no control characters.
    PersonName
);
string_value!(
    /// A phone number in E.164 form, `+` and 8 to 15 digits (`+79161234567`).
    Phone
);
string_value!(
    /// An e-mail address, lower-cased: one `@`, a non-empty local part, a dotted domain.
    Email
);
string_value!(
    /// A registration plate, upper-cased, without spaces: 5 to 12 letters (Latin or Cyrillic) and digits.
    Plate
);
string_value!(
    /// A vehicle identification number: 17 characters, digits and Latin capitals except I, O, Q.
    Vin
);
string_value!(
    /// A car model as marketed (`Kia Rio`): 1 to 100 characters, not blank.
    ModelName
);
string_value!(
    /// A driving licence number: 5 to 20 letters and digits, spaces removed, upper-cased.
    LicenceNumber
);

fn no_control_chars(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

impl PersonName {
    /// Parses a name, trimming surrounding whitespace.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if trimmed.chars().count() > 200 {
            return Err(FieldError::new(field, "must be at most 200 characters"));
        }
        if !no_control_chars(trimmed) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl Phone {
    /// Parses a phone number; spaces, dashes and brackets are dropped, a leading `8` of a Russian
    /// number is read as `+7`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let kept: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = if let Some(rest) = kept.strip_prefix('+') {
            rest.to_owned()
        } else if kept.len() == 11 && kept.starts_with('8') {
            format!("7{}", &kept[1..])
        } else {
            return Err(FieldError::new(
                field,
                "must be an international number starting with + (for example +79161234567)",
            ));
        };
        if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                "must be + followed by 8 to 15 digits",
            ));
        }
        Ok(Self(format!("+{digits}")))
    }
}

impl Email {
    /// Parses an e-mail address. Deliberately simple: the mailbox is proven by a message sent to
    /// it, not by a regular expression.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_lowercase();
        let invalid = || FieldError::new(field, "must be an e-mail address like name@example.ru");
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(invalid());
        }
        Ok(Self(value))
    }
}

impl Plate {
    /// Parses a registration plate such as `А123ВС777` or `a 123 bc 77`. Russian plates use
    /// only the twelve Cyrillic letters that look like Latin ones, and feeds and people type
    /// either alphabet, so each Latin look-alike becomes its Cyrillic letter: `A123BC777` and
    /// `А123ВС777` are one plate, for uniqueness and for matching fines to cars.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .map(Self::cyrillic_look_alike)
            .collect();
        let len = value.chars().count();
        if !(5..=12).contains(&len) || !value.chars().all(char::is_alphanumeric) {
            return Err(FieldError::new(
                field,
                "must be 5 to 12 letters and digits (for example А123ВС777)",
            ));
        }
        Ok(Self(value))
    }

    /// The Cyrillic letter a Latin capital stands for on a Russian plate, or the character as is.
    fn cyrillic_look_alike(c: char) -> char {
        match c {
            'A' => 'А',
            'B' => 'В',
            'E' => 'Е',
            'K' => 'К',
            'M' => 'М',
            'H' => 'Н',
            'O' => 'О',
            'P' => 'Р',
            'C' => 'С',
            'T' => 'Т',
            'Y' => 'У',
            'X' => 'Х',
            other => other,
        }
    }
}

impl Vin {
    /// Parses a VIN (ISO 3779).
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_uppercase();
        let valid = value.len() == 17
            && value.chars().all(|c| {
                c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, 'I' | 'O' | 'Q'))
            });
        if !valid {
            return Err(FieldError::new(
                field,
                "must be 17 characters: digits and Latin letters except I, O and Q",
            ));
        }
        Ok(Self(value))
    }
}

impl ModelName {
    /// Parses a model name.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 100 || !no_control_chars(trimmed) {
            return Err(FieldError::new(
                field,
                "must be 1 to 100 printable characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl LicenceNumber {
    /// Parses a driving licence number such as `77 12 345678`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect();
        let len = value.chars().count();
        if !(5..=20).contains(&len) || !value.chars().all(char::is_alphanumeric) {
            return Err(FieldError::new(field, "must be 5 to 20 letters and digits"));
        }
        Ok(Self(value))
    }
}

/// A driving licence as presented at registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    /// The licence number.
    pub number: LicenceNumber,
    /// The day it was issued.
    pub issued_on: NaiveDate,
    /// The last day it is valid.
    pub expires_on: NaiveDate,
}

impl Licence {
    /// Builds a licence, checking that it expires after it was issued. `field` is the path of the
    /// licence object in the request (`licence`).
    pub fn parse(
        field: &str,
        number: &str,
        issued_on: NaiveDate,
        expires_on: NaiveDate,
    ) -> Result<Self, FieldError> {
        let number = LicenceNumber::parse(&format!("{field}.number"), number)?;
        if expires_on <= issued_on {
            return Err(FieldError::new(
                format!("{field}.expires_on"),
                "must be after issued_on",
            ));
        }
        Ok(Self {
            number,
            issued_on,
            expires_on,
        })
    }

    /// Whether the licence is still valid on `day` (valid through its expiry date).
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        day <= self.expires_on
    }
}

/// Fuel (or charge) level in whole percent, 0 to 100.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FuelPercent(u8);

impl FuelPercent {
    /// Parses a percentage from the telemetry unit.
    pub fn parse(field: &str, raw: f64) -> Result<Self, FieldError> {
        if !raw.is_finite() || !(0.0..=100.0).contains(&raw) {
            return Err(FieldError::new(field, "must be between 0 and 100"));
        }
        Ok(Self(raw.round() as u8))
    }

    /// The level in percent.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// An odometer reading in metres. The API speaks kilometres; metres keep the arithmetic exact.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OdometerM(u64);

impl OdometerM {
    /// Reads a reading given in kilometres (fractions allowed, up to 10 million km).
    pub fn from_km(field: &str, km: f64) -> Result<Self, FieldError> {
        if !km.is_finite() || !(0.0..=10_000_000.0).contains(&km) {
            return Err(FieldError::new(field, "must be between 0 and 10000000 km"));
        }
        Ok(Self((km * 1000.0).round() as u64))
    }

    /// A reading in metres.
    pub fn from_m(m: u64) -> Self {
        Self(m)
    }

    /// The reading in metres.
    pub fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_accepts_russian_forms_and_normalises_them() {
        assert_eq!(
            Phone::parse("phone", "+7 (916) 123-45-67")
                .unwrap()
                .as_str(),
            "+79161234567"
        );
        assert_eq!(
            Phone::parse("phone", "89161234567").unwrap().as_str(),
            "+79161234567"
        );
        let err = Phone::parse("phone", "call me").unwrap_err();
        assert_eq!(err.field, "phone");
    }

    #[test]
    fn email_is_lower_cased_and_needs_a_domain() {
        assert_eq!(
            Email::parse("email", " Ivan@Mail.RU ").unwrap().as_str(),
            "ivan@mail.ru"
        );
        assert!(Email::parse("email", "ivan@localhost").is_err());
        assert!(Email::parse("email", "@mail.ru").is_err());
        assert!(Email::parse("email", "a@b@c.ru").is_err());
    }

    #[test]
    fn plate_accepts_cyrillic_and_drops_spaces() {
        assert_eq!(
            Plate::parse("plate", "а 123 вс 777").unwrap().as_str(),
            "А123ВС777"
        );
        assert!(Plate::parse("plate", "A-1").is_err());
    }

    #[test]
    fn plate_typed_in_latin_look_alikes_is_the_same_plate() {
        let cyrillic = Plate::parse("plate", "А123ВС777").unwrap();
        assert_eq!(Plate::parse("plate", "a123bc777").unwrap(), cyrillic);
        // Mixed alphabets, too; letters with no look-alike are kept as they are.
        assert_eq!(Plate::parse("plate", "А123BС 777").unwrap(), cyrillic);
        assert_eq!(Plate::parse("plate", "DZ1234").unwrap().as_str(), "DZ1234");
    }

    #[test]
    fn vin_rejects_letters_that_look_like_digits() {
        assert!(Vin::parse("vin", "XW8ZZZ61ZKG012345").is_ok());
        assert!(Vin::parse("vin", "XW8ZZZ61ZKG01234O").is_err());
        assert!(Vin::parse("vin", "short").is_err());
    }

    #[test]
    fn licence_must_expire_after_issue() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let err = Licence::parse(
            "licence",
            "7712345678",
            day("2020-01-01"),
            day("2019-01-01"),
        )
        .unwrap_err();
        assert_eq!(err.field, "licence.expires_on");
        let ok = Licence::parse(
            "licence",
            "77 12 345678",
            day("2020-01-01"),
            day("2030-01-01"),
        )
        .unwrap();
        assert_eq!(ok.number.as_str(), "7712345678");
        assert!(ok.is_valid_on(day("2030-01-01")));
        assert!(!ok.is_valid_on(day("2030-01-02")));
    }

    #[test]
    fn fuel_and_odometer_ranges() {
        assert_eq!(FuelPercent::parse("fuel_percent", 42.4).unwrap().get(), 42);
        assert!(FuelPercent::parse("fuel_percent", 101.0).is_err());
        assert!(FuelPercent::parse("fuel_percent", f64::NAN).is_err());
        assert_eq!(
            OdometerM::from_km("odometer_km", 12.3456).unwrap().get(),
            12_346
        );
        assert!(OdometerM::from_km("odometer_km", -1.0).is_err());
    }
}
