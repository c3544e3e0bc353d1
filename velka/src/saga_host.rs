//! The sagas in `velka serve`: their runners, timer workers and the outbox dispatcher, and the
//! sink the outbox is sent through.
//!
//! The sink sends a command in one of two ways, by its name:
//!
//! - a command API operation (`block_customer`, `record_payment`, …) goes through the same
//!   axum router as HTTP and NATS, in-process, as the `service` caller `saga-<name>`, with the
//!   outbox command id as its `Idempotency-Key` — so a resent command is answered from the first
//!   time and appends nothing;
//! - `gateway.*` is an operation at the payment gateway, done over HTTP by
//!   [`sagas::gateway::GatewayClient`] with the operation's own key as the `Idempotence-Key`;
//!   its answer is then recorded on the account through `record_payment`. An unknown outcome (a
//!   timeout, a 5xx) is a transient failure: the dispatcher sends the same command again later,
//!   with the same key, and the gateway answers what it did the first time.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use command_api::nats::CommandRoute;
use domain::ids::{CustomerId, TripId};
use domain::money::Kopecks;
use event_store::EventStore;
use event_store::clock::Clock;
use futures::future::BoxFuture;
use http_edge::{Role, TokenKeys};
use sagas::gateway::{GatewayClient, GatewayError};
use sagas::{CommandSink, OutboxCommand, SinkError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// The command path's holds, over the gateway adapter.
#[derive(Debug)]
pub struct GatewayHolds(pub GatewayClient);

impl command_api::PaymentHolds for GatewayHolds {
    fn hold<'a>(
        &'a self,
        key: &'a str,
        customer_id: CustomerId,
        trip_id: TripId,
        amount: Kopecks,
    ) -> BoxFuture<'a, Result<String, command_api::HoldError>> {
        Box::pin(async move {
            use command_api::HoldError;
            // One quick retry with the same key: a lost answer is the commonest failure, and
            // the gateway answers the retry with the hold it made.
            let mut last = String::new();
            for _ in 0..2 {
                match self
                    .0
                    .create_payment(
                        key,
                        amount.get(),
                        &customer_id.to_string(),
                        // The same for every retry of the start: the gateway refuses a key
                        // reused with a different request.
                        &format!("Trip hold {key}"),
                        false,
                    )
                    .await
                {
                    Ok(payment) => {
                        if let Some(reason) = payment.declined() {
                            return Err(HoldError::Declined(reason.to_owned()));
                        }
                        if payment.status == "waiting_for_capture" {
                            return Ok(payment.id);
                        }
                        return Err(HoldError::Settled(payment.status));
                    }
                    Err(GatewayError::Refused { code, .. })
                        if code == "card_declined" || code == "insufficient_funds" =>
                    {
                        return Err(HoldError::Declined(code));
                    }
                    // Anything else (a key reused with another request, an invalid amount) is
                    // our fault, not the customer's card.
                    Err(GatewayError::Refused { code, description }) => {
                        tracing::error!(%trip_id, %code, %description, "the gateway refused a hold");
                        return Err(HoldError::Unavailable(format!("{code}: {description}")));
                    }
                    Err(GatewayError::Unavailable(reason)) => last = reason,
                }
            }
            Err(HoldError::Unavailable(last))
        })
    }

    fn release<'a>(
        &'a self,
        payment_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), command_api::HoldError>> {
        Box::pin(async move {
            self.0
                .cancel(payment_id, key)
                .await
                .map(|_| ())
                .map_err(|e| command_api::HoldError::Unavailable(e.to_string()))
        })
    }
}

/// Sends outbox commands: to the command API in-process, or to the gateway, or to the KYC
/// provider.
pub struct Sink {
    router: Router,
    commands: Arc<HashMap<String, CommandRoute>>,
    keys: TokenKeys,
    gateway: Option<GatewayClient>,
    kyc: Option<sagas::kyc::KycProviderClient>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

impl Sink {
    pub fn new(
        router: Router,
        document: &utoipa::openapi::OpenApi,
        keys: TokenKeys,
        gateway: Option<GatewayClient>,
        kyc: Option<sagas::kyc::KycProviderClient>,
    ) -> Self {
        Self {
            router,
            commands: Arc::new(command_api::nats::command_routes(document)),
            keys,
            gateway,
            kyc,
        }
    }

