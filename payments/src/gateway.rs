//! The payment gateway's protocol, typed: Velka's side of the two-stage card API
//! (`fixtures::gateway` simulates it; a real acquirer with the same contract replaces it by
//! configuration).
//!
//! It speaks only HTTP. Every operation that creates or changes money carries an
//! `Idempotence-Key` chosen by the caller, so repeating it after a timeout or a crash asks the
//! gateway what happened instead of doing it again. Every answer is sorted into one of three
//! kinds, and nothing outside this module ever looks at the gateway's text:
//!
//! - **done**: the gateway answered with the resulting [`GatewayPayment`] or [`GatewayRefund`];
//! - **refused** ([`GatewayError::Refused`] with a [`RefusalCode`]): a definite "no" — a
//!   declined card, a capture of a dead hold, an amount too large — retrying the same request
//!   cannot change it;
//! - **unknown** ([`GatewayError::Unavailable`]): a timeout, a 5xx, a refused connection — the
//!   operation may or may not have happened; retry with the same key (or read the payment).

use domain::money::Kopecks;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// The metadata field of a hold that carries the idempotence key it was made with, so that a
/// hold found at the gateway can be tied to what Velka noted before asking for it.
pub const HOLD_KEY_METADATA: &str = "velka_hold_key";

/// A payment's status at the gateway.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Not decided yet (a gateway that authorises asynchronously).
    Pending,
    /// A hold: money reserved on the card, to be captured or cancelled.
    WaitingForCapture,
    /// Money taken.
    Succeeded,
    /// Declined at creation, or a hold cancelled.
    Canceled,
}

/// Why a payment was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    /// The issuer declined the card.
    CardDeclined,
    /// Not enough money on the card.
    InsufficientFunds,
    /// The merchant (Velka) cancelled the hold.
    CanceledByMerchant,
    /// The hold lapsed uncaptured.
    Expired,
    /// A reason this adapter does not know: treated as a decline.
    #[serde(other)]
    Other,
}

impl CancellationReason {
    /// The reason as the gateway spells it (what a `PaymentFailed` records).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::CanceledByMerchant => "canceled_by_merchant",
            Self::Expired => "expired",
            Self::Other => "declined",
        }
    }
}

/// The code of a definite refusal.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The issuer declined the card.
    CardDeclined,
    /// Not enough money on the card.
    InsufficientFunds,
    /// The payment is not in a state that allows the operation (capturing a cancelled hold…).
    InvalidStatus,
    /// More than the hold, or than may still be refunded.
    AmountTooLarge,
    /// The key was used before with another request: a bug on Velka's side.
    IdempotenceKeyConflict,
    /// No such payment or refund.
    NotFound,
    /// The request was malformed: a bug on Velka's side.
    InvalidRequest,
    /// A code this adapter does not know.
    #[serde(other)]
    Other,
}

impl RefusalCode {
    /// Whether the refusal is about the customer's card (a decline), not about the request.
    pub fn is_decline(&self) -> bool {
        matches!(self, Self::CardDeclined | Self::InsufficientFunds)
    }

    /// The code as the gateway spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::InvalidStatus => "invalid_status",
            Self::AmountTooLarge => "amount_too_large",
            Self::IdempotenceKeyConflict => "idempotence_key_conflict",
            Self::NotFound => "not_found",
            Self::InvalidRequest => "invalid_request",
            Self::Other => "refused",
        }
    }
}

/// Why an operation did not come back done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// A definite refusal.
    #[error("the gateway refused: {}: {description}", code.as_str())]
    Refused {
        code: RefusalCode,
        description: String,
    },
    /// No definite answer: try again with the same key.
    #[error("the gateway did not answer definitely: {0}")]
    Unavailable(String),
}

/// Why a payment was cancelled, as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CancellationDetails {
    pub reason: CancellationReason,
}

/// A payment as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GatewayPayment {
    pub id: String,
    pub status: PaymentStatus,
    pub amount_kopecks: Kopecks,
    #[serde(default)]
    pub captured_kopecks: Kopecks,
    #[serde(default)]
    pub refunded_kopecks: Kopecks,
    #[serde(default)]
    pub cancellation_details: Option<CancellationDetails>,
    /// Who it was made for (Velka sends the customer id).
    #[serde(default)]
    pub customer_ref: String,
    #[serde(default)]
    pub metadata: Value,
}

impl GatewayPayment {
    /// The reason when the gateway declined the payment on creation.
    pub fn declined(&self) -> Option<&CancellationReason> {
        match (self.status, &self.cancellation_details) {
            (PaymentStatus::Canceled, Some(details))
                if details.reason != CancellationReason::CanceledByMerchant =>
            {
                Some(&details.reason)
            }
            _ => None,
        }
    }

    /// The idempotence key a hold was made with, from its metadata.
    pub fn hold_key(&self) -> Option<&str> {
        self.metadata.get(HOLD_KEY_METADATA).and_then(Value::as_str)
    }
}

/// A refund as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GatewayRefund {
    pub id: String,
    pub payment_id: String,
    pub amount_kopecks: Kopecks,
}

