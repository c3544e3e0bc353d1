//! `velka serve` and `velka migrate`: connect (creating the database if needed), migrate, and
//! for serve, run the APIs, projectors, the NATS event relay and the audit chain's sealer in one
//! process until SIGTERM or Ctrl-C.

use crate::config::{ClockKind, Global, ServeArgs};
use anyhow::Context;
use event_store::EventStore;
use event_store::clock::{Clock, ManualClock, SystemClock};
use event_store::database::{self, ConnectError};
use std::sync::Arc;

/// The audit chain's name: the sealer's checkpoint, and what `velka audit verify` checks.
pub const CHAIN: &str = "chain";

/// How to get PostgreSQL going, for the message when it cannot be reached.
const START_POSTGRES_HINT: &str = "start PostgreSQL (on Debian: \
    `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`; elsewhere: \
    `sudo systemctl start postgresql`), or point DATABASE_URL at a running server";

pub(crate) async fn connect(global: &Global, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
    let pool = database::connect(&global.database_url, max_connections)
        .await
        .map_err(|error| match error {
            ConnectError::Unreachable { .. } => {
                anyhow::anyhow!("{error}\n  hint: {START_POSTGRES_HINT}")
            }
            other => anyhow::Error::new(other),
        })?;
    database::migrate(&pool, &global.database_url).await?;
    Ok(pool)
}

/// `velka migrate`.
pub async fn migrate_only(global: &Global) -> anyhow::Result<()> {
    let pool = connect(global, 2).await?;
    pool.close().await;
    println!(
        "velka: database {} is up to date",
        database::redacted(&global.database_url)
    );
    Ok(())
}

/// `velka projections rebuild NAME` or `--all`: a progress line on stderr, the results on stdout.
pub async fn rebuild(global: &Global, args: crate::config::RebuildArgs) -> anyhow::Result<()> {
    let models = projectors::read_models();
    let chosen: Vec<_> = match &args.name {
        None => models.clone(),
        Some(name) => {
            let Some(projector) = models.iter().find(|p| p.name() == name).cloned() else {
                let names: Vec<&str> = models.iter().map(|p| p.name()).collect();
                anyhow::bail!(
                    "no read model named {name:?}; the read models are: {}",
                    names.join(", ")
                );
            };
            vec![projector]
        }
    };
    let what = args
        .name
        .clone()
        .unwrap_or_else(|| "every read model".to_owned());
    // A connection per read model (each page goes to all of them at once), one to read the next
    // page, one for the codec's keys.
    let pool = connect(global, u32::try_from(chosen.len())? + 2).await?;
    // Read models get personal data decrypted while its key exists, as `serve` gives it them.
    let store = EventStore::new(pool.clone()).with_codec(Arc::new(global.pii_codec(&pool)));
    let started = std::time::Instant::now();
    let every = std::time::Duration::from_millis(500);
    let bar = loadgen::progress::Progress::new(&format!("velka: rebuilding {what}"), None, every);
    let reports = projectors::rebuild::rebuild_all(&store, chosen, args.batch_size, |progress| {
        let elapsed = started.elapsed();
        let rate = progress.events_applied as f64 / elapsed.as_secs_f64().max(1e-3);
        bar.set_length(progress.head);
        bar.set_position(progress.position);
        let (done, total) = (progress.position.max(0), progress.head.max(0));
        let eta = loadgen::progress::eta(done as u64, total as u64, elapsed)
            .map(|eta| format!(", {eta}"))
            .unwrap_or_default();
        bar.set_message(format!(
            "({} events applied, {rate:.0}/s{eta})",
            progress.events_applied
        ));
    })
    .await
    .with_context(|| format!("rebuilding {what}"))?;
    bar.finish();
    pool.close().await;
    for report in reports {
        let rows: Vec<String> = report
            .rows
            .iter()
            .map(|(table, n)| format!("{table}={n}"))
            .collect();
        println!(
            "velka: rebuilt {} in {:.1}s: {} events applied ({} during the switch), now at position {}; rows: {}",
            report.name,
            started.elapsed().as_secs_f64(),
            report.events_applied,
            report.applied_in_switch,
            report.position.position,
            rows.join(" ")
        );
    }
    Ok(())
}