    /// Runs command `name` through the router as `service:saga-<saga>`.
    async fn api(
        &self,
        saga: &str,
        name: &str,
        payload: &Value,
        idempotency_key: Option<String>,
    ) -> Result<(), SinkError> {
        let route = self
            .commands
            .get(name)
            .ok_or_else(|| SinkError::Permanent(format!("no command {name:?}")))?;
        let Value::Object(object) = payload.clone() else {
            return Err(SinkError::Permanent("the payload is not an object".into()));
        };
        let (path, body) = command_api::nats::fill_path(route, object)
            .map_err(|problem| SinkError::Permanent(problem.to_string()))?;
        let token = self
            .keys
            .issue(
                Role::Service,
                &format!("saga-{saga}"),
                chrono::Duration::minutes(5),
                chrono::Utc::now(),
            )
            .map_err(|e| SinkError::Permanent(e.to_string()))?;
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let request = request
            .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
            .map_err(|e| SinkError::Permanent(e.to_string()))?;
        let Ok(response) = self.router.clone().oneshot(request).await;
        let status = response.status();
        let text = match axum::body::to_bytes(response.into_body(), 1 << 20).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) => error.to_string(),
        };
        if status.is_server_error()
            || status == StatusCode::CONFLICT && text.contains("concurrency-conflict")
        {
            return Err(SinkError::Transient(format!("{name}: {status}: {text}")));
        }
        if matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::UNPROCESSABLE_ENTITY
        ) {
            return Err(SinkError::Permanent(format!("{name}: {status}: {text}")));
        }
        // Any other answer — done, or refused by a rule — is the saga's business: it sees the
        // events, or their absence.
        Ok(())
    }

    /// Performs a gateway operation and records its outcome on the account.
    async fn gateway(&self, command: &OutboxCommand) -> Result<(), SinkError> {
        let gateway = self.gateway.as_ref().ok_or_else(|| {
            SinkError::Transient("no payment gateway is configured (VELKA_GATEWAY_URL)".into())
        })?;
        let p = &command.payload;
        let text = |field: &str| -> Result<String, SinkError> {
            p.get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| SinkError::Permanent(format!("{}: no {field:?}", command.name)))
        };
        let amount = || -> Result<i64, SinkError> {
            p.get("amount_kopecks")
                .and_then(Value::as_i64)
                .ok_or_else(|| SinkError::Permanent(format!("{}: no amount", command.name)))
        };
        let key = text("key")?;
        let unknown = |e: GatewayError| SinkError::Transient(e.to_string());
        let fact = match command.name.as_str() {
            "gateway.capture" => {
                let (payment_id, charge_id) = (text("payment_id")?, p["charge_id"].clone());
                // A capture tried before may have happened: ask before capturing again.
                let done = if command.attempt > 1 {
                    match gateway.payment(&payment_id).await {
                        Ok(payment) if payment.status == "succeeded" => Some(payment),
                        Ok(_) => None,
                        Err(error) => return Err(unknown(error)),
                    }
                } else {
                    None
                };
                let outcome = match done {
                    Some(payment) => Ok(payment),
                    None => gateway.capture(&payment_id, &key, amount()?).await,
                };
                match outcome {
                    Ok(payment) => json!({"kind": "captured", "charge_id": charge_id,
                        "payment_id": payment.id, "amount_kopecks": payment.captured_kopecks, "key": key}),
                    Err(GatewayError::Refused { code, .. }) => json!({"kind": "failed",
                        "charge_id": charge_id, "reason": code, "key": key}),
                    Err(error) => return Err(unknown(error)),
                }
            }
            "gateway.charge" => {
                let charge_id = p["charge_id"].clone();
                let customer = text("customer_id")?;
                let description = text("description").unwrap_or_else(|_| "Velka".into());
                match gateway
                    .create_payment(&key, amount()?, &customer, &description, true)
                    .await
                {
                    Ok(payment) => match payment.declined() {
                        Some(reason) => json!({"kind": "failed", "charge_id": charge_id,
                            "reason": reason, "key": key}),
                        None if payment.status == "succeeded" => json!({"kind": "captured",
                            "charge_id": charge_id, "payment_id": payment.id,
                            "amount_kopecks": payment.captured_kopecks, "key": key}),
                        None => {
                            return Err(SinkError::Transient(format!(
                                "payment {} is {}",
                                payment.id, payment.status
                            )));
                        }
                    },
                    Err(GatewayError::Refused { code, .. }) => json!({"kind": "failed",
                        "charge_id": charge_id, "reason": code, "key": key}),
                    Err(error) => return Err(unknown(error)),
                }
            }
            "gateway.cancel" => {
                let payment_id = text("payment_id")?;
                let released = json!({"kind": "hold_released", "trip_id": p["trip_id"],
                    "payment_id": payment_id, "key": key});
                match gateway.cancel(&payment_id, &key).await {
                    Ok(_) => released,
                    Err(GatewayError::Refused { code, description }) => {
                        match gateway.payment(&payment_id).await {
                            Ok(payment) if payment.status == "canceled" => released,
                            Ok(payment) => {
                                return Err(SinkError::Permanent(format!(
                                    "hold {payment_id} cannot be released ({code}: {description}); it is {}",
                                    payment.status
                                )));
                            }
                            Err(error) => return Err(unknown(error)),
                        }
                    }
                    Err(error) => return Err(unknown(error)),
                }
            }
            "gateway.refund" => {
                let payment_id = text("payment_id")?;
                match gateway.refund(&payment_id, &key, amount()?).await {
                    Ok(refund) => json!({"kind": "refunded", "charge_id": p["charge_id"],
                        "payment_id": payment_id, "gateway_refund_id": refund.id,
                        "amount_kopecks": refund.amount_kopecks, "key": key}),
                    Err(GatewayError::Refused { code, description }) => {
                        return Err(SinkError::Permanent(format!(
                            "refund refused: {code}: {description}"
                        )));
                    }
                    Err(error) => return Err(unknown(error)),
                }
            }
            other => {
                return Err(SinkError::Permanent(format!(
                    "no gateway operation {other:?}"
                )));
            }
        };
        let mut fact = fact;
        fact["account_id"] = p["account_id"].clone();
        // The fact's key makes recording it idempotent; no Idempotency-Key, so a fact recorded
        // after a retry is judged by the account, not by the first answer.
        self.api(&command.saga, "record_payment", &fact, None).await
    }
}

