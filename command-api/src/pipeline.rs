//! The path every command takes, in one place:
//!
//! 1. an `Idempotency-Key` seen before returns the first answer (and appends nothing);
//! 2. the route's `decide` step loads state and asks the domain;
//! 3. the events, claims and the answer are appended in one transaction;
//! 4. a version conflict (someone wrote first) or a lost exclusive claim loads and decides
//!    again, a bounded number of times; a lost uniqueness claim becomes its rejection;
//! 5. a rejection is answered as problem+json and remembered under the key, appending nothing.

use crate::CommandContext;
use crate::rejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::claims::Claim;
use domain::{DomainEvent, Rejection};
use event_store::{
    AppendError, AppendRequest, Claims, CommandResult, ExpectedVersion, Metadata, NewEvent,
    StoreError, StreamWrite,
};
use http_edge::ProblemType;
use http_edge::{Caller, Problem};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::future::Future;
use uuid::Uuid;

/// How many times a command is decided again after losing a race before giving up with 409.
const MAX_ATTEMPTS: u32 = 8;

/// The header a client sets to make a POST safe to retry.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer replayed from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Groups everything caused by one outside request; echoed back, generated when absent.
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
/// The log position of the last event the command appended, so a client can wait for a read
/// model to reach it.
pub const VELKA_POSITION: HeaderName = HeaderName::from_static("velka-position");

/// What a route decided: the events to append and the answer to give.
#[derive(Debug)]
pub struct Decision {
    /// Events per stream, with the versions they were decided on.
    pub writes: Vec<StreamWrite>,
    /// Exclusive claims taken and released.
    pub claims: Claims,
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The answer's body.
    pub body: Value,
}

/// Why a route could not decide.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A business rule refused the command.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The request is not allowed or not well-formed (403, 404 of a path id, …).
    #[error("{0}")]
    Refused(Problem),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not decode.
    #[error("stored event does not decode: {0}")]
    Decode(#[from] domain::decider::DecodeError),
}

impl From<domain::FieldError> for CommandError {
    fn from(error: domain::FieldError) -> Self {
        CommandError::Rejected(error.into())
    }
}

impl From<Problem> for CommandError {
    fn from(problem: Problem) -> Self {
        CommandError::Refused(problem)
    }
}

/// Encodes domain events for appending to `stream_id` after `expected`.
pub fn write<E: DomainEvent>(
    stream_id: String,
    expected: ExpectedVersion,
    events: &[E],
    now: DateTime<Utc>,
) -> Result<StreamWrite, CommandError> {
    let events = events
        .iter()
        .map(|event| {
            let encoded = domain::decider::encode(event)?;
            Ok(NewEvent {
                event_id: Uuid::now_v7(),
                event_type: encoded.event_type,
                schema_version: encoded.schema_version,
                data: encoded.data,
                occurred_at: now,
            })
        })
        .collect::<Result<Vec<_>, CommandError>>()?;
    Ok(StreamWrite {
        stream_id,
        expected,
        events,
    })
}

/// Who sent a request and how to recognise a retry of it.
#[derive(Debug)]
pub struct Envelope {
    /// The actor recorded on the events (`customer:<id>`, `support:<agent>`).
    pub actor: String,
    /// Idempotency keys are per scope, so two callers' keys never collide.
    pub scope: String,
    /// The client's key, if it sent one.
    pub key: Option<String>,
    /// A digest of method, path and body, to refuse a key reused for another request.
    pub request_hash: String,
    /// The request's correlation id.
    pub correlation_id: Uuid,
}

impl Envelope {
    /// Reads the envelope of a request from `caller` (or an anonymous one).
    pub fn read(
        caller: Option<&Caller>,
        anonymous_actor: &str,
        headers: &HeaderMap,
        method_and_path: &str,
        body: &[u8],
    ) -> Result<Self, Problem> {
        let key = match headers.get(&IDEMPOTENCY_KEY) {
            None => None,
            Some(value) => {
                let key = value.to_str().ok().map(str::trim).filter(|k| {
                    !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic())
                });
                match key {
                    Some(key) => Some(key.to_owned()),
                    None => {
                        return Err(Problem::new(
                            ProblemType::InvalidIdempotencyKey,
                            "use 1 to 255 visible ASCII characters, for example a UUID",
                        )
                        .with_field("Idempotency-Key"));
                    }
                }
            }
        };
        let correlation_id = headers
            .get(&CORRELATION_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .unwrap_or_else(Uuid::now_v7);
        let mut digest = Sha256::new();
        digest.update(method_and_path.as_bytes());
        digest.update([0]);
        digest.update(body);
        let request_hash = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (actor, scope) = match caller {
            Some(caller) => (caller.actor(), caller.actor()),
            None => (anonymous_actor.to_owned(), "anonymous".to_owned()),
        };
        Ok(Self {
            actor,
            scope,
            key,
            request_hash,
            correlation_id,
        })
    }
}

/// Runs a command through the pipeline and answers it. `decide` is called once per attempt and
/// must load fresh state each time.
pub async fn execute<F, Fut>(context: &CommandContext, envelope: Envelope, decide: F) -> Response
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Decision, CommandError>>,
{
    let correlation_id = envelope.correlation_id;
    let mut response = match run(context, &envelope, decide).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&correlation_id.to_string()) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

