//! `application/problem+json` (RFC 9457) errors. Every error any route returns is a [`Problem`]
//! with a stable `type` URI, so clients branch on `type`, never on the wording of `detail`.

use crate::problems::ProblemType;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub use crate::problems::PROBLEM_BASE;

/// An error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// `https://velka.dev/problems/<rule>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the rule, the same for every occurrence.
    pub title: String,
    /// The HTTP status, repeated for clients that lose it.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// The request field at fault, as a dot-separated path, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule's stable name (the last segment of `type`).
    pub rule: String,
}

impl Problem {
    /// A problem of kind `kind`, with what happened this time.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            problem_type: kind.uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            field: None,
            rule: kind.slug().to_owned(),
        }
    }

    /// Names the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Its kind, read back from its name (`None` for a problem this build does not know, say
    /// one parsed from another server's answer).
    pub fn kind(&self) -> Option<ProblemType> {
        ProblemType::from_slug(&self.rule)
    }

    /// 401: no valid bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Unauthorized, detail)
    }

    /// 403: the caller's role may not do this, or the object is someone else's.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Forbidden, detail)
    }

    /// 404: no such object (or none the caller may see), of kind `kind`.
    pub fn not_found(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self::new(kind, detail)
    }

    /// 422: a field has an unacceptable value.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ProblemType::InvalidField, detail).with_field(field)
    }

    /// 400: the body is not JSON of the expected shape.
    pub fn malformed_body(field: Option<String>, detail: impl Into<String>) -> Self {
        let problem = Self::new(ProblemType::MalformedBody, detail);
        match field {
            Some(field) => problem.with_field(field),
            None => problem,
        }
    }

    /// 500: something failed on our side; the detail is logged, not shown.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            ProblemType::Internal,
            "the server failed to handle the request; it has been logged",
        )
    }

    /// 503: a dependency (the database) is unavailable.
    pub fn unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "dependency unavailable");
        Self::new(
            ProblemType::Unavailable,
            "a dependency of the server is unavailable; retry later",
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.rule, self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