impl CommandSink for Sink {
    fn send<'a>(&'a self, command: &'a OutboxCommand) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if command.name.starts_with("gateway.") {
                self.gateway(command).await
            } else if command.name == sagas::kyc::KYC_SUBMIT {
                let kyc = self.kyc.as_ref().ok_or_else(|| {
                    SinkError::Transient(
                        "no KYC provider is configured (VELKA_KYC_PROVIDER_URL)".into(),
                    )
                })?;
                kyc.submit(command).await.map(|_| ())
            } else {
                self.api(
                    &command.saga,
                    &command.name,
                    &command.payload,
                    Some(command.command_id.to_string()),
                )
                .await
            }
        })
    }
}

/// What the saga tasks need.
pub struct SagaSetup {
    pub store: EventStore,
    pub clock: Arc<dyn Clock>,
    pub sink: Arc<Sink>,
    pub retry_initial: Duration,
    /// Run the payment saga (there is a gateway).
    pub payments: bool,
    /// Run the KYC saga (there is a provider), with its deadline.
    pub kyc: Option<sagas::kyc::KycSaga>,
}

/// Starts each saga's runner and timer worker — fines always, payments and KYC when their
/// outside party is configured — and the one outbox dispatcher; they stop when `stop` resolves.
pub fn start(setup: SagaSetup, stop: projectors::Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
    let pool = setup.store.pool().clone();
    let mut tasks = Vec::new();
    run_saga(&setup, Arc::new(sagas::fines::FineSaga), &stop, &mut tasks);
    if setup.payments {
        run_saga(
            &setup,
            Arc::new(sagas::payments::PaymentSaga),
            &stop,
            &mut tasks,
        );
    }
    if let Some(kyc) = &setup.kyc {
        run_saga(&setup, Arc::new(kyc.clone()), &stop, &mut tasks);
    }
    let dispatcher = sagas::Dispatcher::new(
        pool,
        setup.sink.clone(),
        sagas::DispatcherConfig {
            retry_initial: setup.retry_initial,
            ..sagas::DispatcherConfig::default()
        },
    );
    tasks.push(tokio::spawn(dispatcher.run(stopping(&stop))));
    tasks
}

fn stopping(stop: &projectors::Shutdown) -> impl std::future::Future<Output = ()> + use<> {
    let stop = stop.clone();
    async move { stop.triggered().await }
}

fn run_saga<S: sagas::Saga + std::fmt::Debug>(
    setup: &SagaSetup,
    saga: Arc<S>,
    stop: &projectors::Shutdown,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) {
    let runner = sagas::SagaRunner::new(
        setup.store.clone(),
        saga.clone(),
        sagas::RunnerConfig::default(),
    );
    let timers = sagas::TimerWorker::new(setup.store.pool().clone(), saga, setup.clock.clone());
    tasks.push(tokio::spawn(runner.run(stopping(stop))));
    tasks.push(tokio::spawn(timers.run(stopping(stop))));
}
