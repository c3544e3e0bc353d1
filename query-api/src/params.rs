//! Query-string parameters read so that every bad one is a 422 problem naming it, rather than
//! axum's plain-text `Query` rejection.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use domain::FieldError;
use http_edge::Problem;
use http_edge::ProblemType;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A request parameter (in the query or the path) with an unacceptable value. Small, so that
/// parsing returns it cheaply; it becomes a 422 problem naming the parameter when a handler
/// returns it with `?`.
#[derive(Debug)]
pub(crate) struct InvalidParam(pub(crate) FieldError);

impl InvalidParam {
    pub(crate) fn new(name: &str, message: impl Into<String>) -> Self {
        Self(FieldError::new(name, message))
    }
}

impl From<InvalidParam> for Problem {
    fn from(InvalidParam(error): InvalidParam) -> Problem {
        Problem::invalid_field(error.field, error.message)
    }
}

/// The request's query parameters, in order. Unknown parameters are ignored.
#[derive(Debug)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|rejection| {
                Problem::new(ProblemType::MalformedQuery, rejection.body_text())
            })?;
        Ok(Self(pairs))
    }
}

impl QueryParams {
    /// The value of `name`, if given; an error if given more than once (which value was meant?).
    fn one(&self, name: &str) -> Result<Option<&str>, InvalidParam> {
        let mut values = self.0.iter().filter(|(key, _)| key == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(InvalidParam::new(name, "must be given at most once"));
        }
        Ok(first.map(|(_, value)| value.as_str()))
    }

    /// `name` as text, or `None` if absent.
    pub(crate) fn text(&self, name: &str) -> Result<Option<&str>, InvalidParam> {
        self.one(name)
    }

    /// `name` as a number within `range`, or `None` if absent.
    pub(crate) fn number_in<T>(
        &self,
        name: &str,
        range: RangeInclusive<T>,
    ) -> Result<Option<T>, InvalidParam>
    where
        T: FromStr + PartialOrd + Display,
    {
        let Some(raw) = self.one(name)? else {
            return Ok(None);
        };
        let out_of_range = || {
            InvalidParam::new(
                name,
                format!(
                    "must be a number from {} to {}, not {raw:?}",
                    range.start(),
                    range.end()
                ),
            )
        };
        // NaN parses as a float but is in no range, so it is refused here too.
        let value: T = raw.trim().parse().map_err(|_| out_of_range())?;
        if range.contains(&value) {
            Ok(Some(value))
        } else {
            Err(out_of_range())
        }
    }

    /// `name` as a number within `range`; an error if absent.
    pub(crate) fn required_number_in<T>(
        &self,
        name: &str,
        range: RangeInclusive<T>,
    ) -> Result<T, InvalidParam>
    where
        T: FromStr + PartialOrd + Display,
    {
        self.number_in(name, range)?
            .ok_or_else(|| InvalidParam::new(name, format!("{name} is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn numbers_are_checked_against_their_range_and_name_the_parameter() {
        let p = params(&[
            ("lat", "55.75"),
            ("radius_m", "0"),
            ("limit", "x"),
            ("n", "NaN"),
        ]);
        assert_eq!(p.required_number_in("lat", -90.0..=90.0).unwrap(), 55.75);
        let problem = Problem::from(p.number_in("radius_m", 1u32..=50_000).unwrap_err());
        assert_eq!(
            (problem.status, problem.field.as_deref()),
            (422, Some("radius_m"))
        );
        assert_eq!(
            p.number_in("limit", 1u32..=200).unwrap_err().0.field,
            "limit"
        );
        assert!(p.number_in("n", -1.0..=1.0).is_err());
        assert_eq!(p.number_in("absent", 1u32..=2).unwrap(), None);
        let missing = p.required_number_in("lon", -180.0..=180.0).unwrap_err().0;
        assert_eq!(missing.field, "lon");
        assert!(missing.message.contains("required"));
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        let p = params(&[("limit", "1"), ("limit", "2")]);
        assert_eq!(
            p.number_in("limit", 1u32..=200).unwrap_err().0.field,
            "limit"
        );
    }
}
