//! The NATS entry points: internal services send any command as request/reply on
//! `<prefix>.commands.<operation_id>`, and telematics units publish readings on
//! `<prefix>.telemetry.<vehicle_id>`.
//!
//! A NATS message is turned into the very HTTP request the route expects and handed to the same
//! axum router in-process, so validation, authorization (the `Authorization: Bearer` header of
//! the message), idempotency (`Idempotency-Key`) and error answers are exactly those of HTTP —
//! there is no second implementation to drift. Command names are the POST routes' OpenAPI
//! `operationId`s; path parameters (`trip_id`) are fields of the JSON payload, the rest of the
//! payload is the body.
//!
//! Telemetry messages carry no token: units authenticate to NATS itself, and the bridge submits
//! their readings as `service:<telematics subject>`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, Request, header};
use futures::StreamExt;
use http_edge::ProblemType;
use http_edge::{Role, TokenKeys};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The queue group all Velka instances share, so each message is handled once.
const QUEUE_GROUP: &str = "velka";
/// Messages handled at once; more wait in the subscription's buffer.
const MAX_IN_FLIGHT: usize = 256;
/// Telemetry lanes: readings of one vehicle always take the same lane and are applied in order.
const TELEMETRY_LANES: usize = 32;
/// Readings waiting in one lane before the subscription is slowed down.
const LANE_CAPACITY: usize = 1024;

/// The lane of a telemetry subject (stable for a vehicle).
fn lane_of(subject: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    subject.hash(&mut hasher);
    (hasher.finish() % TELEMETRY_LANES as u64) as usize
}

/// Request headers carried from a NATS message to the HTTP request.
const CARRIED_HEADERS: [&str; 3] = ["authorization", "idempotency-key", "x-correlation-id"];
/// Answer headers carried back in the reply.
const ANSWER_HEADERS: [&str; 4] = [
    "content-type",
    "idempotent-replayed",
    "x-correlation-id",
    "velka-position",
];

/// A POST route, as a NATS command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRoute {
    /// The path template, `/v1/trips/{trip_id}/park`.
    pub path: String,
    /// Its parameters, in order: `["trip_id"]`.
    pub params: Vec<String>,
}

impl CommandRoute {
    fn new(path: &str) -> Self {
        let params = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        Self {
            path: path.to_owned(),
            params,
        }
    }
}

/// Every POST operation of the document, by operation id.
pub fn command_routes(document: &utoipa::openapi::OpenApi) -> HashMap<String, CommandRoute> {
    document
        .paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let operation = item.post.as_ref()?;
            Some((operation.operation_id.clone()?, CommandRoute::new(path)))
        })
        .collect()
}

/// Where the bridge listens and what it calls.
#[derive(Clone, Debug)]
pub struct NatsBridge {
    /// A connected (or connecting) client.
    pub client: async_nats::Client,
    /// Subject prefix, `velka` by default; lets several systems share one NATS.
    pub prefix: String,
    /// The whole HTTP application.
    pub router: Router,
    /// Commands by name.
    pub commands: Arc<HashMap<String, CommandRoute>>,
    /// Signs the token telemetry is submitted with.
    pub keys: TokenKeys,
    /// The subject telemetry is submitted as (`service:<this>`).
    pub telematics_subject: String,
}

/// A bad NATS message: answered as a problem, like a bad HTTP request.
fn problem(kind: ProblemType, detail: String, field: Option<&str>) -> Value {
    let status = kind.status();
    let mut problem = http_edge::Problem::new(kind, detail);
    if let Some(field) = field {
        problem = problem.with_field(field);
    }
    json!({
        "status": status.as_u16(),
        "headers": { "content-type": "application/problem+json" },
        "body": problem,
    })
}

