//! What the relay's tests share: a NATS client, unique subjects and streams, writers that
//! append through the store, and the checker that compares the JetStream stream with the log.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use async_nats::jetstream;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use chrono::{DateTime, Utc};
use event_store::{
    AppendError, AppendRequest, Claims, EventStore, ExpectedVersion, LogPosition, Metadata,
    NewEvent, RecordedEvent, StreamWrite,
};
use futures::StreamExt;
use relay::{EventMessage, RelayConfig};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The NATS server the tests publish to.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

pub async fn nats() -> async_nats::Client {
    async_nats::connect(nats_url())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot connect to NATS at {} ({error}); start nats-server with JetStream (-js)",
                nats_url()
            )
        })
}

/// A relay configuration on subjects and a stream no other test (or earlier run) uses, with
/// small batches so that a run has many of them and quick retries.
pub fn unique_config() -> RelayConfig {
    let id = Uuid::new_v4().simple().to_string();
    let mut config = RelayConfig::new(format!("test{id}"));
    config.stream_name = format!("VELKA_TEST_{id}");
    config.name = "test".to_owned();
    // A stream left behind by a failed run empties itself.
    config.max_age = Duration::from_secs(3600);
    config.runner.batch_size = 25;
    config.runner.idle_poll = Duration::from_millis(20);
    config.runner.retry_initial = Duration::from_millis(20);
    config.runner.retry_max = Duration::from_millis(500);
    config
}

fn at() -> DateTime<Utc> {
    "2026-11-26T00:00:00Z".parse().unwrap()
}

/// One append of `count` events to `stream_id`, expecting it to hold `expected` events.
pub fn append_request(stream_id: &str, expected: ExpectedVersion, count: u64) -> AppendRequest {
    AppendRequest {
        writes: vec![StreamWrite {
            stream_id: stream_id.to_owned(),
            expected,
            events: (0..count)
                .map(|n| NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "TestHappened".to_owned(),
                    schema_version: 1,
                    data: json!({ "n": n }),
                    occurred_at: at(),
                })
                .collect(),
        }],
        metadata: Metadata {
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "test".to_owned(),
            command_id: None,
        },
        recorded_at: at(),
        claims: Claims::default(),
        result: None,
    }
}