/// `velka segments KIND:NAME --count K`: splits a follower into segments (or makes it whole).
pub async fn segments(global: &Global, args: crate::config::SegmentsArgs) -> anyhow::Result<()> {
    let models = projectors::read_models();
    let splittable: Vec<String> = models
        .iter()
        .filter(|projector| projector.segmentable())
        .map(|projector| format!("projector:{}", projector.name()))
        .chain(["saga:payments", "saga:fines", "saga:kyc"].map(String::from))
        .collect();
    let Some((kind, name)) = args
        .follower
        .split_once(':')
        .filter(|_| splittable.contains(&args.follower))
    else {
        anyhow::bail!(
            "{:?} cannot be split into segments; these can: {}",
            args.follower,
            splittable.join(", ")
        );
    };
    let kind = if kind == "saga" {
        sagas::FOLLOWER_KIND
    } else {
        projectors::FOLLOWER_KIND
    };
    let pool = connect(global, 2).await?;
    let at = event_store::follower::checkpoint::resegment(&pool, kind, name, args.count).await?;
    pool.close().await;
    println!(
        "velka: {} now runs as {} segment(s), each from position {}; start the workers",
        args.follower, args.count, at.position
    );
    Ok(())
}

/// `velka customer erase ID --reason TEXT`: the same erasure as `POST /v1/customers/{id}/erase`,
/// from the command line against the database.
pub async fn erase_customer(
    global: &Global,
    args: crate::config::CustomerEraseArgs,
) -> anyhow::Result<()> {
    let by = match args.by.clone().or_else(|| std::env::var("USER").ok()) {
        Some(by) if !by.trim().is_empty() => by.trim().to_owned(),
        _ => anyhow::bail!("say who erases: --by NAME"),
    };
    anyhow::ensure!(
        !args.reason.trim().is_empty(),
        "--reason must say why the data is erased"
    );
    let pool = connect(global, 2).await?;
    let store = EventStore::new(pool.clone()).with_codec(Arc::new(global.pii_codec(&pool)));
    let kyc = fixtures::kyc().context("loading the KYC rules fixture")?;
    let erasure = command_api::pii::erase::Erasure {
        customer_id: domain::ids::CustomerId(args.id),
        reason: args.reason.clone(),
        actor: format!("operator:{by}"),
        correlation_id: uuid::Uuid::now_v7(),
        idempotency: None,
    };
    let erased = command_api::pii::erase::erase(&store, &SystemClock, &kyc, &erasure)
        .await
        .with_context(|| format!("erasing customer {}", args.id))?;
    pool.close().await;
    println!(
        "velka: erased customer {} at {} (position {}); their key is destroyed",
        args.id,
        erased.erased_at.to_rfc3339(),
        erased.position.unwrap_or_default()
    );
    Ok(())
}