impl NatsBridge {
    /// Subscribes and serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), async_nats::SubscribeError> {
        let commands_subject = format!("{}.commands.*", self.prefix);
        let telemetry_subject = format!("{}.telemetry.*", self.prefix);
        let mut commands = self
            .client
            .queue_subscribe(commands_subject.clone(), QUEUE_GROUP.to_owned())
            .await?;
        let mut telemetry = self
            .client
            .queue_subscribe(telemetry_subject.clone(), QUEUE_GROUP.to_owned())
            .await?;
        tracing::info!(commands = %commands_subject, telemetry = %telemetry_subject, "NATS entry points listening");
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        // A unit's readings must be applied in the order it sent them (a lock after a move is
        // not an unlock before it), so telemetry goes through lanes, one per vehicle hash, each
        // handled in order; commands are independent requests and run concurrently.
        let lanes: Vec<_> = (0..TELEMETRY_LANES)
            .map(|_| {
                let (sender, mut receiver) =
                    tokio::sync::mpsc::channel::<async_nats::Message>(LANE_CAPACITY);
                let bridge = self.clone();
                tokio::spawn(async move {
                    while let Some(message) = receiver.recv().await {
                        bridge.handle(message, true).await;
                    }
                });
                sender
            })
            .collect();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(message) = commands.next() => {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break;
                    };
                    let bridge = self.clone();
                    tokio::spawn(async move {
                        bridge.handle(message, false).await;
                        drop(permit);
                    });
                }
                Some(message) = telemetry.next() => {
                    let lane = lane_of(message.subject.as_str());
                    // A full lane applies back-pressure to the subscription rather than
                    // dropping readings.
                    if lanes[lane].send(message).await.is_err() {
                        break;
                    }
                }
                else => break,
            }
        }
        let _ = commands.unsubscribe().await;
        let _ = telemetry.unsubscribe().await;
        Ok(())
    }

    async fn handle(&self, message: async_nats::Message, is_telemetry: bool) {
        let subject = message.subject.to_string();
        let answer = if is_telemetry {
            self.telemetry(&subject, &message).await
        } else {
            self.command(&subject, &message).await
        };
        let status = answer["status"].as_u64().unwrap_or(0);
        metrics::counter!(
            "velka_nats_messages_total",
            "kind" => if is_telemetry { "telemetry" } else { "command" },
            "status" => status.to_string()
        )
        .increment(1);
        match &message.reply {
            Some(reply) => {
                let payload = serde_json::to_vec(&answer).unwrap_or_default();
                if let Err(error) = self.client.publish(reply.clone(), payload.into()).await {
                    tracing::warn!(%error, %subject, "could not reply on NATS");
                }
            }
            None if status >= 400 => {
                tracing::warn!(%subject, answer = %answer, "a NATS message without a reply subject was refused");
            }
            None => {}
        }
    }

    async fn command(&self, subject: &str, message: &async_nats::Message) -> Value {
        let name = subject
            .strip_prefix(&format!("{}.commands.", self.prefix))
            .unwrap_or_default();
        let Some(route) = self.commands.get(name) else {
            let mut known: Vec<&String> = self.commands.keys().collect();
            known.sort();
            return problem(
                ProblemType::UnknownCommand,
                format!("no command {name:?}; known commands: {known:?}"),
                None,
            );
        };
        let payload = match parse_object(&message.payload) {
            Ok(payload) => payload,
            Err(answer) => return answer,
        };
        let (path, body) = match fill_path(route, payload) {
            Ok(parts) => parts,
            Err(answer) => return answer,
        };
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(headers) = &message.headers {
            // NATS header names keep their case; HTTP's are case-insensitive.
            for (name, values) in headers.iter() {
                let name: &str = name.as_ref();
                let lower = name.to_ascii_lowercase();
                if let (Some(carried), Some(value)) = (
                    CARRIED_HEADERS.iter().find(|c| **c == lower),
                    values.first(),
                ) {
                    request = request.header(*carried, value.as_str());
                }
            }
        }
        self.call(request, body).await
    }

    async fn telemetry(&self, subject: &str, message: &async_nats::Message) -> Value {
        let vehicle_id = subject
            .strip_prefix(&format!("{}.telemetry.", self.prefix))
            .unwrap_or_default();
        if vehicle_id.is_empty() || vehicle_id.contains(['/', '?', '#', '%']) {
            return problem(
                ProblemType::VehicleNotFound,
                format!("{vehicle_id:?} is not a vehicle id"),
                Some("vehicle_id"),
            );
        }
        let body = match parse_object(&message.payload) {
            Ok(payload) => Value::Object(payload),
            Err(answer) => return answer,
        };
        let token = match self.keys.issue(
            Role::Service,
            &self.telematics_subject,
            chrono::Duration::minutes(5),
            chrono::Utc::now(),
        ) {
            Ok(token) => token,
            Err(error) => {
                return problem(ProblemType::Internal, error.to_string(), None);
            }
        };
        let request = Request::post(format!("/v1/vehicles/{vehicle_id}/telemetry"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        self.call(request, body).await
    }

    /// Runs the request through the HTTP application and packs its answer.
    async fn call(&self, request: axum::http::request::Builder, body: Value) -> Value {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let request = match request.body(Body::from(bytes)) {
            Ok(request) => request,
            Err(error) => {
                return problem(ProblemType::MalformedMessage, error.to_string(), None);
            }
        };
        let Ok(response) = self.router.clone().oneshot(request).await;
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for name in ANSWER_HEADERS {
            if let Some(value) = response
                .headers()
                .get(HeaderName::from_static(name))
                .and_then(|v| v.to_str().ok())
            {
                headers.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        let body = match axum::body::to_bytes(response.into_body(), 4 << 20).await {
            Ok(bytes) if bytes.is_empty() => Value::Null,
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
            Err(error) => Value::String(error.to_string()),
        };
        json!({ "status": status, "headers": headers, "body": body })
    }
}

/// The payload as a JSON object (empty payload = `{}`).
fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, Value> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(problem(
            ProblemType::MalformedBody,
            "the payload must be a JSON object".to_owned(),
            None,
        )),
        Err(error) => Err(problem(ProblemType::MalformedBody, error.to_string(), None)),
    }
}

/// Takes the route's path parameters out of the payload; the rest is the body.
pub fn fill_path(
    route: &CommandRoute,
    mut payload: Map<String, Value>,
) -> Result<(String, Value), Value> {
    let mut path = route.path.clone();
    for param in &route.params {
        let value = match payload.remove(param) {
            Some(Value::String(value)) if !value.is_empty() => value,
            Some(_) | None => {
                return Err(problem(
                    ProblemType::MalformedBody,
                    format!(
                        "the payload needs {param:?}, a string: it is part of the route's path"
                    ),
                    Some(param),
                ));
            }
        };
        if value.contains(['/', '?', '#', '%']) {
            return Err(problem(
                ProblemType::MalformedBody,
                format!("{param:?} must not contain '/', '?', '#' or '%'"),
                Some(param),
            ));
        }
        path = path.replace(&format!("{{{param}}}"), &value);
    }
    Ok((path, Value::Object(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_come_out_of_the_payload() {
        let route = CommandRoute::new("/v1/trips/{trip_id}/park");
        assert_eq!(route.params, ["trip_id"]);
        let payload = json!({"trip_id": "abc", "note": "x"});
        let Value::Object(payload) = payload else {
            unreachable!()
        };
        let (path, body) = fill_path(&route, payload).unwrap();
        assert_eq!(path, "/v1/trips/abc/park");
        assert_eq!(body, json!({"note": "x"}));
    }

    #[test]
    fn a_missing_or_sneaky_path_parameter_is_refused_naming_it() {
        let route = CommandRoute::new("/v1/trips/{trip_id}/park");
        let answer = fill_path(&route, Map::new()).unwrap_err();
        assert_eq!(answer["status"], 400);
        assert_eq!(answer["body"]["field"], "trip_id");
        let Value::Object(sneaky) = json!({"trip_id": "../customers"}) else {
            unreachable!()
        };
        assert_eq!(
            fill_path(&route, sneaky).unwrap_err()["body"]["field"],
            "trip_id"
        );
    }

    #[test]
    fn payloads_must_be_objects() {
        assert!(parse_object(b"").unwrap().is_empty());
        assert_eq!(parse_object(b"[1]").unwrap_err()["status"], 400);
        assert_eq!(
            parse_object(b"{nope").unwrap_err()["body"]["rule"],
            "malformed-body"
        );
    }
}
