//! The sagas in `velka serve`: their runners, timer workers and the outbox dispatcher, and the
//! sink the outbox is sent through.
//!
//! The sink sends a command in one of two ways, by its name:
//!
//! - a command API operation (`block_customer`, `record_payment`, …) goes through the same
//!   axum router as HTTP and NATS, in-process, as the `service` caller `saga-<name>`, with the
//!   outbox command id as its `Idempotency-Key` — so a resent command is answered from the first
//!   time and appends nothing;
//! - an operation at the payment gateway is done by `payments::operation::perform` (which knows
//!   what it means), and the fact it answers is recorded on the account through
//!   `record_payment`. An unknown outcome is a transient failure: the dispatcher sends the same
//!   command again later, with the same key, and the gateway answers what it did the first time.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use command_api::nats::CommandRoute;
use event_store::EventStore;
use event_store::clock::Clock;
use event_store::follower::checkpoint;
use futures::future::BoxFuture;
use http_edge::{Role, TokenKeys};
use payments::GatewayClient;
use payments::operation::{GatewayOperation, OperationError, PaymentCommand};
use sagas::{CommandSink, OutboxCommand, SinkError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

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
        // A command that kept losing races is worth sending again; the problem's type says so.
        let kind = serde_json::from_str::<http_edge::Problem>(&text)
            .ok()
            .and_then(|problem| problem.kind());
        if status.is_server_error() || kind == Some(http_edge::ProblemType::ConcurrencyConflict) {
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
    async fn gateway(
        &self,
        command: &OutboxCommand,
        operation: &GatewayOperation,
    ) -> Result<(), SinkError> {
        let gateway = self.gateway.as_ref().ok_or_else(|| {
            SinkError::Transient("no payment gateway is configured (VELKA_GATEWAY_URL)".into())
        })?;
        let record = payments::operation::perform(gateway, operation, command.attempt)
            .await
            .map_err(|error| match error {
                OperationError::Transient(reason) => SinkError::Transient(reason),
                OperationError::Permanent(reason) => SinkError::Permanent(reason),
            })?;
        let fact = PaymentCommand::Record(record);
        // The fact's key makes recording it idempotent; no Idempotency-Key, so a fact recorded
        // after a retry is judged by the account, not by the first answer.
        self.api(&command.saga, fact.name(), &fact.payload(), None)
            .await
    }
}

impl CommandSink for Sink {
    fn send<'a>(&'a self, command: &'a OutboxCommand) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if let Some(operation) = GatewayOperation::from_command(&command.name, &command.payload)
            {
                let operation = operation.map_err(SinkError::Permanent)?;
                self.gateway(command, &operation).await
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
/// The runners are followers of the log (one process runs each, by the store's leases); the
/// timer workers and the dispatcher run each in one process at a time by a lease of its own.
pub async fn start(
    setup: SagaSetup,
    leases: &event_store::lease::Leases,
    stop: projectors::Shutdown,
) -> Result<Vec<tokio::task::JoinHandle<()>>, event_store::StoreError> {
    let pool = setup.store.pool().clone();
    let mut tasks = Vec::new();
    let fines = Arc::new(sagas::fines::FineSaga);
    run_saga(&setup, leases, fines, &stop, &mut tasks).await?;
    if setup.payments {
        let saga = Arc::new(payments::saga::PaymentSaga);
        run_saga(&setup, leases, saga, &stop, &mut tasks).await?;
    }
    if let Some(kyc) = &setup.kyc {
        run_saga(&setup, leases, Arc::new(kyc.clone()), &stop, &mut tasks).await?;
    }
    let config = sagas::DispatcherConfig {
        retry_initial: setup.retry_initial,
        ..sagas::DispatcherConfig::default()
    };
    let sink = setup.sink.clone();
    tasks.push(tokio::spawn(event_store::lease::while_held(
        leases.want("worker:saga-dispatcher"),
        stopping(&stop),
        move |cancel| {
            sagas::Dispatcher::new(pool.clone(), sink.clone(), config.clone())
                .run(cancel.cancelled_owned())
        },
    )));
    Ok(tasks)
}

pub(crate) fn stopping(
    stop: &projectors::Shutdown,
) -> impl std::future::Future<Output = ()> + use<> {
    let stop = stop.clone();
    async move { stop.triggered().await }
}

/// Starts a saga's runners — one per segment its checkpoints say it has — and its timer worker.
async fn run_saga<S: sagas::Saga + std::fmt::Debug>(
    setup: &SagaSetup,
    leases: &event_store::lease::Leases,
    saga: Arc<S>,
    stop: &projectors::Shutdown,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), event_store::StoreError> {
    let pool = setup.store.pool();
    let count = checkpoint::segments(pool, sagas::FOLLOWER_KIND, saga.name()).await?;
    for segment in event_store::follower::Segment::all(count) {
        let store = setup.store.clone();
        let config = sagas::RunnerConfig::default();
        let runner = sagas::SagaRunner::in_segment(store, saga.clone(), config, segment);
        tasks.push(tokio::spawn(runner.run(stopping(stop))));
    }
    let (pool, clock) = (setup.store.pool().clone(), setup.clock.clone());
    tasks.push(tokio::spawn(event_store::lease::while_held(
        leases.want(format!("worker:saga-timers:{}", saga.name())),
        stopping(stop),
        move |cancel| {
            sagas::TimerWorker::new(pool.clone(), saga.clone(), clock.clone())
                .run(cancel.cancelled_owned())
        },
    )));
    Ok(())
}
