//! Damage reports: someone found a scratch, a dent or a broken mirror on a car and filed a
//! report with photos. The photos live in object storage; a report only references them by
//! `https` URL, so the event log never holds images.
//!
//! Who may file one (a customer only for a car they have or just had) is decided in
//! [`crate::fleet::report_damage`], which looks at the car; this decider keeps the report.

use crate::decider::{Decider, DomainEvent};
use crate::ids::{CustomerId, DamageReportId, TripId, VehicleId};
use crate::rejection::{FieldError, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The damage report decider.
#[derive(Debug)]
pub struct DamageReport;

/// The longest photo URL accepted (what common browsers and CDNs handle).
pub const MAX_PHOTO_URL_CHARS: usize = 2048;
/// How many photos one report may reference.
pub const MAX_PHOTOS: usize = 10;
/// The longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A photo's address: an `https` URL with a host, no credentials, at most
/// [`MAX_PHOTO_URL_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhotoUrl(String);

impl PhotoUrl {
    /// Parses a photo URL. Plain `http` is refused: a photo that is evidence must not be
    /// swappable in transit.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        let invalid = |why: &str| FieldError::new(field, why.to_owned());
        if value.chars().count() > MAX_PHOTO_URL_CHARS {
            return Err(invalid(&format!(
                "must be at most {MAX_PHOTO_URL_CHARS} characters"
            )));
        }
        if value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(invalid(
                "must be an ASCII URL without spaces (percent-encode the rest)",
            ));
        }
        let Some(rest) = value
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .and_then(|_| value.get(8..))
        else {
            return Err(invalid("must be an https:// URL"));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(invalid("must not carry credentials"));
        }
        let host = authority.split(':').next().unwrap_or_default();
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(invalid("must name a host"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who filed a report. Staff are named in the event's metadata (its actor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Reporter {
    /// The customer who has or just had the car.
    Customer { customer_id: CustomerId },
    /// Fleet staff or support.
    Staff,
}

/// What a report says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamageFiling {
    /// The damaged car.
    pub vehicle_id: VehicleId,
    /// The trip during or after which it was found, if known.
    pub trip_id: Option<TripId>,
    /// What and where, in words.
    pub description: String,
    /// Photos, 1 to [`MAX_PHOTOS`].
    pub photo_urls: Vec<PhotoUrl>,
    /// Who filed it.
    pub reporter: Reporter,
}

/// What a report's history amounts to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DamageReportState {
    /// The report as filed, or `None` before.
    pub filed: Option<DamageFiling>,
}

/// What can be asked of a damage report.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command")]
pub enum DamageReportCommand {
    /// File the report.
    File(DamageFiling),
}

/// What happened to a damage report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum DamageReportEvent {
    /// Damage was reported.
    DamageReported {
        report_id: DamageReportId,
        #[serde(flatten)]
        filing: DamageFiling,
        reported_at: DateTime<Utc>,
    },
}

impl DomainEvent for DamageReportEvent {}

/// What a damage report decision needs from outside.
#[derive(Clone, Debug)]
pub struct DamageReportContext {
    /// The report the command is for.
    pub report_id: DamageReportId,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
}

impl Decider for DamageReport {
    type State = DamageReportState;
    type Command = DamageReportCommand;
    type Event = DamageReportEvent;
    type Context = DamageReportContext;

    fn decide(
        state: &DamageReportState,
        command: &DamageReportCommand,
        context: &DamageReportContext,
    ) -> Result<Vec<DamageReportEvent>, Rejection> {
        let report_id = context.report_id;
        let DamageReportCommand::File(filing) = command;
        if state.filed.is_some() {
            return Err(Rejection::DamageReportAlreadyFiled { report_id });
        }
        let description = filing.description.trim();
        if description.is_empty() || description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(FieldError::new(
                "description",
                format!("must be 1 to {MAX_DESCRIPTION_CHARS} characters"),
            )
            .into());
        }
        if filing.photo_urls.is_empty() || filing.photo_urls.len() > MAX_PHOTOS {
            return Err(FieldError::new(
                "photo_urls",
                format!("must list 1 to {MAX_PHOTOS} photos"),
            )
            .into());
        }
        Ok(vec![DamageReportEvent::DamageReported {
            report_id,
            filing: DamageFiling {
                description: description.to_owned(),
                ..filing.clone()
            },
            reported_at: context.now,
        }])
    }

    fn evolve(mut state: DamageReportState, event: &DamageReportEvent) -> DamageReportState {
        match event {
            DamageReportEvent::DamageReported { filing, .. } => state.filed = Some(filing.clone()),
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_urls_are_https_with_a_host_and_bounded() {
        let ok = PhotoUrl::parse("photo_urls[0]", " https://cdn.velka.example/d/1.jpg?sig=a ");
        assert_eq!(
            ok.unwrap().as_str(),
            "https://cdn.velka.example/d/1.jpg?sig=a"
        );
        assert!(PhotoUrl::parse("p", "HTTPS://cdn.example:8443/x.jpg").is_ok());
        for bad in [
            "http://cdn.example/x.jpg",
            "ftp://cdn.example/x.jpg",
            "https://",
            "https:///x.jpg",
            "https://user:pw@cdn.example/x.jpg",
            "https://cdn.example/a b.jpg",
            "https://cdn.example/фото.jpg",
            "javascript:alert(1)",
            "cdn.example/x.jpg",
        ] {
            let error = PhotoUrl::parse("photo_urls[2]", bad).unwrap_err();
            assert_eq!(error.field, "photo_urls[2]", "{bad}");
        }
        let long = format!("https://cdn.example/{}", "a".repeat(MAX_PHOTO_URL_CHARS));
        assert!(PhotoUrl::parse("p", &long).is_err());
    }
}
