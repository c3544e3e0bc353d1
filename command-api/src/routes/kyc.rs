//! KYC by an outside provider: its callback with a check's result (authenticated by the
//! provider's signature, never by a bearer token), and the request for a person's review that
//! the KYC saga sends when the provider asks for one or does not answer in time.
//!
//! The callback only records the provider's answer (`KycCheckCompleted` on the customer's
//! stream, once per check id); turning it into a decision is the KYC saga's job, through
//! `decide_verification` or `request_kyc_manual_review`.

use crate::CommandContext;
use crate::load::load;
use crate::pipeline::{Decision, execute, write};
use crate::request::{Command, Door, OpenCommand, path_id};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::Decider;
use domain::customer::{Customer, CustomerCommand, CustomerContext, KycOutcome};
use domain::ids::CustomerId;
use event_store::Claims;
use hmac::{Hmac, Mac};
use http_edge::openapi::CommandProblems;
use http_edge::{Problem, ProblemType, roles};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

/// The header the provider signs its callbacks with: `sha256=<hex HMAC-SHA256 of the body>`.
pub const KYC_SIGNATURE: &str = "kyc-signature";

/// Whether `header` is the signature of `body` under `secret` (compared in constant time).
fn signed_by(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The door of the provider's callbacks: the `Kyc-Signature` header must be the provider's
/// signature of the raw body, checked before anything of the body is parsed; the body is taken
/// however its `Content-Type` declares it.
#[derive(Debug)]
pub(crate) struct KycProvider;

impl Door for KycProvider {
    const ACTOR: &'static str = "service:kyc-provider";
    const JSON_ONLY: bool = false;

    fn admit(context: &CommandContext, headers: &HeaderMap, raw: &[u8]) -> Result<(), Problem> {
        let signature = headers
            .get(KYC_SIGNATURE)
            .and_then(|value| value.to_str().ok());
        if signed_by(&context.kyc_webhook_secret, raw, signature) {
            Ok(())
        } else {
            Err(Problem::unauthorized(
                "the Kyc-Signature header is missing or is not the provider's signature of the body",
            ))
        }
    }
}

/// The customer a check's reference names: `<customer id>:<submission id>`.
fn customer_of(reference: &str) -> Option<CustomerId> {
    let (customer, submission) = reference.split_once(':')?;
    Uuid::parse_str(submission).ok()?;
    Uuid::parse_str(customer).ok().map(CustomerId)
}

/// `POST /v1/webhooks/kyc` body: the provider's result of a check.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct KycCallbackBody {
    /// The provider's id of the check.
    #[schema(example = "chk_0194c0ffee")]
    check_id: String,
    /// What the check was requested with: `<customer id>:<submission id>`.
    reference: String,
    outcome: KycOutcome,
    /// Why, for `rejected` (required) and `manual_review`.
    #[serde(default)]
    reason: Option<String>,
}

/// The recorded result.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KycCheckRecorded {
    customer_id: CustomerId,
    check_id: String,
    /// Whether this check's result had been recorded before (nothing was appended this time).
    duplicate: bool,
}

/// The KYC provider calls back with a check's result. Authenticated by the `Kyc-Signature`
/// header (HMAC-SHA256 of the body under the shared secret), not by a bearer token; a check
/// already recorded is answered again and appends nothing.
#[utoipa::path(
    post,
    path = "/v1/webhooks/kyc",
    operation_id = "record_kyc_check",
    tag = "customers",
    request_body = KycCallbackBody,
    params(("Kyc-Signature" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the body under the secret shared with the provider")),
    responses(
        (status = 200, description = "Recorded (or recorded before)", body = KycCheckRecorded),
        CommandProblems,
    ),
)]
pub(crate) async fn record_kyc_check(
    State(context): State<CommandContext>,
    OpenCommand { envelope, body, .. }: OpenCommand<KycCallbackBody, KycProvider>,
) -> Result<Response, Problem> {
    let customer_id = customer_of(&body.reference).ok_or_else(|| {
        Problem::invalid_field(
            "reference",
            "must be <customer id>:<submission id>, as the check was requested with",
        )
    })?;
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let stream_id = customer_id.stream_id();
        let customer = load::<Customer>(&context.store, &stream_id).await?;
        let now = context.clock.now();
        let events = Customer::decide(
            &customer.state,
            &CustomerCommand::RecordKycCheck {
                check_id: body.check_id.clone(),
                reference: body.reference.clone(),
                outcome: body.outcome,
                reason: body.reason.clone(),
            },
            &CustomerContext {
                customer_id,
                now,
                kyc: (*context.kyc).clone(),
            },
        )?;
        let duplicate = events.is_empty();
        Ok(Decision {
            writes: vec![write(stream_id, customer.expected(), &events, now)?],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!(KycCheckRecorded {
                customer_id,
                check_id: body.check_id.trim().to_owned(),
                duplicate,
            }),
        })
    })
    .await;
    Ok(response)
}

