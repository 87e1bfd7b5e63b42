//! `tollgate`: wiring only (flags, start-up, shutdown).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use clap::Parser;
use pingora_core::apps::HttpServerOptions;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{
    RunArgs as PingoraRunArgs, Server, ShutdownSignal, ShutdownSignalWatch,
};
use pingora_core::services::listening::Service;

use edge::access_log::AccessLog;
use edge::admin_server::AdminListener;
use edge::cli::{Cli, Command, RunArgs};
use edge::cluster::counting::SharedCounting;
use edge::conn_limit::ConnectionLimit;
use edge::deadline::Watchdog;
use edge::downstream::HeaderDeadline;
use edge::gateway::{Gateway, Shared};
use edge::live::{self, Live};
use edge::metrics::Metrics;
use edge::request_id::RequestIds;
use edge::snapshot::Snapshot;
use edge::usage::UsageBook;
use edge::{metrics, reload, tls};

// mimalloc without transparent huge pages (feature `no_thp`): with them, sled's large
// zeroed tables alone kept 34 MB resident (idle gateway 83 MB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_logs();
    if matches!(cli.command, None | Some(Command::Run(_))) {
        if let Err(e) = edge::trim::purge_promptly() {
            eprintln!("tollgate: running with mimalloc's default purge delay: {e}");
        }
    }
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(*args),
        Some(Command::Check { file }) => edge::offline::check(&file),
        Some(Command::Import {
            file,
            replace,
            data_dir,
        }) => edge::offline::import(&file, replace, &data_dir),
        Some(Command::Export {
            data_dir,
            with_secrets,
        }) => edge::offline::export(&data_dir, with_secrets),
        Some(Command::CheckStore { data_dir }) => edge::offline::check_store(&data_dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Diagnostics as JSON lines on stderr (the access log has stdout or its own file), at the
/// level of `TOLLGATE_LOG`, else `RUST_LOG` (an `EnvFilter` directive such as `warn` or
/// `admin_ui=debug`), else `info`. Only `tracing` events: the `log` records of Pingora and
/// sled stay off, as before.
fn install_logs() {
    use tracing_subscriber::EnvFilter;
    let directive = ["TOLLGATE_LOG", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|e| {
        eprintln!("tollgate: log level {directive:?} not understood ({e}), using info");
        EnvFilter::new("info")
    });
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .finish();
    if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("tollgate: no structured logs: {e}");
    }
}

/// SIGTERM and SIGINT both stop gracefully: `/healthz` turns 503, new and idle
/// connections are closed, requests in flight may finish within `drain_timeout`; then
/// Pingora closes its listeners and stops (its own grace period is 0).
struct Signals {
    shared: Arc<Shared>,
    drain_timeout: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
        let mut quit = signal(SignalKind::quit()).expect("installing the SIGQUIT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = quit.recv() => {}
        }
        self.shared.ready.store(false, Ordering::Release);
        self.shared.drain.start();
        if !self.shared.drain.wait_idle(self.drain_timeout).await {
            eprintln!(
                "tollgate: {} requests still in flight after {:?}, stopping anyway",
                self.shared.drain.busy(),
                self.drain_timeout
            );
        }
        ShutdownSignal::GracefulTerminate
    }
}

/// SIGUSR1 and SIGHUP reopen the access log file (logrotate's `postrotate`, as nginx and
/// Envoy do); SIGUSR2 is ignored. Each would otherwise end the process on the spot, with
/// no drain and no flush. The handlers are installed before this returns.
fn reopen_logs_on_signals(
    rt: &tokio::runtime::Runtime,
    access_log: AccessLog,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let _enter = rt.enter();
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut usr2 = signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?;
    rt.spawn(async move {
        loop {
            let name = tokio::select! {
                _ = usr1.recv() => "SIGUSR1",
                _ = hup.recv() => "SIGHUP",
                _ = usr2.recv() => {
                    tracing::info!("SIGUSR2 ignored");
                    continue;
                }
            };
            let log = access_log.clone();
            match tokio::task::spawn_blocking(move || log.reopen()).await {
                Ok(Ok(())) => tracing::info!(signal = name, "access log reopened"),
                Ok(Err(e)) => {
                    tracing::error!(signal = name, error = %e, "cannot reopen the access log")
                }
                Err(e) => {
                    tracing::error!(signal = name, error = %e, "cannot reopen the access log")
                }
            }
        }
    });
    Ok(())
}