/// `writers` concurrent tasks, each making `appends` appends of 1 to 3 events to streams picked
/// from `streams`, pausing `pace` between appends so that the relay runs while they write.
pub async fn write_concurrently(
    store: &EventStore,
    streams: &[String],
    writers: u64,
    appends: u64,
    pace: Duration,
) {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        let streams = streams.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut seed = writer.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            // What this writer believes each stream holds; a conflict tells it better.
            let mut versions: HashMap<String, u64> = HashMap::new();
            for _ in 0..appends {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let stream = &streams[(seed % streams.len() as u64) as usize];
                let count = 1 + seed % 3;
                // Like a command: append at the version seen, and on a conflict try again at
                // the version found. (With `ExpectedVersion::Any` two writers of one stream can
                // commit its versions in the opposite order of their transaction ids, and the
                // log would then deliver them out of version order.)
                let mut attempts = 0;
                loop {
                    let seen = versions.get(stream).copied().unwrap_or(0);
                    let request = append_request(stream, ExpectedVersion::after(seen), count);
                    match store.append(&request).await {
                        Ok(_) => {
                            versions.insert(stream.clone(), seen + count);
                            break;
                        }
                        Err(AppendError::WrongExpectedVersion { actual, .. })
                            if attempts < 1000 =>
                        {
                            attempts += 1;
                            versions.insert(stream.clone(), u64::try_from(actual).unwrap_or(0));
                        }
                        Err(other) => panic!("append failed: {other}"),
                    }
                }
                tokio::time::sleep(pace).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// The whole log, in the order the store delivers it.
pub async fn whole_log(store: &EventStore) -> Vec<RecordedEvent> {
    let mut after = LogPosition::START;
    let mut events = Vec::new();
    loop {
        let page = store.read_log(after, 1000).await.unwrap();
        let Some(last) = page.last() else {
            return events;
        };
        after = last.log_position;
        events.extend(page);
    }
}

/// The log's head once every committed event can be delivered. The store delivers only below
/// the oldest transaction in flight anywhere in the PostgreSQL cluster (other tests' included),
/// so right after the writers stop the head may still be short of them; wait until the log
/// holds every event the table does.
pub async fn settled_head(store: &EventStore) -> LogPosition {
    let committed = usize::try_from(store.count().await.unwrap()).unwrap();
    eventually(
        "every committed event deliverable",
        Duration::from_secs(60),
        || async { whole_log(store).await.len() == committed },
    )
    .await;
    store.head().await.unwrap()
}

/// A message as a JetStream consumer received it.
#[derive(Debug)]
pub struct Received {
    pub subject: String,
    pub message_id: Option<String>,
    pub event: EventMessage,
}

/// Every message of the JetStream stream `name`, in stream order, through an ordered consumer.
pub async fn read_stream(client: &async_nats::Client, name: &str) -> Vec<Received> {
    let jetstream = jetstream::new(client.clone());
    let mut stream = jetstream.get_stream(name).await.unwrap();
    let count = stream.info().await.unwrap().state.messages;
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut received = Vec::new();
    while (received.len() as u64) < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the consumer delivers every stored message")
            .expect("the consumer's stream does not end")
            .unwrap();
        let message_id = message
            .message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(|value| value.as_str().to_owned());
        received.push(Received {
            subject: message.message.subject.to_string(),
            message_id,
            event: serde_json::from_slice(&message.message.payload).unwrap(),
        });
    }
    received
}

pub async fn delete_stream(client: &async_nats::Client, name: &str) {
    jetstream::new(client.clone())
        .delete_stream(name)
        .await
        .unwrap();
}

/// Deletes the JetStream stream `0` when dropped, if it still exists: a failing test leaves
/// nothing behind on the shared NATS server.
pub struct StreamGuard(pub String);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        // Drop runs inside or outside a runtime; a thread with its own runtime works in both.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let client = async_nats::connect(nats_url()).await.ok()?;
                let _ = jetstream::new(client).delete_stream(&name).await;
                Some(())
            })
        })
        .join();
    }
}

/// Checks that `received` is exactly `log`: every committed event once, in log order, on its
/// subject, with its id as `Nats-Msg-Id`, and each stream's versions one after another.
pub fn check_exactly_once_in_order(
    prefix: &str,
    log: &[RecordedEvent],
    received: &[Received],
) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for message in received {
        let event = &message.event;
        if !seen.insert(event.event_id) {
            return Err(format!("event {} received twice", event.event_id));
        }
        let last = versions.entry(event.stream_id.as_str()).or_insert(0);
        if event.stream_version != *last + 1 {
            return Err(format!(
                "stream {}: version {} received after {}",
                event.stream_id, event.stream_version, last
            ));
        }
        *last = event.stream_version;
    }
    for (index, (committed, message)) in log.iter().zip(received).enumerate() {
        if committed.event_id != message.event.event_id {
            return Err(format!(
                "message {index} is event {} but the log has {} there",
                message.event.event_id, committed.event_id
            ));
        }
        let subject = relay::message::subject(prefix, committed);
        if message.subject != subject {
            return Err(format!(
                "event {} on {} instead of {subject}",
                committed.event_id, message.subject
            ));
        }
        if message.message_id != Some(committed.event_id.to_string()) {
            return Err(format!(
                "event {} has Nats-Msg-Id {:?}",
                committed.event_id, message.message_id
            ));
        }
        if message.event != relay::EventMessage::of(committed) {
            return Err(format!("event {} changed on the way", committed.event_id));
        }
    }
    if received.len() != log.len() {
        return Err(format!(
            "{} messages in the stream for {} committed events",
            received.len(),
            log.len()
        ));
    }
    Ok(())
}

/// Polls `condition` until it holds; panics naming `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