async fn run<F, Fut>(
    context: &CommandContext,
    envelope: &Envelope,
    decide: F,
) -> Result<Response, Problem>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Decision, CommandError>>,
{
    let store = &context.store;
    if let Some(key) = &envelope.key
        && let Some(stored) = store
            .find_result(&envelope.scope, key)
            .await
            .map_err(|e| Problem::unavailable(&e))?
    {
        return replay(envelope, stored);
    }
    let command_id = Uuid::now_v7();
    for _attempt in 0..MAX_ATTEMPTS {
        let decision = match decide().await {
            Ok(decision) => decision,
            Err(CommandError::Rejected(rejection)) => {
                return reject(context, envelope, &rejection).await;
            }
            Err(CommandError::Refused(problem)) => return Err(problem),
            Err(CommandError::Store(error)) => return Err(Problem::unavailable(&error)),
            Err(CommandError::Decode(error)) => return Err(Problem::internal(&error)),
        };
        let result = envelope.key.as_ref().map(|key| CommandResult {
            scope: envelope.scope.clone(),
            key: key.clone(),
            request_hash: envelope.request_hash.clone(),
            status: decision.status.as_u16(),
            body: decision.body.clone(),
        });
        if decision.writes.iter().all(|w| w.events.is_empty()) {
            // Nothing to record (an unchanged telemetry reading): remember the answer only.
            if let Some(result) = &result {
                let stored = store
                    .record_result(result, context.clock.now())
                    .await
                    .map_err(|e| Problem::unavailable(&e))?;
                return Ok(answer(stored.status, stored.body, None));
            }
            return Ok(answer(decision.status.as_u16(), decision.body, None));
        }
        let request = AppendRequest {
            writes: decision.writes,
            metadata: Metadata {
                correlation_id: envelope.correlation_id,
                causation_id: None,
                actor: envelope.actor.clone(),
                command_id: Some(command_id),
            },
            recorded_at: context.clock.now(),
            claims: decision.claims,
            result,
        };
        match store.append(&request).await {
            Ok(outcome) => {
                return Ok(answer(
                    decision.status.as_u16(),
                    decision.body,
                    outcome.last_position(),
                ));
            }
            Err(AppendError::WrongExpectedVersion { .. }) => continue,
            Err(AppendError::ClaimHeld { claim }) => {
                match Claim::parse(&claim).and_then(|c| c.when_held()) {
                    Some(rejection) => return reject(context, envelope, &rejection).await,
                    // An exclusive state claim: fresh state will explain the refusal.
                    None => continue,
                }
            }
            Err(AppendError::DuplicateCommand { key }) => {
                // A concurrent request with the same key won; answer as it was answered.
                let stored = store
                    .find_result(&envelope.scope, &key)
                    .await
                    .map_err(|e| Problem::unavailable(&e))?
                    .ok_or_else(|| Problem::internal(&"duplicate command without a result"))?;
                return replay(envelope, stored);
            }
            Err(AppendError::Invalid(reason)) => return Err(Problem::internal(&reason)),
            Err(AppendError::Store(error)) => return Err(Problem::unavailable(&error)),
        }
    }
    metrics::counter!("velka_command_gave_up_total").increment(1);
    Err(Problem::new(
        ProblemType::ConcurrencyConflict,
        "the objects this command touches kept changing while it was decided; retry",
    ))
}

/// Answers a rejection, remembering it under the idempotency key.
async fn reject(
    context: &CommandContext,
    envelope: &Envelope,
    rejection: &Rejection,
) -> Result<Response, Problem> {
    let problem = rejection::problem(rejection);
    let Some(key) = &envelope.key else {
        return Err(problem);
    };
    let body = serde_json::to_value(&problem).map_err(|e| Problem::internal(&e))?;
    let stored = context
        .store
        .record_result(
            &CommandResult {
                scope: envelope.scope.clone(),
                key: key.clone(),
                request_hash: envelope.request_hash.clone(),
                status: problem.status,
                body,
            },
            context.clock.now(),
        )
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    Ok(answer(stored.status, stored.body, None))
}

/// The first answer for a key, or 422 if the key was used for a different request.
pub(crate) fn replay(
    envelope: &Envelope,
    stored: event_store::StoredResult,
) -> Result<Response, Problem> {
    if stored.request_hash != envelope.request_hash {
        return Err(Problem::new(
            ProblemType::IdempotencyKeyReused,
            "a key may be reused only to retry the very same request; use a new key",
        )
        .with_field("Idempotency-Key"));
    }
    let mut response = answer(stored.status, stored.body, None);
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

fn answer(status: u16, body: Value, position: Option<i64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let is_problem = body.get("type").is_some() && body.get("status").is_some();
    let mut response = (status, axum::Json(body)).into_response();
    if is_problem && !status.is_success() {
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
    }
    if let Some(value) = position.and_then(|p| HeaderValue::from_str(&p.to_string()).ok()) {
        response.headers_mut().insert(VELKA_POSITION, value);
    }
    response
}