/// `POST /v1/customers/{id}/kyc/manual-review` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManualReviewBody {
    /// Why a person must look, shown to support.
    #[schema(example = "the KYC provider did not answer within 24 hours")]
    reason: String,
}

/// The customer's documents await review.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ManualReviewRequested {
    customer_id: CustomerId,
    /// Still `pending`: support decides through `decide_verification`.
    verification: &'static str,
    reason: String,
}

/// Puts a customer's pending documents in front of support (the KYC saga, or support itself).
#[utoipa::path(
    post,
    path = "/v1/customers/{customer_id}/kyc/manual-review",
    operation_id = "request_kyc_manual_review",
    tag = "customers",
    request_body = ManualReviewBody,
    params(("customer_id" = Uuid, Path, description = "The customer"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gets the first answer and appends nothing")),
    responses((status = 200, description = "The documents await review", body = ManualReviewRequested), CommandProblems),
    security(("bearer" = [])),
)]
pub(crate) async fn request_manual_review(
    State(context): State<CommandContext>,
    Path(raw_id): Path<String>,
    Command { envelope, body, .. }: Command<ManualReviewBody, (roles::Service, roles::Support)>,
) -> Result<Response, Problem> {
    let customer_id = CustomerId(path_id(&raw_id, ProblemType::CustomerNotFound, "customer")?);
    let context = &context;
    let body = &body;
    let response = execute(context, envelope, || async move {
        let stream_id = customer_id.stream_id();
        let customer = load::<Customer>(&context.store, &stream_id).await?;
        let now = context.clock.now();
        let events = Customer::decide(
            &customer.state,
            &CustomerCommand::RequestManualReview {
                reason: body.reason.clone(),
            },
            &CustomerContext {
                customer_id,
                now,
                kyc: (*context.kyc).clone(),
            },
        )?;
        let after = events.iter().fold(customer.state.clone(), |state, event| {
            Customer::evolve(state, event)
        });
        Ok(Decision {
            writes: vec![write(stream_id, customer.expected(), &events, now)?],
            claims: Claims::default(),
            status: StatusCode::OK,
            body: json!(ManualReviewRequested {
                customer_id,
                verification: after.verification.as_str(),
                reason: after.manual_review.clone().unwrap_or_default(),
            }),
        })
    })
    .await;
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    }

    #[test]
    fn only_the_secrets_signature_of_these_very_bytes_is_accepted() {
        let body = br#"{"check_id":"chk_1"}"#;
        let good = sign(b"secret", body);
        assert!(signed_by(b"secret", body, Some(&good)));
        assert!(!signed_by(b"other", body, Some(&good)));
        assert!(!signed_by(
            b"secret",
            br#"{"check_id":"chk_2"}"#,
            Some(&good)
        ));
        assert!(!signed_by(b"secret", body, None));
        assert!(!signed_by(b"secret", body, Some("sha256=zz")));
        assert!(!signed_by(
            b"secret",
            body,
            Some(good.trim_start_matches("sha256="))
        ));
    }

    #[test]
    fn a_reference_names_a_customer_and_a_submission() {
        let customer = Uuid::now_v7();
        let submission = Uuid::now_v7();
        assert_eq!(
            customer_of(&format!("{customer}:{submission}")),
            Some(CustomerId(customer))
        );
        assert_eq!(customer_of(&customer.to_string()), None);
        assert_eq!(customer_of(&format!("{customer}:nope")), None);
    }
}
