//! `shelf-bench`: measures the server spine and prints numbers (asserts nothing about speed).
//!
//! For each backend it starts a real server on 127.0.0.1:0 (in this process, over a fresh
//! database) and measures, over HTTP with keep-alive connections:
//! - version checks per second (`GET /api/library/version`, many concurrent clients);
//! - change-feed latency p50/p99 for a 100-change delta in a library of `--library-size`
//!   materials (seeded through the store, not HTTP, to save time);
//! - mutations per second (`POST /api/materials` and `PATCH`, many users and devices at once).

mod blobs;
mod client_sync;
mod compaction;

mod which;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use which::Which;
use hdrhistogram::Histogram;
use serde_json::json;
use shelf_core::{truncate_to_micros, LibraryMutation, MaterialBody, MaterialId, MaterialTitle, Tags, UserId};
use shelf_server::service::rate_limits::RateLimits;
use shelf_server::ServerSettings;
use shelf_testkit::{TestServer, TestUser};

#[derive(Parser)]
#[command(about = "Benchmarks of the Shelf server spine; prints numbers")]
struct Args {
    /// Which backends to measure.
    #[arg(long, value_enum, default_value = "both")]
    backend: Which,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent HTTP clients for throughput measurements.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Materials in the library whose change feed is measured.
    #[arg(long, default_value_t = 100_000)]
    library_size: usize,
    /// Change-feed requests to time.
    #[arg(long, default_value_t = 2_000)]
    feed_requests: usize,
    /// Measure the Rust client instead: a cold sync of a `--library-size` library into an empty
    /// replica, then incremental syncs of 100 changes.
    #[arg(long)]
    client_sync: bool,
    /// Measure attachment upload/download of a file of this many MiB instead (local folder, and
    /// S3 when SHELF_TEST_S3_ENDPOINT is set).
    #[arg(long)]
    blob_mib: Option<usize>,
    /// With `--blob-mib`: send the upload in PATCHes of this many MiB (0: one PATCH).
    #[arg(long, default_value_t = 8)]
    blob_patch_mib: usize,
    /// Measure the hourly tombstone compaction instead, over this many users (10 tombstones and
    /// two devices each).
    #[arg(long)]
    compaction: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(mib) = args.blob_mib {
        return blobs::run(mib, args.blob_patch_mib, std::env::var("SHELF_TEST_S3_ENDPOINT").is_ok()).await;
    }
    let backends = args.backend.backends();
    if let Some(users) = args.compaction {
        return compaction::run(&backends, users).await;
    }
    if args.client_sync {
        return client_sync::run(&backends, args.library_size).await;
    }
    println!("shelf-bench: {} s per throughput run, {} clients, {} cores", args.seconds, args.clients, num_cpus());
    for backend in backends {
        println!("\n== {backend:?} ==");
        // Every bench user registers from 127.0.0.1: more than one address may by default.
        let limits = RateLimits { registrations_per_address: 0, ..RateLimits::default() };
        let settings = ServerSettings { rate_limits: limits, ..ServerSettings::default() };
        let server = Arc::new(TestServer::start_with(backend, settings).await);
        version_checks(&server, &args).await;
        mutations(&server, &args).await;
        feed_latency(&server, &args).await?;
    }
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Runs `clients` loops of `request` for `seconds`, returning completed requests per second.
async fn throughput<F, Fut>(clients: usize, seconds: u64, request: F) -> (f64, u64)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (request, ok, failed) = (request.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    if request(client, n).await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    (ok.load(Ordering::Relaxed) as f64 / elapsed, failed.load(Ordering::Relaxed))
}

/// True when the request got a 2xx answer whose body was read completely.
async fn succeeded(response: reqwest::Result<reqwest::Response>) -> bool {
    match response {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

async fn users(server: &TestServer, count: usize) -> Vec<TestUser> {
    let mut users = Vec::with_capacity(count);
    for _ in 0..count {
        users.push(server.user().await);
    }
    users
}

async fn version_checks(server: &Arc<TestServer>, args: &Args) {
    let users = Arc::new(users(server, 8).await);
    let s = server.clone();
    let (rate, failed) = throughput(args.clients, args.seconds, move |client, _| {
        let (s, users) = (s.clone(), users.clone());
        async move {
            let token = &users[client % users.len()].token;
            let response = s.client.get(s.url("/api/library/version")).bearer_auth(token).send().await;
            succeeded(response).await
        }
    })
    .await;
    println!("version checks:   {rate:>10.0} requests/s   ({failed} failed)");
}

async fn mutations(server: &Arc<TestServer>, args: &Args) {
    let users = Arc::new(users(server, 16).await);
    let s = server.clone();
    let (rate, failed) = throughput(args.clients, args.seconds, move |client, n| {
        let (s, users) = (s.clone(), users.clone());
        async move {
            let token = &users[client % users.len()].token;
            let body = json!({"title": format!("bench {client}-{n}"), "body": "text", "tags": ["bench"],
                "progress": {"studySecondsDelta": 1}});
            let response = s.client.post(s.url("/api/materials")).bearer_auth(token).json(&body).send().await;
            succeeded(response).await
        }
    })
    .await;
    println!("mutations:        {rate:>10.0} creates/s    ({failed} failed; material + progress + version per create)");
}

/// Fills `user`'s library with `size` materials through the store (8 writers; HTTP would only
/// slow the setup down). Returns how long it took.
pub async fn seed_library(server: &TestServer, user: &TestUser, size: usize) -> anyhow::Result<Duration> {
    let user_id = UserId(uuid::Uuid::parse_str(&user.user_id)?);
    let seeding = Instant::now();
    let store = server.store.clone();
    let chunk = size.div_ceil(8);
    let seeders: Vec<_> = (0..8)
        .map(|part| {
            let store = store.clone();
            let count = chunk.min(size.saturating_sub(part * chunk));
            tokio::spawn(async move {
                for i in 0..count {
                    let mutation = LibraryMutation::CreateMaterial {
                        id: MaterialId::new(),
                        title: MaterialTitle::parse(&format!("seed {part}-{i}")).expect("title"),
                        body: MaterialBody::parse("seeded body text").expect("body"),
                        tags: Tags::parse(&["seed"]).expect("tags"),
                        progress: None,
                    };
                    store.apply(user_id, &mutation, truncate_to_micros(time::OffsetDateTime::now_utc())).await.expect("seed");
                }
            })
        })
        .collect();
    for seeder in seeders {
        seeder.await?;
    }
    Ok(seeding.elapsed())
}

async fn feed_latency(server: &Arc<TestServer>, args: &Args) -> anyhow::Result<()> {
    let user = server.user().await;
    let seeded_in = seed_library(server, &user, args.library_size).await?;
    let since = server.library_version(&user.token).await;
    for i in 0..100 {
        server.create_material(&user.token, &format!("delta {i}")).await;
    }
    let mut histogram = Histogram::<u64>::new(3)?;
    let path = format!("/api/library/changes?since={since}&limit=100");
    for _ in 0..args.feed_requests {
        let started = Instant::now();
        let response = server.client.get(server.url(&path)).bearer_auth(&user.token).send().await?;
        let body = response.bytes().await?;
        histogram.record(started.elapsed().as_micros() as u64)?;
        debug_assert!(!body.is_empty());
    }
    println!(
        "changes feed:     p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms  (100 changes after v{since} in a {}-material library, seeded in {:.1} s)",
        histogram.value_at_quantile(0.50) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
        args.library_size,
        seeded_in.as_secs_f64(),
    );
    Ok(())
}
