//! The KYC saga: a customer's documents go to an outside KYC provider, whose verdict becomes the
//! customer's verification, and whose silence becomes a person's review.
//!
//! One instance per customer (`customer-<id>`), reacting to the customer's stream:
//!
//! 1. `KycDocumentsSubmitted` → the command [`KYC_SUBMIT`] (performed by [`KycProviderClient`]:
//!    `POST /v1/checks` at the provider, with the command id as its `Idempotence-Key` and the
//!    reference `<customer id>:<submission id>`, the submission being the event's id) and the
//!    timer `deadline` at the submission's time plus [`KycSaga::deadline`] (business time).
//!    Documents submitted again start a new check: the new reference replaces the old one and the
//!    new deadline the old timer, so a late answer about the old documents is ignored.
//! 2. `KycCheckCompleted` (recorded by `POST /v1/webhooks/kyc` when the provider calls back) for
//!    the current reference → `verified`: `decide_verification` approved; `rejected`:
//!    `decide_verification` rejected with the provider's reason; `manual_review`:
//!    `request_kyc_manual_review`. The deadline is cancelled.
//! 3. The deadline passes with no answer → `request_kyc_manual_review`. An answer after that is
//!    ignored: the documents are in front of a person already.
//!
//! The saga only decides; the customer's rules (age, licence, verification already decided) are
//! the command API's, and a refusal there changes nothing here.

use crate::dispatcher::SinkError;
use crate::saga::{FiredTimer, OutboxCommand, Reaction, ReactionError, Saga};
use chrono::Duration;
use domain::customer::{CustomerEvent, KycOutcome};
use domain::decider::decode_ref;
use domain::ids::CustomerId;
use event_store::{EventStore, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// The outbox command that asks the KYC provider to check documents (not a command API
/// operation: the sink hands it to [`KycProviderClient::submit`]).
pub const KYC_SUBMIT: &str = "kyc.submit";
/// The timer that turns the provider's silence into a manual review.
pub const DEADLINE: &str = "deadline";

/// The KYC saga; see the module documentation.
#[derive(Clone, Debug)]
pub struct KycSaga {
    /// How long the provider has to answer, in business time.
    pub deadline: Duration,
}

impl Default for KycSaga {
    fn default() -> Self {
        Self {
            deadline: Duration::hours(24),
        }
    }
}

/// Where a customer's current check is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KycSagaState {
    /// The check of the documents last submitted, if any.
    pub check: Option<CurrentCheck>,
}

/// The check of the documents last submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentCheck {
    /// The customer.
    pub customer_id: CustomerId,
    /// The `KycDocumentsSubmitted` event's id.
    pub submission_id: Uuid,
    /// What the provider was asked with and answers with: `<customer id>:<submission id>`.
    pub reference: String,
    /// Where it is.
    pub phase: CheckPhase,
}

/// Where a check is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckPhase {
    /// Sent to the provider; waiting for its answer or the deadline.
    AwaitingProvider,
    /// The provider answered; its verdict was sent on.
    Answered(KycOutcome),
    /// The deadline passed without an answer; a person reviews the documents.
    TimedOut,
}

/// The reference a submission is checked under.
pub fn reference_of(customer_id: CustomerId, submission_id: Uuid) -> String {
    format!("{customer_id}:{submission_id}")
}

impl KycSaga {
    fn hours(&self) -> i64 {
        self.deadline.num_hours()
    }
}

fn customer_event(event: &RecordedEvent) -> Result<CustomerEvent, ReactionError> {
    decode_ref::<CustomerEvent>(&event.event_type, event.schema_version, &event.data)
        .map_err(|error| ReactionError::new(format!("{}: {error}", event.event_type)))
}

impl Saga for KycSaga {
    type State = KycSagaState;

