//! The payment gateway adapter: Velka's side of the two-stage card API (`fixtures::gateway`
//! simulates it; a real acquirer with the same contract replaces it by configuration).
//!
//! It speaks only HTTP. Every operation that creates or changes money carries an
//! `Idempotence-Key` chosen by the caller, so repeating it after a timeout or a crash asks the
//! gateway what happened instead of doing it again. Answers are sorted into three kinds:
//!
//! - **done**: the gateway answered with the resulting payment or refund;
//! - **refused** ([`GatewayError::Refused`]): a definite "no" — a declined card, a capture of a
//!   dead hold, an amount too large — retrying the same request cannot change it;
//! - **unknown** ([`GatewayError::Unavailable`]): a timeout, a 5xx, a refused connection — the
//!   operation may or may not have happened; retry with the same key (or read the payment).

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Why an operation did not come back done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// A definite refusal, with the gateway's code (`card_declined`, `insufficient_funds`,
    /// `invalid_status`, `amount_too_large`, …).
    #[error("the gateway refused: {code}: {description}")]
    Refused { code: String, description: String },
    /// No definite answer: try again with the same key.
    #[error("the gateway did not answer definitely: {0}")]
    Unavailable(String),
}

/// A payment as the gateway reports it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct GatewayPayment {
    pub id: String,
    /// `waiting_for_capture`, `succeeded` or `canceled`.
    pub status: String,
    pub amount_kopecks: i64,
    #[serde(default)]
    pub captured_kopecks: i64,
    #[serde(default)]
    pub refunded_kopecks: i64,
    #[serde(default)]
    pub cancellation_details: Option<CancellationDetails>,
}

/// Why a payment was cancelled.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CancellationDetails {
    pub reason: String,
}

impl GatewayPayment {
    /// The reason when the gateway declined the payment on creation.
    pub fn declined(&self) -> Option<&str> {
        match (&self.status[..], &self.cancellation_details) {
            ("canceled", Some(details)) if details.reason != "canceled_by_merchant" => {
                Some(&details.reason)
            }
            _ => None,
        }
    }
}

/// A refund as the gateway reports it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct GatewayRefund {
    pub id: String,
    pub payment_id: String,
    pub amount_kopecks: i64,
    pub status: String,
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

    /// Holds (`capture = false`) or charges (`capture = true`) `amount_kopecks` on the
    /// customer's card. A declined card comes back as a payment with `declined()` set.
    pub async fn create_payment(
        &self,
        key: &str,
        amount_kopecks: i64,
        customer_ref: &str,
        description: &str,
        capture: bool,
    ) -> Result<GatewayPayment, GatewayError> {
        let body = json!({
            "amount_kopecks": amount_kopecks,
            "customer_ref": customer_ref,
            "description": description,
            "capture": capture,
        });
        self.post("/v1/payments", Some(key), &body).await
    }

    /// Captures `amount_kopecks` of a hold; the rest of the hold is released.
    pub async fn capture(
        &self,
        payment_id: &str,
        key: &str,
        amount_kopecks: i64,
    ) -> Result<GatewayPayment, GatewayError> {
        let body = json!({ "amount_kopecks": amount_kopecks });
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

    /// Gives `amount_kopecks` of a captured payment back to the card.
    pub async fn refund(
        &self,
        payment_id: &str,
        key: &str,
        amount_kopecks: i64,
    ) -> Result<GatewayRefund, GatewayError> {
        let body = json!({ "payment_id": payment_id, "amount_kopecks": amount_kopecks });
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
            let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(GatewayError::Refused {
                code: error["code"].as_str().unwrap_or("http_error").to_owned(),
                description: error["description"]
                    .as_str()
                    .map_or_else(|| status.to_string(), str::to_owned),
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| GatewayError::Unavailable(format!("an answer that does not parse: {e}")))
    }
}