/// A payment to create: a hold (`capture = false`) or a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPayment<'a> {
    /// The idempotence key.
    pub key: &'a str,
    pub amount: Kopecks,
    /// The customer it is for.
    pub customer_ref: &'a str,
    /// The same for every retry of one key: the gateway refuses a key reused with another
    /// request.
    pub description: &'a str,
    pub capture: bool,
    /// Stored with the payment and listed with it.
    pub metadata: Option<Value>,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PaymentPage {
    pub items: Vec<GatewayPayment>,
    /// Where the next page starts; absent on the last.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The HTTP client of the gateway.
#[derive(Clone, Debug)]
pub struct GatewayClient {
    http: reqwest::Client,
    base: String,
}

impl GatewayClient {
    /// A client of the gateway at `base_url` (`http://127.0.0.1:8090`), giving up on an answer
    /// after `timeout` (then the outcome is unknown and the caller retries with the same key).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The gateway's address.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Holds or charges money on the customer's card. A declined card comes back as a payment
    /// with [`GatewayPayment::declined`] set.
    pub async fn create_payment(
        &self,
        payment: &NewPayment<'_>,
    ) -> Result<GatewayPayment, GatewayError> {
        let mut body = json!({
            "amount_kopecks": payment.amount.get(),
            "customer_ref": payment.customer_ref,
            "description": payment.description,
            "capture": payment.capture,
        });
        if let Some(metadata) = &payment.metadata {
            body["metadata"] = metadata.clone();
        }
        self.post("/v1/payments", Some(payment.key), &body).await
    }

    /// Captures `amount` of a hold; the rest of the hold is released.
    pub async fn capture(
        &self,
        payment_id: &str,
        key: &str,
        amount: Kopecks,
    ) -> Result<GatewayPayment, GatewayError> {
        let body = json!({ "amount_kopecks": amount.get() });
        self.post(
            &format!("/v1/payments/{payment_id}/capture"),
            Some(key),
            &body,
        )
        .await
    }

    /// Cancels a hold.
    pub async fn cancel(
        &self,
        payment_id: &str,
        key: &str,
    ) -> Result<GatewayPayment, GatewayError> {
        self.post(
            &format!("/v1/payments/{payment_id}/cancel"),
            Some(key),
            &json!({}),
        )
        .await
    }

    /// Gives `amount` of a captured payment back to the card.
    pub async fn refund(
        &self,
        payment_id: &str,
        key: &str,
        amount: Kopecks,
    ) -> Result<GatewayRefund, GatewayError> {
        let body = json!({ "payment_id": payment_id, "amount_kopecks": amount.get() });
        self.post("/v1/refunds", Some(key), &body).await
    }

    /// Reads a payment: how an unknown outcome is resolved.
    pub async fn payment(&self, payment_id: &str) -> Result<GatewayPayment, GatewayError> {
        let response = self
            .http
            .get(format!("{}/v1/payments/{payment_id}", self.base))
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        Self::read(response).await
    }

    /// One page of the holds the gateway keeps open (`waiting_for_capture`), oldest first,
    /// from `cursor` (`None`: the first page).
    pub async fn open_holds(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<PaymentPage, GatewayError> {
        let mut query = vec![
            ("status", "waiting_for_capture".to_owned()),
            ("limit", limit.to_string()),
        ];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let response = self
            .http
            .get(format!("{}/v1/payments", self.base))
            .query(&query)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        Self::read(response).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> Result<T, GatewayError> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotence-Key", key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        Self::read(response).await
    }

    async fn read<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, GatewayError> {
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(GatewayError::Unavailable(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        if !status.is_success() {
            #[derive(Deserialize)]
            struct ErrorBody {
                code: RefusalCode,
                #[serde(default)]
                description: String,
            }
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(error) => GatewayError::Refused {
                    code: error.code,
                    description: error.description,
                },
                // A 4xx that is not the gateway's error shape (a proxy's page): not a definite
                // answer about the operation.
                Err(_) => GatewayError::Unavailable(format!(
                    "{status} without an error body: {}",
                    String::from_utf8_lossy(&bytes)
                )),
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| GatewayError::Unavailable(format!("an answer that does not parse: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_declined_payment_names_its_reason_and_a_cancelled_hold_does_not() {
        let declined: GatewayPayment = serde_json::from_value(json!({
            "id": "p1", "status": "canceled", "amount_kopecks": 100,
            "cancellation_details": {"party": "issuer", "reason": "insufficient_funds"}
        }))
        .unwrap();
        assert_eq!(
            declined.declined(),
            Some(&CancellationReason::InsufficientFunds)
        );
        let cancelled: GatewayPayment = serde_json::from_value(json!({
            "id": "p2", "status": "canceled", "amount_kopecks": 100,
            "cancellation_details": {"party": "merchant", "reason": "canceled_by_merchant"}
        }))
        .unwrap();
        assert_eq!(cancelled.declined(), None);
        let strange: GatewayPayment = serde_json::from_value(json!({
            "id": "p3", "status": "canceled", "amount_kopecks": 100,
            "cancellation_details": {"reason": "fraud_suspected"}
        }))
        .unwrap();
        assert_eq!(strange.declined(), Some(&CancellationReason::Other));
    }

    #[test]
    fn a_hold_carries_its_key_in_its_metadata() {
        let hold: GatewayPayment = serde_json::from_value(json!({
            "id": "p1", "status": "waiting_for_capture", "amount_kopecks": 50000,
            "metadata": {"velka_hold_key": "hold-abc"}
        }))
        .unwrap();
        assert_eq!(hold.hold_key(), Some("hold-abc"));
        assert_eq!(hold.status, PaymentStatus::WaitingForCapture);
    }
}