/// A proxy listener that Pingora cannot bind (taken between [`live::check_bindable`] and
/// Pingora's own bind, which it retries for 30 s) ends its service with a panic while the
/// rest of the process runs on, `/healthz` included: make that a failed start.
fn exit_when_a_listener_fails() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("Failed to build listeners") {
            eprintln!("tollgate: the proxy cannot listen, stopping: {message}");
            std::process::exit(1);
        }
    }));
}

/// A follower (`--follow`) starts its feed loop; any other node counts the followers of
/// its feed (served when `TOLLGATE_CLUSTER_TOKEN` is set). Both keep `live_nodes` current.
fn start_cluster(
    args: &RunArgs,
    rt: &tokio::runtime::Runtime,
    store: &storage::Store,
    registry: &prometheus::Registry,
    live_nodes: &Arc<edge::cluster::LiveNodes>,
) -> anyhow::Result<admin_ui::cluster::Cluster> {
    use edge::cluster::{control, follow};
    let token = edge::cluster::cluster_token()?;
    let nodes = admin_ui::cluster::Nodes::default();
    let Some(url) = &args.follow else {
        let counting = control::start(nodes.clone(), live_nodes.clone(), registry)
            .context("creating the cluster metrics")?;
        rt.spawn(counting);
        return Ok(admin_ui::cluster::Cluster {
            token,
            following: None,
            nodes,
            whole: Default::default(),
        });
    };
    let config = follow::FollowConfig::new(
        url,
        token,
        args.follow_ca.clone(),
        args.node_id
            .clone()
            .unwrap_or_else(|| follow::default_node_id(args.listen.port())),
        args.listen.to_string(),
        env!("CARGO_PKG_VERSION"),
    )?;
    let following = Arc::new(admin_ui::cluster::Following::new(
        config.url.clone(),
        store.revision(),
    ));
    eprintln!(
        "tollgate: following {} as node {} (serving revision {} until it answers)",
        config.url,
        config.node_id,
        store.revision()
    );
    let follower = {
        // reqwest's client is built inside the runtime it will run on.
        let _enter = rt.enter();
        follow::Follower::new(
            config,
            store.clone(),
            following.clone(),
            live_nodes.clone(),
            registry,
        )?
    };
    rt.spawn(follower.run());
    // A follower serves no feed of its own.
    Ok(admin_ui::cluster::Cluster {
        token: None,
        following: Some(following),
        nodes,
        whole: Default::default(),
    })
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let nofile = match edge::fd_limit::raise() {
        Ok((before, after)) => {
            if before != after {
                tracing::info!(before, after, "raised the open-file limit");
            }
            after
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            1024
        }
    };
    let max_connections = args
        .max_connections
        .unwrap_or_else(|| edge::conn_limit::default_for(nofile));
    let metrics = Metrics::new().context("creating metrics")?;
    let store = storage::Store::open(&args.data_dir)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    metrics
        .watch_store(store.clone())
        .context("creating the store metrics")?;
    let env_password = std::env::var("TOLLGATE_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if let Some(password) =
        admin_ui::bootstrap_admin(&store, env_password).context("creating the admin user")?
    {
        eprintln!(
            "tollgate: created console user {} with password {password} (shown once)",
            admin_ui::ADMIN_USER
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tollgate-admin")
        .enable_all()
        .build()
        .context("starting the admin runtime")?;

    // Subscribe before compiling, so a change made in between is not missed.
    let changes = store.subscribe();
    let cert_changes = store.subscribe();
    let (certs, cert_errors) = tls::Certs::new(store.clone());
    for e in cert_errors {
        eprintln!("tollgate: TLS: not serving {e}");
    }
    let tls_listen = tls::listen_addr(args.tls_listen, !store.config().certificates.is_empty());
    let counters = Arc::new(policies::Counters::new());
    let usage = UsageBook::new(store.clone(), counters.clone());
    usage.restore().context("loading quota usage")?;
    let first = Snapshot::compile(
        &store.config(),
        store.revision(),
        None,
        &metrics,
        &counters,
        Some(rt.handle()),
    );
    let (snapshot, first_error) = match first {
        Ok(s) => (s, None),
        Err(e) => (Snapshot::empty(&metrics), Some(e.to_string())),
    };
    // Not into the empty stand-in of a config that does not compile: its keys would all
    // look deleted, and their stored uses be dropped.
    if first_error.is_none() {
        usage
            .restore_key_uses(&snapshot.directory)
            .context("loading the keys' last use")?;
    }
    let shared = Shared::new(snapshot, metrics.clone(), counters);
    edge::cache::install(args.cache_size_mb.saturating_mul(1024 * 1024), &metrics)
        .map_err(|e| anyhow::anyhow!("making the response cache: {e}"))?;
    if let Some(e) = first_error {
        eprintln!("tollgate: the stored config does not compile, serving no routes: {e}");
        metrics.reload_errors.inc();
        shared.set_reload_error(Some(e));
    }

    if let Some(url) = args.redis.as_deref().filter(|u| !u.is_empty()) {
        let counting = {
            let _enter = rt.enter();
            SharedCounting::new(url, shared.live_nodes.clone(), &metrics.registry)?
        };
        let kept = args.data_dir.join(edge::cluster::counting::PENDING_FILE);
        match counting.restore_pending(&kept) {
            Ok(0) => {}
            Ok(n) => eprintln!(
                "tollgate: {n} quota counts kept by the last run are added to redis when it answers"
            ),
            Err(e) => eprintln!(
                "tollgate: the quota counts kept in {} cannot be read ({e}): put aside as {0}.unreadable",
                kept.display()
            ),
        }
        if !rt.block_on(counting.check()) {
            let health = counting.health();
            eprintln!(
                "tollgate: redis {} does not answer ({}): counting on node-local limits until it does",
                health.url,
                health.last_error.unwrap_or_default()
            );
        }
        rt.spawn(counting.clone().run());
        let _ = shared.counting.set(counting);
    }

    let access_log = AccessLog::start(&args.access_log, metrics.access_log_dropped.clone())
        .with_context(|| format!("opening the access log {}", args.access_log))?;
    reopen_logs_on_signals(&rt, access_log.clone())?;

    // One count of live nodes: the cluster feed keeps it, Redis fallback divides by it.
    let live_nodes = shared.live_nodes.clone();
    let cluster = start_cluster(&args, &rt, &store, &shared.metrics.registry, &live_nodes)?;

    // The console starts its metrics sampler on the admin runtime.
    let admin_enter = rt.enter();
    let admin = admin_ui::router(admin_ui::AdminConfig {
        store: store.clone(),
        live: Arc::new(Live {
            shared: shared.clone(),
        }),
        admin_token: std::env::var("TOLLGATE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        version: env!("CARGO_PKG_VERSION"),
        started,
        registry: shared.metrics.registry.clone(),
        cluster,
    });
    drop(admin_enter);
    let admin_listener = rt.block_on(AdminListener::bind(
        "admin",
        args.admin_listen,
        args.admin_tls(),
    ))?;
    let admin_scheme = admin_listener.scheme();
    let metrics_listener =
        rt.block_on(AdminListener::bind("metrics", args.metrics_listen, None))?;
    if !args.admin_listen.ip().is_loopback() && args.admin_tls().is_none() {
        tracing::warn!(
            admin_listen = %args.admin_listen,
            "the admin listener is reachable from other hosts over plain HTTP (no TLS): \
             passwords and tokens cross the network in clear; bind it to 127.0.0.1 or put \
             a TLS proxy in front"
        );
    }
    rt.spawn(async move {
        if let Err(e) = admin_listener.serve(admin).await {
            eprintln!("tollgate: admin server stopped: {e}");
        }
    });
    let metrics_app = metrics::router(metrics);
    rt.spawn(async move {
        if let Err(e) = metrics_listener.serve(metrics_app).await {
            eprintln!("tollgate: metrics server stopped: {e}");
        }
    });
    rt.spawn(reload::run(store.clone(), changes, shared.clone()));
    rt.spawn(usage.clone().run(shared.clone()));
    rt.spawn(live::watch_store(store.clone()));
    let ready_shared = shared.clone();
    let (listen, admin_addr, metrics_addr) = (args.listen, args.admin_listen, args.metrics_listen);
    rt.spawn(async move {
        live::wait_until_ready(ready_shared, live::probe_addr(listen)).await;
        eprintln!("tollgate: ready: proxy http://{listen} admin {admin_scheme}://{admin_addr} metrics http://{metrics_addr}/metrics");
    });

    // basic_auth's argon2 checks leave the proxy thread's other connections running
    // (Pingora's proxy runtime is tokio's multi-threaded one), one per core at most.
    policies::basic_auth::configure_slow_checks(
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        |check| tokio::task::block_in_place(check),
    );
    let conf = ServerConf {
        threads: args.worker_threads(),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let gateway = Gateway {
        shared: shared.clone(),
        ids: RequestIds::new(),
        access_log: access_log.clone(),
    };
    let mut proxy = pingora_proxy::http_proxy(&server.configuration, gateway);
    // The connection wrapper hands over only connections that open with the HTTP/2
    // preface (`edge::h2c`); Pingora then speaks HTTP/2 on them.
    let mut options = HttpServerOptions::default();
    options.h2c = true;
    // An HTTP/2 connection with no request in flight is closed as an idle HTTP/1.1
    // keep-alive one is: without it, a client that sent the preface (or a header block it
    // never finished) held its connection for good.
    options.h2_idle_timeout =
        Some(Duration::from_secs(edge::downstream::KEEPALIVE_IDLE_SECS) + args.header_timeout());
    proxy.server_options = Some(options);
    let watchdog = Watchdog::start().context("starting the header deadline thread")?;
    edge::trim::start().context("starting the memory trim thread")?;
    let mut service = Service::new(
        "tollgate proxy".to_owned(),
        HeaderDeadline::new(
            proxy,
            args.header_timeout(),
            shared.drain.clone(),
            watchdog,
            ConnectionLimit::new(
                max_connections,
                shared.metrics.connections_open.clone(),
                shared.metrics.connections_refused.clone(),
            ),
        ),
    );
    for addr in std::iter::once(args.listen).chain(tls_listen) {
        live::check_bindable(addr).with_context(|| format!("binding the proxy listener {addr}"))?;
    }
    exit_when_a_listener_fails();
    service.add_tcp(&args.listen.to_string());
    if let Some(addr) = tls_listen {
        let settings = tls::settings(certs.clone()).context("setting up the HTTPS listener")?;
        service.add_tls_with_settings(&addr.to_string(), None, settings);
        eprintln!("tollgate: HTTPS listener on {addr}");
    }
    rt.spawn(tls::follow(cert_changes, certs, tls_listen.is_some()));
    server.add_service(service);
    let final_shared = shared.clone();
    server.run(PingoraRunArgs {
        shutdown_signal: Box::new(Signals {
            shared,
            drain_timeout: args.shutdown_timeout(),
        }),
    });

    access_log.flush(Duration::from_secs(2));
    // What is not on disk after these is lost: say so in the exit status.
    let mut saved = true;
    if let Some(counting) = final_shared.counting.get() {
        // One last try to add what was counted while Redis was away, then keep the rest.
        let _ = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), counting.check()).await
        });
        match counting.keep_pending() {
            Ok(0) => {}
            Ok(n) => eprintln!(
                "tollgate: redis is away: {n} quota counts kept in the data directory for the next run"
            ),
            Err(e) => {
                eprintln!("tollgate: keeping the quota counts redis has not had: {e}");
                saved = false;
            }
        }
    }
    if let Err(e) = usage.flush(&final_shared.snapshot.load().directory) {
        eprintln!("tollgate: saving usage: {e}");
        saved = false;
    }
    if let Err(e) = store.flush() {
        eprintln!("tollgate: flushing the store: {e}");
        saved = false;
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    eprintln!("tollgate: stopped");
    Ok(if saved {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
