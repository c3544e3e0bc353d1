//! What the payment saga asks for, typed: the operations at the gateway it puts in its outbox,
//! the facts it records on the account, the blocks it sets and lifts — and how a gateway
//! operation is performed and turned into the fact that records its outcome.
//!
//! An outbox command is a name and a JSON payload (the saga runtime knows nothing of payments);
//! [`PaymentCommand`] is the only place either is spelled. A gateway operation is performed by
//! [`perform`] with the operation's own key as the `Idempotence-Key`; its outcome is a
//! [`PaymentFact`] to record through the command API (`record_payment`), or an
//! [`OperationError`] that says whether sending it again can help.

use crate::gateway::{GatewayClient, GatewayError, NewPayment, PaymentStatus};
use domain::account::{ChargeId, PaymentFact};
use domain::ids::{CustomerId, TripId};
use domain::money::Kopecks;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Captures the price (or part of it) from a trip's hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// The customer whose account it is.
    pub account_id: CustomerId,
    pub charge_id: ChargeId,
    pub trip_id: TripId,
    pub payment_id: String,
    pub amount_kopecks: Kopecks,
    pub key: String,
}

/// Takes money for a charge in a payment of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub account_id: CustomerId,
    pub customer_id: CustomerId,
    pub charge_id: ChargeId,
    pub amount_kopecks: Kopecks,
    pub key: String,
    pub description: String,
}

/// Cancels a trip's hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    pub account_id: CustomerId,
    pub trip_id: TripId,
    pub payment_id: String,
    pub key: String,
}

/// Gives money taken for a charge back to the card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub account_id: CustomerId,
    pub charge_id: ChargeId,
    pub payment_id: String,
    pub amount_kopecks: Kopecks,
    pub key: String,
}

/// An operation at the payment gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayOperation {
    Capture(Capture),
    Charge(Charge),
    Cancel(Cancel),
    Refund(Refund),
}

/// A fact to record on a customer's account (`record_payment`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPayment {
    /// The customer whose account it is.
    pub account_id: CustomerId,
    #[serde(flatten)]
    pub fact: PaymentFact,
}

/// Everything the payment saga sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentCommand {
    /// Done at the gateway by [`perform`], its outcome then recorded.
    Gateway(GatewayOperation),
    /// Recorded on the account through the command API.
    Record(RecordPayment),
    /// A `debt` block on the customer.
    Block {
        customer_id: CustomerId,
        note: String,
    },
    /// The `debt` block lifted.
    Unblock {
        customer_id: CustomerId,
        note: String,
    },
}

/// The outbox names of the gateway operations.
const CAPTURE: &str = "gateway.capture";
const CHARGE: &str = "gateway.charge";
const CANCEL: &str = "gateway.cancel";
const REFUND: &str = "gateway.refund";

impl PaymentCommand {
    /// The outbox command's name: a gateway operation, or the command API's operation id.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gateway(GatewayOperation::Capture(_)) => CAPTURE,
            Self::Gateway(GatewayOperation::Charge(_)) => CHARGE,
            Self::Gateway(GatewayOperation::Cancel(_)) => CANCEL,
            Self::Gateway(GatewayOperation::Refund(_)) => REFUND,
            Self::Record(_) => "record_payment",
            Self::Block { .. } => "block_customer",
            Self::Unblock { .. } => "unblock_customer",
        }
    }

    /// The outbox command's payload.
    pub fn payload(&self) -> Value {
        let value = match self {
            Self::Gateway(GatewayOperation::Capture(op)) => serde_json::to_value(op),
            Self::Gateway(GatewayOperation::Charge(op)) => serde_json::to_value(op),
            Self::Gateway(GatewayOperation::Cancel(op)) => serde_json::to_value(op),
            Self::Gateway(GatewayOperation::Refund(op)) => serde_json::to_value(op),
            Self::Record(record) => serde_json::to_value(record),
            Self::Block { customer_id, note } | Self::Unblock { customer_id, note } => {
                Ok(json!({"customer_id": customer_id, "reason": "debt", "note": note}))
            }
        };
        // Plain structs of ids, numbers and strings always serialize.
        value.unwrap_or(Value::Null)
    }
}

impl GatewayOperation {
    /// The gateway operation an outbox command names, if it names one (`None` for a command of
    /// the command API), or why its payload does not read.
    pub fn from_command(name: &str, payload: &Value) -> Option<Result<Self, String>> {
        fn read<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, String> {
            T::deserialize(payload).map_err(|e| e.to_string())
        }
        Some(match name {
            CAPTURE => read(payload).map(Self::Capture),
            CHARGE => read(payload).map(Self::Charge),
            CANCEL => read(payload).map(Self::Cancel),
            REFUND => read(payload).map(Self::Refund),
            other if other.starts_with("gateway.") => {
                Err(format!("no gateway operation {other:?}"))
            }
            _ => return None,
        })
    }

    /// The customer whose account the outcome goes on.
    pub fn account(&self) -> CustomerId {
        match self {
            Self::Capture(op) => op.account_id,
            Self::Charge(op) => op.account_id,
            Self::Cancel(op) => op.account_id,
            Self::Refund(op) => op.account_id,
        }
    }
}

/// Why an operation's outcome is not a fact yet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// Unknown or not done yet: send the same operation again later, with the same key.
    #[error("{0}")]
    Transient(String),
    /// Sending it again cannot help: a person must look.
    #[error("{0}")]
    Permanent(String),
}

