//! The `shelf` binary: `shelf serve` (the only place that picks concrete backends) and the
//! command-line client (`client/`, on `shelf-client`).

mod admin;
mod client;
mod config;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shelf_bus::{ChangeBus, InProcessBus};
use shelf_bus_postgres::PostgresBus;
use shelf_bus_redis::RedisBus;
use shelf_server::service::versions::StoreVersionSource;
use shelf_server::{AppState, ServerSettings};
use shelf_store::Store;
use tracing_subscriber::EnvFilter;

use crate::config::{BlobChoice, BusChoice, Config, LogFormat, ServeArgs};

#[derive(Parser)]
#[command(name = "shelf", version, about = "Shelf: your study library, the same on every device")]
struct Cli {
    /// Which device's state to use, so one machine can act as several devices.
    #[arg(long, global = true, env = "SHELF_PROFILE", default_value = "default")]
    profile: String,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sync server (SQLite in ./shelf-data unless --database-url says otherwise).
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document of the HTTP API (what `/api/openapi.json` serves).
    Openapi,
    /// Operator commands that read the server's database directly.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // `serve` reads its configuration before the runtime starts: it says how many threads.
        Command::Serve(args) => Config::load(*args).and_then(|config| {
            block_on(config.worker_threads, async move {
                init_server_logs(config.log_format);
                serve(config).await
            })
        }),
        Command::Admin(command) => block_on(None, admin::run(command, cli.json)),
        Command::Openapi => shelf_server::openapi_json().map(|document| println!("{document}")).map_err(anyhow::Error::from),
        Command::Client(command) => {
            // Client commands log only when asked to: stdout is their output, stderr their errors.
            if let Ok(filter) = EnvFilter::try_from_default_env() {
                tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
            }
            client::Profile::new(&cli.profile)
                .and_then(|profile| block_on(None, client::run(command, client::Context { profile, json: cli.json })))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, no backtrace: the causes joined, newlines flattened.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on a multi-thread runtime with `worker_threads` workers (tokio's default, one per
/// core, when `None`).
fn block_on(worker_threads: Option<usize>, work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = worker_threads {
        runtime.worker_threads(threads);
    }
    runtime.enable_all().build().context("could not start the async runtime")?.block_on(work)
}

/// Server logs on stdout (as before), as text or one JSON object per line; either way each line of a request
/// carries its `request_id` (the `request` span, see `shelf_server::request_id`).
fn init_server_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    for name in config::unknown_env_names() {
        tracing::warn!(name, "ignoring unknown SHELF_* environment variable");
    }
    tracing::info!(?config, "starting");
    let store = open_store(&config).await?;
    let bus = open_bus(&config, store.clone()).await?;
    let blobs: Arc<dyn shelf_blob::BlobStore> = match &config.blobs {
        BlobChoice::Local => Arc::new(shelf_blob::LocalBlobStore::new(config.data_dir.join("blobs"))?),
        BlobChoice::S3 { endpoint, bucket, region } => {
            let settings = shelf_blob_s3::S3Settings { endpoint: endpoint.clone(), bucket: bucket.clone(), region: region.clone() };
            Arc::new(shelf_blob_s3::S3BlobStore::new(&settings)?)
        }
    };
    let settings = ServerSettings {
        max_body_bytes: config.max_body_bytes,
        session_ttl: config.session_ttl,
        tombstone_retention: config.tombstone_retention,
        secure_cookies: config.secure_cookies,
        allowed_origins: config.allowed_origins.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        rate_limits: config.rate_limits.clone(),
        hashing_queue: config.hashing_queue,
        sse_heartbeat: config.sse_heartbeat,
        max_file_size: config.max_file_size,
        user_quota: config.user_quota,
        push: shelf_server::service::push::PushSettings {
            allowed_hosts: config.push_allowed_hosts.clone(),
            vapid_private_key: config.vapid_private_key.clone(),
            subject: config.vapid_subject.clone(),
            ..Default::default()
        },
        ..ServerSettings::default()
    };
    let mut state = AppState::new(store, bus, blobs, settings).await?;
    match shelf_web::WebApp::embedded() {
        Some(web) => {
            let web = web
                .with_archive(&config.data_dir.join("web-assets"))
                .with_context(|| format!("cannot keep web assets in {}", config.data_dir.display()))?;
            tracing::info!(files = web.file_count(), "serving the web app at /");
            state = state.with_web_assets(Arc::new(web));
        }
        None => tracing::warn!("built with SHELF_WEB_SKIP: serving the API only; / explains how to get the app"),
    }
    let listener = shelf_server::listen(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics = match config.metrics_listen {
        Some(address) => Some(serve_metrics(address, state.clone()).await?),
        None => None,
    };
    let address = listener.local_addr()?;
    println!("Shelf is running at http://{address} (the app; API docs: http://{address}/api/docs)");
    // On a runtime worker, not on this thread (which only waits): each accepted connection's
    // task then starts on the accepting worker's own queue instead of waking a worker from
    // outside (server CPU to open and close 10,000 streams −5–9 % in six alternated pairs).
    let served = match tokio::spawn(shelf_server::serve(listener, state, shutdown_signal())).await {
        Ok(served) => served,
        Err(error) => Err(std::io::Error::other(error)),
    };
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the metrics recorder and serves `/metrics` on its own listener until aborted.
async fn serve_metrics(address: std::net::SocketAddr, state: AppState) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let handle = shelf_server::metrics::install().context("cannot install the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} (--metrics-listen)"))?;
    tracing::info!(%address, "serving Prometheus metrics at /metrics");
    Ok(tokio::spawn(async move {
        if let Err(error) = shelf_server::metrics::serve(listener, state, handle, std::future::pending()).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    }))
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = shelf_store_postgres::PostgresStore::connect(&url).await.context("cannot open PostgreSQL")?;
        Ok(Arc::new(store))
    } else {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
        let store = shelf_store_sqlite::SqliteStore::connect_with(&url, config.durability).await.context("cannot open SQLite")?;
        Ok(Arc::new(store))
    }
}

async fn open_bus(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Arc<dyn ChangeBus>> {
    let source = Arc::new(StoreVersionSource(store));
    let poll = config.bus_poll_interval;
    Ok(match &config.bus {
        BusChoice::InProcess => Arc::new(InProcessBus::new()),
        BusChoice::Postgres => {
            // Config::resolve already refused --bus postgres without a PostgreSQL database.
            Arc::new(PostgresBus::connect(&config.database_url(), source, poll).await.context("cannot start the PostgreSQL bus")?)
        }
        BusChoice::Redis(url) => Arc::new(RedisBus::connect(url, source, poll).await.context("cannot start the Redis bus")?),
    })
}

/// Resolves on Ctrl-C or SIGTERM; the server then finishes in-flight requests.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            // Without the handler, Ctrl-C cannot stop us gracefully; never treat that as a request
            // to stop (SIGTERM still works).
            tracing::warn!(%error, "cannot listen for Ctrl-C");
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
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