    fn name(&self) -> &'static str {
        "kyc"
    }

    fn categories(&self) -> &'static [&'static str] {
        &["customer"]
    }

    fn instance_of(&self, event: &RecordedEvent) -> Option<String> {
        matches!(
            event.event_type.as_str(),
            "KycDocumentsSubmitted" | "KycCheckCompleted"
        )
        .then(|| CustomerId::from_stream_id(&event.stream_id))
        .flatten()
        .map(|customer_id| customer_id.to_string())
    }

    fn react(
        &self,
        state: Option<KycSagaState>,
        event: &RecordedEvent,
    ) -> Result<Reaction<KycSagaState>, ReactionError> {
        let state = state.unwrap_or_default();
        match customer_event(event)? {
            CustomerEvent::KycDocumentsSubmitted {
                customer_id,
                submitted_at,
                ..
            } => {
                let submission_id = event.event_id;
                let reference = reference_of(customer_id, submission_id);
                Ok(Reaction::new(KycSagaState {
                    check: Some(CurrentCheck {
                        customer_id,
                        submission_id,
                        reference: reference.clone(),
                        phase: CheckPhase::AwaitingProvider,
                    }),
                })
                .with_command(
                    KYC_SUBMIT,
                    json!({
                        "customer_id": customer_id,
                        "submission_id": submission_id,
                        "reference": reference,
                    }),
                )
                .with_timer(
                    DEADLINE,
                    submitted_at + self.deadline,
                    json!({ "reference": reference }),
                ))
            }
            CustomerEvent::KycCheckCompleted {
                reference,
                outcome,
                reason,
                ..
            } => {
                let Some(check) = state
                    .check
                    .as_ref()
                    .filter(|c| c.reference == reference)
                    .filter(|c| c.phase == CheckPhase::AwaitingProvider)
                else {
                    // An answer about older documents, a repeat, or one after the deadline.
                    return Ok(Reaction::new(state));
                };
                let customer_id = check.customer_id;
                let (name, payload) = match outcome {
                    KycOutcome::Verified => (
                        "decide_verification",
                        json!({"customer_id": customer_id, "decision": "approved"}),
                    ),
                    KycOutcome::Rejected => (
                        "decide_verification",
                        json!({
                            "customer_id": customer_id,
                            "decision": "rejected",
                            "reason": reason.unwrap_or_else(|| "rejected by the KYC provider".to_owned()),
                        }),
                    ),
                    KycOutcome::ManualReview => (
                        "request_kyc_manual_review",
                        json!({
                            "customer_id": customer_id,
                            "reason": match reason {
                                Some(reason) => format!("the KYC provider asked for a manual review: {reason}"),
                                None => "the KYC provider asked for a manual review".to_owned(),
                            },
                        }),
                    ),
                };
                let mut next = check.clone();
                next.phase = CheckPhase::Answered(outcome);
                Ok(Reaction::new(KycSagaState { check: Some(next) })
                    .with_command(name, payload)
                    .cancelling(DEADLINE))
            }
            _ => Ok(Reaction::new(state)),
        }
    }

    fn on_timer(
        &self,
        state: KycSagaState,
        timer: &FiredTimer,
    ) -> Result<Reaction<KycSagaState>, ReactionError> {
        let reference = timer.payload.get("reference").and_then(Value::as_str);
        let Some(check) = state
            .check
            .as_ref()
            .filter(|c| timer.name == DEADLINE && Some(c.reference.as_str()) == reference)
            .filter(|c| c.phase == CheckPhase::AwaitingProvider)
        else {
            return Ok(Reaction::new(state));
        };
        let payload = json!({
            "customer_id": check.customer_id,
            "reason": format!("the KYC provider did not answer within {} hours", self.hours()),
        });
        let mut next = check.clone();
        next.phase = CheckPhase::TimedOut;
        Ok(Reaction::new(KycSagaState { check: Some(next) })
            .with_command("request_kyc_manual_review", payload))
    }
}