/// Performs `operation` at the gateway (the `attempt`-th time) and answers the fact recording
/// its outcome.
pub async fn perform(
    gateway: &GatewayClient,
    operation: &GatewayOperation,
    attempt: i32,
) -> Result<RecordPayment, OperationError> {
    let unknown = |e: GatewayError| OperationError::Transient(e.to_string());
    let fact = match operation {
        GatewayOperation::Capture(op) => {
            // A capture tried before may have happened: ask before capturing again.
            let done = if attempt > 1 {
                let payment = gateway.payment(&op.payment_id).await.map_err(unknown)?;
                (payment.status == PaymentStatus::Succeeded).then_some(payment)
            } else {
                None
            };
            let outcome = match done {
                Some(payment) => Ok(payment),
                None => {
                    gateway
                        .capture(&op.payment_id, &op.key, op.amount_kopecks)
                        .await
                }
            };
            match outcome {
                Ok(payment) => PaymentFact::Captured {
                    charge_id: op.charge_id,
                    payment_id: payment.id,
                    amount_kopecks: payment.captured_kopecks.get(),
                    key: op.key.clone(),
                },
                Err(GatewayError::Refused { code, .. }) => PaymentFact::Failed {
                    charge_id: op.charge_id,
                    reason: code.as_str().to_owned(),
                    key: op.key.clone(),
                },
                Err(error) => return Err(unknown(error)),
            }
        }
        GatewayOperation::Charge(op) => {
            let customer_ref = op.customer_id.to_string();
            let payment = gateway
                .create_payment(&NewPayment {
                    key: &op.key,
                    amount: op.amount_kopecks,
                    customer_ref: &customer_ref,
                    description: &op.description,
                    capture: true,
                    metadata: None,
                })
                .await;
            match payment {
                Ok(payment) => match (payment.declined(), payment.status) {
                    (Some(reason), _) => PaymentFact::Failed {
                        charge_id: op.charge_id,
                        reason: reason.as_str().to_owned(),
                        key: op.key.clone(),
                    },
                    (None, PaymentStatus::Succeeded) => PaymentFact::Captured {
                        charge_id: op.charge_id,
                        payment_id: payment.id,
                        amount_kopecks: payment.captured_kopecks.get(),
                        key: op.key.clone(),
                    },
                    (None, status) => {
                        return Err(OperationError::Transient(format!(
                            "payment {} is {status:?}",
                            payment.id
                        )));
                    }
                },
                Err(GatewayError::Refused { code, .. }) => PaymentFact::Failed {
                    charge_id: op.charge_id,
                    reason: code.as_str().to_owned(),
                    key: op.key.clone(),
                },
                Err(error) => return Err(unknown(error)),
            }
        }
        GatewayOperation::Cancel(op) => {
            let released = PaymentFact::HoldReleased {
                trip_id: op.trip_id,
                payment_id: op.payment_id.clone(),
                key: op.key.clone(),
            };
            match gateway.cancel(&op.payment_id, &op.key).await {
                Ok(_) => released,
                Err(GatewayError::Refused { code, description }) => {
                    let payment = gateway.payment(&op.payment_id).await.map_err(unknown)?;
                    if payment.status != PaymentStatus::Canceled {
                        return Err(OperationError::Permanent(format!(
                            "hold {} cannot be released ({}: {description}); it is {:?}",
                            op.payment_id,
                            code.as_str(),
                            payment.status
                        )));
                    }
                    released
                }
                Err(error) => return Err(unknown(error)),
            }
        }
        GatewayOperation::Refund(op) => {
            match gateway
                .refund(&op.payment_id, &op.key, op.amount_kopecks)
                .await
            {
                Ok(refund) => PaymentFact::Refunded {
                    charge_id: op.charge_id,
                    payment_id: op.payment_id.clone(),
                    gateway_refund_id: refund.id,
                    amount_kopecks: refund.amount_kopecks.get(),
                    key: op.key.clone(),
                },
                Err(GatewayError::Refused { code, description }) => {
                    return Err(OperationError::Permanent(format!(
                        "refund refused: {}: {description}",
                        code.as_str()
                    )));
                }
                Err(error) => return Err(unknown(error)),
            }
        }
    };
    // The gateway has done it; its fact is not recorded yet.
    event_store::crash::point("saga.after_gateway");
    Ok(RecordPayment {
        account_id: operation.account(),
        fact,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_operation_reads_back_from_its_outbox_name_and_payload() {
        let capture = PaymentCommand::Gateway(GatewayOperation::Capture(Capture {
            account_id: CustomerId(Uuid::from_u128(1)),
            charge_id: ChargeId(Uuid::from_u128(2)),
            trip_id: TripId(Uuid::from_u128(3)),
            payment_id: "pay-1".into(),
            amount_kopecks: Kopecks(5_000),
            key: "c-hold".into(),
        }));
        let payload = capture.payload();
        assert_eq!(capture.name(), "gateway.capture");
        assert_eq!(payload["amount_kopecks"], 5_000);
        let back = GatewayOperation::from_command(capture.name(), &payload)
            .unwrap()
            .unwrap();
        assert_eq!(PaymentCommand::Gateway(back), capture);
        assert!(GatewayOperation::from_command("block_customer", &payload).is_none());
        assert!(
            GatewayOperation::from_command("gateway.teleport", &payload)
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn a_fact_to_record_carries_its_kind_and_the_account() {
        let record = PaymentCommand::Record(RecordPayment {
            account_id: CustomerId(Uuid::from_u128(1)),
            fact: PaymentFact::HandedToAgency {
                charge_id: ChargeId(Uuid::from_u128(2)),
                amount_kopecks: 100,
                key: "k".into(),
            },
        });
        let payload = record.payload();
        assert_eq!(payload["kind"], "handed_to_agency");
        assert_eq!(payload["account_id"], Uuid::from_u128(1).to_string());
        assert_eq!(record.name(), "record_payment");
    }
}
