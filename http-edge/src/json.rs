//! Reading JSON request bodies so that a bad body is a 400/422 problem naming the field, instead
//! of axum's plain-text rejection.

use crate::problem::Problem;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

/// A JSON body of type `T`. Unknown fields are refused when `T` says `deny_unknown_fields`.
#[derive(Debug)]
pub struct JsonBody<T> {
    /// The parsed body.
    pub value: T,
    /// The raw bytes, for hashing an idempotent request.
    pub raw: axum::body::Bytes,
}

/// Parses `bytes` as `T`, naming the field path at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let field = if path == "." || path == "?" || path.is_empty() {
            None
        } else {
            Some(path)
        };
        // serde reports a missing field at the parent's path; name the field itself.
        let message = inner.to_string();
        let field = match (field, missing_field(&message)) {
            (Some(parent), Some(missing)) => Some(format!("{parent}.{missing}")),
            (None, Some(missing)) => Some(missing),
            (field, None) => field,
        };
        Problem::malformed_body(field, message)
    })
}

/// The field named by serde's "missing field `x`" message (reported at the parent's path).
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}

/// The raw bytes of a body that must be JSON: declared so by `Content-Type` (415 otherwise) and
/// read whole (400 when it cannot be). Parse them with [`parse`].
pub async fn raw_json<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<axum::body::Bytes, Problem> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence == "application/json" || essence.ends_with("+json")
        });
    if !is_json {
        return Err(Problem::new(
            crate::ProblemType::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|error| Problem::malformed_body(None, error.body_text()))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let raw = raw_json(request, state).await?;
        let value = parse(&raw)?;
        Ok(Self { value, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Licence {
        number: String,
        issued_on: chrono::NaiveDate,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        licence: Licence,
    }

    #[test]
    fn names_the_nested_field_with_a_bad_value() {
        let err =
            parse::<Body>(br#"{"name":"x","licence":{"number":"1","issued_on":"yesterday"}}"#)
                .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("licence.issued_on"));
        assert_eq!(err.status, 400);
    }

    #[test]
    fn names_a_missing_field() {
        let err =
            parse::<Body>(br#"{"licence":{"number":"1","issued_on":"2020-01-01"}}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("name"));
        let err = parse::<Body>(br#"{"name":"x","licence":{"number":"1"}}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("licence.issued_on"));
    }

    #[test]
    fn names_an_unknown_field() {
        let err = parse::<Body>(
            br#"{"name":"x","licence":{"number":"1","issued_on":"2020-01-01"},"admin":true}"#,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("admin"));
    }

    #[test]
    fn syntax_errors_have_no_field() {
        let err = parse::<Body>(b"{not json").unwrap_err();
        assert_eq!(err.field, None);
        assert_eq!(err.rule, "malformed-body");
    }
}