/// The KYC provider's HTTP API, as the command sink uses it to perform [`KYC_SUBMIT`]: it
/// reads the submitted documents from the customer's stream (so personal data never sits in the
/// outbox) and asks the provider to check them, with the command id as `Idempotence-Key`, so a
/// retry never starts a second check. Speaks only HTTP: a real provider is a base URL away.
#[derive(Clone, Debug)]
pub struct KycProviderClient {
    http: reqwest::Client,
    base_url: String,
    callback_url: String,
    store: EventStore,
}

/// The provider's answer to a check request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CheckStarted {
    /// The provider's id of the check; its callback carries it.
    pub check_id: String,
    /// `processing`.
    pub status: String,
}

#[derive(Deserialize)]
struct SubmitPayload {
    customer_id: CustomerId,
    submission_id: Uuid,
    reference: String,
}

impl KycProviderClient {
    /// A client of the provider at `base_url` (no trailing slash needed), asking it to call back
    /// at `callback_url` (Velka's `POST /v1/webhooks/kyc`), giving up on a request after
    /// `timeout`.
    pub fn new(
        base_url: &str,
        callback_url: &str,
        store: EventStore,
        timeout: std::time::Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            callback_url: callback_url.to_owned(),
            store,
        })
    }

    /// Performs a [`KYC_SUBMIT`] command. Transient: the store or the provider unreachable, a
    /// timeout, a 5xx or 429. Permanent: a malformed command, documents not found, another 4xx.
    pub async fn submit(&self, command: &OutboxCommand) -> Result<CheckStarted, SinkError> {
        let payload: SubmitPayload = serde_json::from_value(command.payload.clone())
            .map_err(|error| SinkError::Permanent(format!("malformed kyc.submit: {error}")))?;
        let events = self
            .store
            .read_stream(&payload.customer_id.stream_id(), 0)
            .await
            .map_err(|error| SinkError::Transient(error.to_string()))?;
        let Some(submission) = events.iter().find(|e| e.event_id == payload.submission_id) else {
            return Err(SinkError::Permanent(format!(
                "no submission {} in the stream of customer {}",
                payload.submission_id, payload.customer_id
            )));
        };
        let documents = match &submission.data {
            Value::Object(fields) => {
                let mut fields = fields.clone();
                fields.remove("submitted_at");
                Value::Object(fields)
            }
            _ => {
                return Err(SinkError::Permanent(
                    "the submission's data is not an object".to_owned(),
                ));
            }
        };
        let answer = self
            .http
            .post(format!("{}/v1/checks", self.base_url))
            .header("Idempotence-Key", command.command_id.to_string())
            .json(&json!({
                "reference": payload.reference,
                "callback_url": self.callback_url,
                "documents": documents,
            }))
            .send()
            .await
            .map_err(|error| SinkError::Transient(format!("KYC provider: {error}")))?;
        let status = answer.status();
        if status.is_success() {
            return answer.json::<CheckStarted>().await.map_err(|error| {
                SinkError::Transient(format!("KYC provider answered {status}: {error}"))
            });
        }
        let text = answer.text().await.unwrap_or_default();
        let reason = format!("KYC provider answered {status}: {text}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SinkError::Transient(reason))
        } else {
            Err(SinkError::Permanent(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::{DateTime, Utc};
    use event_store::{LogPosition, Metadata};

    const CUSTOMER: CustomerId = CustomerId(Uuid::from_u128(0xC1));

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn recorded(event: &CustomerEvent, event_id: Uuid, occurred_at: &str) -> RecordedEvent {
        let encoded = domain::decider::encode(event).unwrap();
        RecordedEvent {
            position: 1,
            log_position: LogPosition::default(),
            stream_id: CUSTOMER.stream_id(),
            stream_version: 1,
            event_id,
            event_type: encoded.event_type,
            schema_version: encoded.schema_version,
            data: encoded.data,
            metadata: Metadata {
                correlation_id: Uuid::nil(),
                causation_id: None,
                actor: "customer:test".to_owned(),
                command_id: None,
            },
            occurred_at: at(occurred_at),
            recorded_at: at(occurred_at),
        }
    }

    fn submitted(event_id: u128, when: &str) -> RecordedEvent {
        let day = |text: &str| text.parse::<chrono::NaiveDate>().unwrap();
        let documents = domain::customer::KycDocuments {
            passport: domain::customer::Passport::parse(
                "passport",
                "4510",
                "123456",
                day("2010-06-01"),
                "ОВД Тверского района",
            )
            .unwrap(),
            licence: domain::value::Licence::parse(
                "licence",
                "99 01 654321",
                day("2016-03-10"),
                day("2036-03-10"),
            )
            .unwrap(),
            licence_categories: domain::customer::LicenceCategories::parse(
                "licence.categories",
                &["B".to_owned()],
            )
            .unwrap(),
            birth_date: day("1990-05-17"),
        };
        recorded(
            &CustomerEvent::KycDocumentsSubmitted {
                customer_id: CUSTOMER,
                documents,
                submitted_at: at(when),
            },
            Uuid::from_u128(event_id),
            when,
        )
    }

    fn completed(
        event_id: u128,
        submission: u128,
        outcome: KycOutcome,
        reason: Option<&str>,
    ) -> RecordedEvent {
        recorded(
            &CustomerEvent::KycCheckCompleted {
                customer_id: CUSTOMER,
                check_id: format!("chk_{event_id}"),
                reference: reference_of(CUSTOMER, Uuid::from_u128(submission)),
                outcome,
                reason: reason.map(str::to_owned),
                completed_at: at("2026-11-26T10:05:00Z"),
            },
            Uuid::from_u128(event_id),
            "2026-11-26T10:05:00Z",
        )
    }

    fn deadline(state: &KycSagaState, due: &str) -> FiredTimer {
        let reference = state.check.as_ref().unwrap().reference.clone();
        FiredTimer {
            timer_id: Uuid::from_u128(0x71),
            instance_id: CUSTOMER.to_string(),
            name: DEADLINE.to_owned(),
            due_at: at(due),
            payload: json!({ "reference": reference }),
        }
    }

    #[test]
    fn submitted_documents_go_to_the_provider_with_a_deadline() {
        let saga = KycSaga::default();
        let event = submitted(0x51, "2026-11-26T10:00:00Z");
        assert_eq!(saga.instance_of(&event), Some(CUSTOMER.to_string()));
        let reaction = saga.react(None, &event).unwrap();
        let reference = reference_of(CUSTOMER, Uuid::from_u128(0x51));
        assert_eq!(reaction.commands.len(), 1);
        assert_eq!(reaction.commands[0].name, KYC_SUBMIT);
        assert_eq!(reaction.commands[0].payload["reference"], json!(reference));
        assert_eq!(
            reaction.commands[0].payload["submission_id"],
            json!(Uuid::from_u128(0x51))
        );
        // No personal data in the outbox: the adapter reads it from the stream.
        assert!(reaction.commands[0].payload.get("passport").is_none());
        assert_eq!(reaction.set_timers.len(), 1);
        assert_eq!(reaction.set_timers[0].name, DEADLINE);
        assert_eq!(reaction.set_timers[0].due_at, at("2026-11-27T10:00:00Z"));
        assert!(!reaction.completed);
        assert_eq!(
            reaction.state.check.unwrap().phase,
            CheckPhase::AwaitingProvider
        );
    }

    #[test]
    fn each_verdict_becomes_its_command_and_cancels_the_deadline() {
        let saga = KycSaga::default();
        let started = saga
            .react(None, &submitted(0x51, "2026-11-26T10:00:00Z"))
            .unwrap()
            .state;
        let cases = [
            (
                KycOutcome::Verified,
                None,
                "decide_verification",
                json!("approved"),
            ),
            (
                KycOutcome::Rejected,
                Some("document_invalid"),
                "decide_verification",
                json!("rejected"),
            ),
            (
                KycOutcome::ManualReview,
                Some("photo_unclear"),
                "request_kyc_manual_review",
                Value::Null,
            ),
        ];
        for (outcome, reason, name, decision) in cases {
            let reaction = saga
                .react(
                    Some(started.clone()),
                    &completed(0x61, 0x51, outcome, reason),
                )
                .unwrap();
            assert_eq!(reaction.commands.len(), 1, "{outcome:?}");
            let command = &reaction.commands[0];
            assert_eq!(command.name, name);
            assert_eq!(command.payload["customer_id"], json!(CUSTOMER));
            assert_eq!(
                command
                    .payload
                    .get("decision")
                    .cloned()
                    .unwrap_or(Value::Null),
                decision
            );
            if let Some(reason) = reason {
                let sent = command.payload["reason"].as_str().unwrap();
                assert!(sent.contains(reason), "{sent}");
            }
            assert_eq!(reaction.cancel_timers, [DEADLINE]);
            assert_eq!(
                reaction.state.check.unwrap().phase,
                CheckPhase::Answered(outcome)
            );
        }
    }

    #[test]
    fn no_answer_by_the_deadline_asks_for_a_manual_review_and_a_late_answer_is_ignored() {
        let saga = KycSaga::default();
        let started = saga
            .react(None, &submitted(0x51, "2026-11-26T10:00:00Z"))
            .unwrap()
            .state;
        let fired = saga
            .on_timer(started.clone(), &deadline(&started, "2026-11-27T10:00:00Z"))
            .unwrap();
        assert_eq!(fired.commands.len(), 1);
        assert_eq!(fired.commands[0].name, "request_kyc_manual_review");
        assert!(
            fired.commands[0].payload["reason"]
                .as_str()
                .unwrap()
                .contains("24 hours")
        );
        assert_eq!(
            fired.state.check.as_ref().unwrap().phase,
            CheckPhase::TimedOut
        );

        let late = saga
            .react(
                Some(fired.state.clone()),
                &completed(0x61, 0x51, KycOutcome::Verified, None),
            )
            .unwrap();
        assert!(late.commands.is_empty());
        assert_eq!(late.state, fired.state);
    }

    #[test]
    fn new_documents_start_a_new_check_and_the_old_ones_answer_is_ignored() {
        let saga = KycSaga::default();
        let first = saga
            .react(None, &submitted(0x51, "2026-11-26T10:00:00Z"))
            .unwrap()
            .state;
        let second = saga
            .react(
                Some(first.clone()),
                &submitted(0x52, "2026-11-26T12:00:00Z"),
            )
            .unwrap();
        assert_eq!(second.commands[0].name, KYC_SUBMIT);
        assert_eq!(second.set_timers[0].due_at, at("2026-11-27T12:00:00Z"));
        assert_ne!(
            second.commands[0].payload["reference"],
            json!(first.check.as_ref().unwrap().reference)
        );

        // The first check's verdict and deadline no longer count.
        let stale = saga
            .react(
                Some(second.state.clone()),
                &completed(0x61, 0x51, KycOutcome::Verified, None),
            )
            .unwrap();
        assert!(stale.commands.is_empty());
        let stale_timer = saga
            .on_timer(
                second.state.clone(),
                &deadline(&first, "2026-11-27T10:00:00Z"),
            )
            .unwrap();
        assert!(stale_timer.commands.is_empty());

        // The second check's verdict does.
        let current = saga
            .react(
                Some(second.state),
                &completed(0x62, 0x52, KycOutcome::Verified, None),
            )
            .unwrap();
        assert_eq!(current.commands[0].name, "decide_verification");
    }

    #[test]
    fn other_customer_events_are_not_the_sagas_business() {
        let saga = KycSaga::default();
        let event = recorded(
            &CustomerEvent::CustomerVerified {
                customer_id: CUSTOMER,
                verified_at: at("2026-11-26T10:00:00Z"),
            },
            Uuid::from_u128(0x90),
            "2026-11-26T10:00:00Z",
        );
        assert_eq!(saga.instance_of(&event), None);
    }
}
