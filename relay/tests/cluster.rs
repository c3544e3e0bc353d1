//! The relay against a three-node JetStream cluster, its events stream at three replicas:
//! one node is SIGKILLed while writers append and the relay publishes, then started again, and
//! a consumer still receives every committed event once, in log order — nothing the relay
//! counted as published was lost with the node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use async_nats::jetstream;
use event_store::testing::TestDatabase;
use relay::Relay;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

/// One `nats-server` of the test's cluster, killed when dropped.
struct Node {
    child: Child,
    args: Vec<String>,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(args: &[String]) -> Child {
        Command::new(nats_server())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server (Debian: apt-get install nats-server)")
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn restart(&mut self) {
        self.child = Self::start(&self.args);
    }
}

fn nats_server() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Three JetStream nodes routed to each other on free ports; the client URL of all three.
fn cluster() -> (Vec<Node>, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for n in 0..3 {
        let dir = std::env::temp_dir().join(format!("velka-nats-{id}-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let routes: Vec<String> = (0..3)
            .filter(|other| *other != n)
            .map(|other| format!("nats://127.0.0.1:{}", route_ports[other]))
            .collect();
        let args: Vec<String> = [
            "-a",
            "127.0.0.1",
            "-p",
            &client_ports[n].to_string(),
            "-js",
            "-sd",
            &dir.display().to_string(),
            "--server_name",
            &format!("n{n}-{id}"),
            "--cluster_name",
            &format!("velka-{id}"),
            "--cluster",
            &format!("nats://127.0.0.1:{}", route_ports[n]),
            "--routes",
            &routes.join(","),
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        nodes.push(Node {
            child: Node::start(&args),
            args,
            _dir: TempDir(dir),
        });
    }
    let urls: Vec<String> = client_ports
        .iter()
        .map(|port| format!("nats://127.0.0.1:{port}"))
        .collect();
    (nodes, urls.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_run_loses_nothing_the_relay_published() {
    let (mut nodes, urls) = cluster();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(urls.split(',').collect::<Vec<_>>())
        .await
        .unwrap();
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut config = unique_config();
    config.replicas = 3;

    // The relay creates its stream at three replicas once the cluster has a leader (it retries
    // until then).
    let relay = Relay::new(store.clone(), client.clone(), config.clone());
    let status = relay.status();
    let task = tokio::spawn(relay.run(std::future::pending()));
    let jetstream = jetstream::new(client.clone());
    eventually(
        "the stream at three replicas",
        Duration::from_secs(60),
        || {
            let jetstream = jetstream.clone();
            let name = config.stream_name.clone();
            async move {
                match jetstream.get_stream(&name).await {
                    Ok(mut stream) => stream
                        .info()
                        .await
                        .is_ok_and(|info| info.config.num_replicas == 3),
                    Err(_) => false,
                }
            }
        },
    )
    .await;

    let writers = tokio::spawn({
        let store = store.clone();
        let streams: Vec<String> = (0..6)
            .map(|_| format!("trip-{}", uuid::Uuid::now_v7()))
            .collect();
        async move { write_concurrently(&store, &streams, 4, 120, Duration::from_millis(4)).await }
    });
    // Mid-run: the node leading the stream dies; publishing goes on with the other two before
    // it comes back.
    eventually("some events published", Duration::from_secs(60), || {
        let status = status.clone();
        async move { status.snapshot().events_applied >= 100 }
    })
    .await;
    let published_before = status.snapshot().events_applied;
    // The stream's leader: with one replica, publishing would stop until it came back.
    let leader = jetstream
        .get_stream(&config.stream_name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .cluster
        .as_ref()
        .and_then(|cluster| cluster.leader.clone())
        .expect("the stream has a leader");
    let killed = (0..3)
        .find(|n| leader.starts_with(&format!("n{n}-")))
        .expect("the leader is one of the nodes");
    nodes[killed].kill();
    eventually(
        "publishing goes on with two nodes",
        Duration::from_secs(60),
        || {
            let status = status.clone();
            async move { status.snapshot().events_applied >= published_before + 100 }
        },
    )
    .await;
    nodes[killed].restart();
    writers.await.unwrap();

    let head = settled_head(&store).await;
    assert!(
        status
            .wait_for_position(head, Duration::from_secs(60))
            .await,
        "the relay catches up with the log: {:?}",
        status.snapshot()
    );
    task.abort();
    let log = whole_log(&store).await;
    let received = read_stream(&client, &config.stream_name).await;
    delete_stream(&client, &config.stream_name).await;
    check_exactly_once_in_order(&config.prefix, &log, &received).unwrap();
    assert!(
        log.len() >= 400,
        "the writers appended {} events",
        log.len()
    );
    eprintln!(
        "{} events relayed through a 3-node cluster, the stream's leader ({leader}) killed \
         and restarted mid-run",
        log.len()
    );
}