/// `velka serve`.
pub async fn run(global: &Global, args: ServeArgs) -> anyhow::Result<()> {
    event_store::crash::arm(args.crash_at.iter().cloned());
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let role = args.role;
    anyhow::ensure!(
        !args.demo || role.serves_api(),
        "--demo drives traffic through the API: run it with --role all or api, not worker"
    );
    let pool = connect(global, args.db_connections).await?;
    // Which process runs each follower and singleton worker, when several share the database.
    let leases = event_store::lease::Leases::new(
        pool.clone(),
        (args.worker_id.clone()).unwrap_or_else(event_store::lease::holder_name),
        std::time::Duration::from_millis(args.lease_ttl_ms),
    );
    // Everything that reads events for their meaning (commands, projectors, queries, sagas) sees
    // personal data decrypted while the customer's key exists; what carries events outside
    // (the NATS relay) or hashes them as stored (the audit chain) reads them as stored.
    // One store (one log tail, one stream cache, both holding events as stored), seen two ways.
    let raw_store = EventStore::with_stream_cache(pool.clone(), args.stream_cache_events)
        .with_state_cache(args.state_cache_streams)
        .with_group_commit(
            usize::from(args.append_group),
            usize::from(args.append_writers),
        )
        .with_leases(leases.clone());
    let store = raw_store
        .clone()
        .with_codec(Arc::new(global.pii_codec(&pool)));
    let (keys, development_secret) = global.token_keys();
    if development_secret {
        tracing::warn!(
            "VELKA_JWT_SECRET is not set: tokens are signed with the public development secret"
        );
    }
    let (clock, manual_clock): (Arc<dyn Clock>, Option<Arc<ManualClock>>) = match args.clock {
        ClockKind::System => (Arc::new(SystemClock), None),
        ClockKind::Manual => {
            let manual = Arc::new(ManualClock::starting_now());
            tracing::warn!(now = %manual.now(), "manual clock: time moves only by POST /v1/admin/clock");
            (manual.clone(), Some(manual))
        }
    };
    let city = fixtures::moscow().context("loading the city fixture")?;
    let tariff = city.standard_tariff()?.clone();
    let fees = fixtures::fees().context("loading the fee schedule")?;
    let standard_terms = city.standard_terms()?;
    let standard_gbfs_terms = standard_terms.clone();

    let shutdown = projectors::Shutdown::new();
    let stopping = || crate::saga_host::stopping(&shutdown);
    // Every worker's task, awaited on the way out.
    let mut workers: Vec<tokio::task::JoinHandle<()>> =
        vec![tokio::spawn(leases.clone().run(stopping()))];
    let own_thread = (!args.shared_projector_runtime).then_some(global.database_url.as_str());
    let projections = if role.runs_workers() {
        projectors::start_on(store.clone(), shutdown.clone(), own_thread).await?
    } else {
        projectors::Projections::none()
    };

    // The payment gateway: configured, or (for the demo) a simulator in this process.
    let mut demo_gateway = None;
    let gateway_url = match (&args.gateway_url, args.demo) {
        (Some(url), _) => Some(url.clone()),
        (None, true) => {
            let simulator = fixtures::gateway::start(
                "127.0.0.1:0".parse().context("the simulator's address")?,
                fixtures::gateway::GatewayConfig::default(),
            )
            .await
            .context("starting the demo's payment gateway simulator")?;
            let url = simulator.url();
            demo_gateway = Some(simulator);
            Some(url)
        }
        (None, false) => None,
    };
    let payments = match &gateway_url {
        Some(url) => Some(payments::Payments::new(
            payments::GatewayClient::new(
                url,
                std::time::Duration::from_millis(args.gateway_timeout_ms),
            )
            .map_err(|e| anyhow::anyhow!("VELKA_GATEWAY_URL {url}: {e}"))?,
            store.clone(),
            clock.clone(),
            payments::PaymentsConfig {
                hold_kopecks: domain::money::Kopecks(args.trip_hold_kopecks),
                grace: chrono::Duration::seconds(i64::from(args.hold_grace_s)),
            },
        )),
        None => None,
    };

    let command_context = command_api::CommandContext {
        store: store.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        manual_clock,
        area: Arc::new(city.operating_area.clone()),
        tariff: Arc::new(tariff),
        penalty_tariff: Arc::new(fees.penalty_amounts_kopecks),
        fine_admin_fee_kopecks: fees.fine_admin_fee_kopecks,
        kyc_webhook_secret: Arc::from(args.kyc_webhook_secret.as_bytes()),
        kyc: Arc::new(fixtures::kyc().context("loading the KYC rules fixture")?),
        fleet: Arc::new(fixtures::fleet().context("loading the fleet fixture")?),
        pricing: Arc::new(command_api::Pricing {
            policy: city.pricing.clone(),
            standard: standard_terms,
        }),
        payments: payments.clone(),
    };
    // Reservations expire by the injected clock, through the command pipeline. Card holds no
    // trip took are let go: those Velka noted (the sweeper) and those it finds open at the
    // gateway unexplained (the reconciler). Each in one worker at a time.
    if role.runs_workers() {
        let context = command_context.clone();
        workers.push(tokio::spawn(event_store::lease::while_held(
            leases.want("worker:reservation-expiry"),
            stopping(),
            move |cancel| {
                command_api::expiry::ExpiryWorker::new(context.clone())
                    .run(cancel.cancelled_owned())
            },
        )));
    }
    if let (true, Some(payments)) = (role.runs_workers(), &payments) {
        let sweeper = payments.clone();
        workers.push(tokio::spawn(event_store::lease::while_held(
            leases.want("worker:hold-sweeper"),
            stopping(),
            move |cancel| payments::HoldSweeper::new(sweeper.clone()).run(cancel.cancelled_owned()),
        )));
        let (reconciler, poll) = (payments.clone(), args.hold_reconcile_ms);
        workers.push(tokio::spawn(event_store::lease::while_held(
            leases.want("worker:hold-reconciler"),
            stopping(),
            move |cancel| {
                payments::HoldReconciler::new(reconciler.clone())
                    .with_poll(std::time::Duration::from_millis(poll))
                    .run(cancel.cancelled_owned())
            },
        )));
    }
    let (commands, commands_doc) = command_api::router(command_context);
    let (queries, queries_doc) = query_api::router(query_api::QueryContext {
        pool: pool.clone(),
        store: store.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        pricing: Arc::new(city.pricing.clone()),
        gbfs: Arc::new(query_api::gbfs::GbfsConfig {
            system_id: city.system_id.clone(),
            name: format!("Velka {}", city.city),
            operator: "Velka".to_owned(),
            timezone: city.timezone.clone(),
            feed_contact_email: args.gbfs_contact_email.clone(),
            public_url: args.public_url.clone(),
            area: city.operating_area.clone(),
            tariff: standard_gbfs_terms.tariff,
            waiting: standard_gbfs_terms.waiting,
            vehicle_ids: args.gbfs_vehicle_ids(global)?,
            published_at: clock.now(),
        }),
    });
    let (ops, ops_doc) = crate::ops::router(crate::ops::OpsContext {
        pool: pool.clone(),
        store: store.clone(),
        projections: projections.clone(),
        prometheus,
        keys: keys.clone(),
        clock: clock.clone(),
    });
    let (audits, audits_doc) = audit::http::router(audit::http::AuditContext {
        pool: pool.clone(),
        store: raw_store.clone(),
        reader: store.clone(),
        keys: keys.clone(),
        clock: clock.clone(),
        gateway_url: gateway_url.clone(),
    });
    let document =
        http_edge::openapi::document(vec![commands_doc, queries_doc, audits_doc, ops_doc]);
    let operations = ops.clone();
    let app = commands
        .merge(queries)
        .merge(audits)
        .merge(ops)
        .merge(http_edge::openapi::document_router(&document)?)
        .fallback(http_edge::edge::no_route)
        .method_not_allowed_fallback(http_edge::edge::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            http_edge::admission::Admission::new(args.max_in_flight as usize),
            http_edge::admission::admit,
        ))
        .layer(axum::middleware::from_fn(http_edge::edge::observe));

    // A worker answers only health, metrics and the admin views; its sagas still send commands
    // through the whole router, in-process.
    let public = if role.serves_api() {
        app.clone()
    } else {
        operations
            .fallback(http_edge::edge::no_route)
            .layer(axum::middleware::from_fn(http_edge::edge::observe))
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it? set --addr or VELKA_ADDR)",
                args.addr
            )
        })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // The first line on stdout says where we listen, so scripts and tests can find a port 0.
    println!("velka: listening on http://{addr}");
    tracing::info!(%addr, ?role, holder = leases.holder(),
        database = %database::redacted(&global.database_url), "serving");

    // One stop signal for the entry points (HTTP, NATS); the projectors stop after them, so
    // that every command accepted before the signal is projected before we exit.
    let stop = projectors::Shutdown::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.trigger();
        }
    });
    let nats = if args.no_nats || !role.serves_api() {
        None
    } else {
        Some(start_nats(&args, app.clone(), &document, keys.clone(), stop.clone()).await?)
    };
    // The relay stops with the projectors, after the entry points, so that the events of every
    // command accepted before the signal are published before we exit.
    if !(args.no_nats || args.no_nats_relay || !role.runs_workers()) {
        workers.push(start_relay(&args, raw_store.clone(), shutdown.clone()).await?);
    }

    // The sagas: fine matching always; payments with a gateway; KYC with a provider.
    let saga_stop = projectors::Shutdown::new();
    let kyc_client = match &args.kyc_provider_url {
        Some(url) => {
            let public = args
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}"));
            let callback = format!("{}/v1/webhooks/kyc", public.trim_end_matches('/'));
            Some(
                sagas::kyc::KycProviderClient::new(
                    url,
                    &callback,
                    store.clone(),
                    std::time::Duration::from_secs(10),
                )
                .with_context(|| format!("VELKA_KYC_PROVIDER_URL {url}"))?,
            )
        }
        None => None,
    };
    if let Some(gateway) = &gateway_url {
        tracing::info!(gateway, "payments: holds at trip start, the payment saga");
    }
    let saga_tasks = if !role.runs_workers() {
        Vec::new()
    } else {
        crate::saga_host::start(
            crate::saga_host::SagaSetup {
                store: store.clone(),
                clock: clock.clone(),
                payments: payments.is_some(),
                kyc: kyc_client.as_ref().map(|_| sagas::kyc::KycSaga {
                    deadline: chrono::Duration::hours(i64::from(args.kyc_deadline_hours)),
                }),
                sink: Arc::new(crate::saga_host::Sink::new(
                    app.clone(),
                    &document,
                    keys.clone(),
                    payments.as_ref().map(|payments| payments.gateway().clone()),
                    kyc_client,
                )),
                retry_initial: std::time::Duration::from_millis(args.saga_retry_ms),
            },
            &leases,
            saga_stop.clone(),
        )
        .await?
    };
    // The sealer stops with the projectors too, so the events of the last commands are sealed.
    if role.runs_workers() {
        workers.push(start_sealer(&args, raw_store, clock.clone(), shutdown.clone()).await?);
    }

    if args.demo {
        let keys = keys.clone();
        let demo = loadgen::demo::Demo {
            cars: args.demo_cars as usize,
            customers: args.demo_customers as usize,
            rate: args.demo_rate,
        };
        anyhow::ensure!(
            demo.rate.is_finite() && (0.0..=10_000.0).contains(&demo.rate),
            "VELKA_DEMO_RATE must be 0 to 10000 requests per second"
        );
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(error) = loadgen::demo::run(addr, &keys, demo, stop.triggered()).await {
                tracing::error!("demo failed: {:#}", anyhow::Error::from(error));
            }
        });
    }

    axum::serve(listener, public)
        .with_graceful_shutdown({
            let stop = stop.clone();
            async move { stop.triggered().await }
        })
        .await
        .context("serving HTTP")?;
    if let Some(nats) = nats {
        let _ = nats.await;
    }
    tracing::info!("stopping the sagas");
    saga_stop.trigger();
    for task in saga_tasks {
        if let Err(error) = task.await {
            tracing::warn!(%error, "a saga task ended abnormally");
        }
    }
    tracing::info!("stopping projectors, the relay, the sealer and the other workers");
    shutdown.trigger();
    projections.stopped().await;
    for worker in workers {
        if let Err(error) = worker.await {
            tracing::warn!(%error, "a worker ended abnormally");
        }
    }
    pool.close().await;
    if let Some(simulator) = demo_gateway {
        let _ = simulator.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Connects to NATS (in the background if it is not up yet) and serves the command and
/// telemetry entry points until shutdown.
async fn start_nats(
    args: &ServeArgs,
    app: axum::Router,
    document: &utoipa::openapi::OpenApi,
    keys: http_edge::TokenKeys,
    stop: projectors::Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    anyhow::ensure!(
        !args.nats_prefix.is_empty()
            && args
                .nats_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "VELKA_NATS_PREFIX must be letters, digits, '_' or '-' (one subject token)"
    );
    let client = async_nats::ConnectOptions::new()
        .name("velka")
        .retry_on_initial_connect()
        .connect(args.nats_servers())
        .await
        .with_context(|| format!("NATS_URL {} is not usable", args.nats_url))?;
    let bridge = command_api::nats::NatsBridge {
        client,
        prefix: args.nats_prefix.clone(),
        router: app,
        commands: Arc::new(command_api::nats::command_routes(document)),
        keys,
        telematics_subject: "telematics".to_owned(),
    };
    let url = args.nats_url.clone();
    Ok(tokio::spawn(async move {
        if let Err(error) = bridge.serve(async move { stop.triggered().await }).await {
            tracing::error!(%error, url, "NATS entry points stopped");
        }
    }))
}

/// Publishes every committed event to the JetStream stream `<PREFIX>_EVENTS` on
/// `<prefix>.events.<category>.<stream_id>` until shutdown. If NATS is down the relay keeps
/// retrying from its checkpoint with backoff; it never stops the server.
async fn start_relay(
    args: &ServeArgs,
    store: EventStore,
    shutdown: projectors::Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = async_nats::ConnectOptions::new()
        .name("velka-relay")
        .retry_on_initial_connect()
        .connect(args.nats_servers())
        .await
        .with_context(|| format!("NATS_URL {} is not usable", args.nats_url))?;
    let mut config = relay::RelayConfig::new(args.nats_prefix.clone());
    config.stream_name = format!("{}_EVENTS", args.nats_prefix.to_ascii_uppercase());
    config.replicas = usize::from(args.nats_replicas);
    let relay = relay::Relay::new(store, client, config);
    Ok(tokio::spawn(
        relay.run(async move { shutdown.triggered().await }),
    ))
}

/// Seals every committed event into the audit hash chain until shutdown, publishing the chain's
/// head as a `ChainHeadSealed` event and, unless NATS is off, on `<prefix>.audit.chain-head`.
async fn start_sealer(
    args: &ServeArgs,
    store: EventStore,
    clock: Arc<dyn Clock>,
    shutdown: projectors::Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let nats = if args.no_nats {
        None
    } else {
        Some(
            async_nats::ConnectOptions::new()
                .name("velka-audit")
                .retry_on_initial_connect()
                .connect(args.nats_servers())
                .await
                .with_context(|| format!("NATS_URL {} is not usable", args.nats_url))?,
        )
    };
    let config = audit::sealer::SealerConfig {
        name: CHAIN.to_owned(),
        head_every_events: args.audit_head_every,
        head_interval: std::time::Duration::from_secs(args.audit_head_interval),
        nats_prefix: args.nats_prefix.clone(),
        ..audit::sealer::SealerConfig::default()
    };
    let sealer = audit::sealer::Sealer::new(store, clock, nats, config);
    Ok(tokio::spawn(
        sealer.run(async move { shutdown.triggered().await }),
    ))
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
