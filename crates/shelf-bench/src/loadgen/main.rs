//! `shelf-loadgen`: real-time load against a running Shelf server.
//!
//! Registers U users with D devices each, opens every device's stream (SSE, or WebSocket with
//! `--ws`), drives W writes per second for T seconds through one device per user, and prints:
//! streams open and time to open them, events delivered/expected, write→event latency
//! percentiles, and (with `--server-pid`) the server's RSS per stream and CPU seconds.
//!
//! Latency is measured from just before the write request is sent to the moment a device's
//! stream delivers a version ≥ the version that write committed, so it includes the database
//! commit. A device that receives a later version first (coalescing) counts the earlier write as
//! delivered at that moment, which is exactly what a client needs.

mod accounts;
mod proc_stats;
mod streams;

use std::io::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;

use crate::accounts::{prepare_users, LoadUser};
use crate::proc_stats::ProcessStats;
use crate::streams::{open_streams, Arrivals, DeviceStream};

#[derive(Parser, Clone)]
#[command(about = "Real-time load generator for a running Shelf server")]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    pub url: String,
    /// Users to register.
    #[arg(long, short = 'u', default_value_t = 100)]
    pub users: usize,
    /// Devices (sessions, streams) per user.
    #[arg(long, short = 'd', default_value_t = 10)]
    pub devices: usize,
    /// Writes per second across all users (0: idle streams only).
    #[arg(long, short = 'w', default_value_t = 200)]
    pub writes_per_sec: u64,
    /// Seconds of writing.
    #[arg(long, short = 't', default_value_t = 10)]
    pub seconds: u64,
    /// Use WebSocket streams instead of SSE.
    #[arg(long)]
    pub ws: bool,
    /// PID of the server process, to report its RSS and CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Concurrent logins/connections while setting up.
    #[arg(long, default_value_t = 256)]
    pub setup_concurrency: usize,
    /// Cache of users and tokens (JSON), so repeated runs against one server skip registration.
    #[arg(long)]
    pub accounts_file: Option<std::path::PathBuf>,
    /// Streams per device session (like several tabs of one browser), to reach more streams
    /// than there are sessions.
    #[arg(long, default_value_t = 1)]
    pub streams_per_device: usize,
    /// Seconds to hold idle streams open before closing (memory scenario).
    #[arg(long, default_value_t = 0)]
    pub hold_seconds: u64,
    /// The target is nginx with Nchan, for a side-by-side run (`scripts/bench-streams`): each
    /// user is a channel, streams subscribe to `/sub/<user>` (EventSource) and writes publish
    /// `{"libraryVersion": N}` to `/pub/<user>`; nothing is registered.
    #[arg(long)]
    pub nchan: bool,
    /// Write one CSV line per write to this file: when it was sent (ms after the first write),
    /// how long its request took, and its slowest delivery (ms) — to see whether the slow writes
    /// of the tail come together in time (a periodic task) or are spread out.
    #[arg(long)]
    pub latency_trace: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let setup = Instant::now();
    let users = prepare_users(&client, &args).await?;
    println!("accounts: {} users × {} devices ready in {:.1} s", users.len(), args.devices, setup.elapsed().as_secs_f64());

    let before = args.server_pid.map(ProcessStats::read).transpose()?;
    let own_before = ProcessStats::read(std::process::id())?;
    let arrivals = Arc::new(Arrivals::default());
    let opening = Instant::now();
    let streams = open_streams(&args, &users, arrivals.clone()).await?;
    let open_time = opening.elapsed();
    let total = users.len() * args.devices * args.streams_per_device.max(1);
    println!(
        "streams: {}/{} open ({}) in {:.3} s ({:.0} streams/s)",
        streams.len(),
        total,
        if args.ws { "WebSocket" } else { "SSE" },
        open_time.as_secs_f64(),
        streams.len() as f64 / open_time.as_secs_f64()
    );
    let connected = args.server_pid.map(ProcessStats::read).transpose()?;
    // Both processes share the machine: the load generator's own CPU tells whether it or the
    // server bounded the time to open.
    let own_cpu = ProcessStats::read(std::process::id())?.cpu_seconds - own_before.cpu_seconds;
    if let (Some(before), Some(connected)) = (&before, &connected) {
        println!("CPU to open them: server {:.2} s, load generator {own_cpu:.2} s", connected.cpu_seconds - before.cpu_seconds);
        let per_stream = (connected.rss_bytes as f64 - before.rss_bytes as f64) / streams.len().max(1) as f64;
        println!(
            "server RSS: {:.1} MiB before, {:.1} MiB with streams open: {:.0} bytes ({:.1} KiB) per stream",
            before.rss_bytes as f64 / 1048576.0,
            connected.rss_bytes as f64 / 1048576.0,
            per_stream,
            per_stream / 1024.0
        );
    } else {
        println!("CPU to open them: load generator {own_cpu:.2} s");
    }
    if args.hold_seconds > 0 {
        tokio::time::sleep(Duration::from_secs(args.hold_seconds)).await;
    }
    if args.writes_per_sec > 0 {
        drive_writes(&client, &args, &users, &streams, &arrivals, connected.as_ref()).await?;
    }
    Ok(())
}

/// One write: which user, the version it committed at, when it was sent and answered.
struct Write {
    user: usize,
    version: i64,
    sent: Instant,
    answered: Instant,
}

async fn drive_writes(
    client: &reqwest::Client,
    args: &Args,
    users: &[LoadUser],
    streams: &[DeviceStream],
    arrivals: &Arc<Arrivals>,
    cpu_before: Option<&ProcessStats>,
) -> anyhow::Result<()> {
    let cpu_start = args.server_pid.map(ProcessStats::read).transpose()?.or(cpu_before.cloned());
    let interval = Duration::from_secs_f64(1.0 / args.writes_per_sec as f64);
    let count = args.writes_per_sec * args.seconds;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Option<Write>>();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let published: Vec<AtomicI64> = users.iter().map(|_| AtomicI64::new(0)).collect();
    let started = Instant::now();
    for n in 0..count {
        tick.tick().await;
        let user = (n as usize * 7919) % users.len();
        let token = users[user].tokens[0].clone();
        let (client, done_tx) = (client.clone(), done_tx.clone());
        // Nchan stores nothing, so the load generator numbers each channel's messages itself.
        let published = args.nchan.then(|| published[user].fetch_add(1, Ordering::Relaxed) + 1);
        let url = match published {
            Some(_) => format!("{}/pub/u{user}", args.url),
            None => format!("{}/api/materials", args.url),
        };
        tokio::spawn(async move {
            let sent = Instant::now();
            let body = match published {
                Some(version) => serde_json::json!({"libraryVersion": version}),
                None => serde_json::json!({"title": format!("load {n}"), "progress": {"studySecondsDelta": 1}}),
            };
            let response = client.post(&url).bearer_auth(&token).json(&body).send().await;
            let version = match response {
                Ok(r) if r.status().is_success() && published.is_some() => published,
                Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok().and_then(|b| b["libraryVersion"].as_i64()),
                _ => None,
            };
            let answered = Instant::now();
            let _ = done_tx.send(version.map(|version| Write { user, version, sent, answered }));
        });
    }
    drop(done_tx);
    let mut writes = Vec::new();
    let mut failed = 0;
    while let Some(write) = done_rx.recv().await {
        match write {
            Some(write) => writes.push(write),
            None => failed += 1,
        }
    }
    let write_phase = started.elapsed();
    // Give the last events a moment to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_end = args.server_pid.map(ProcessStats::read).transpose()?;

    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut delivered = 0u64;
    let per_user = args.devices * args.streams_per_device.max(1);
    let expected = writes.len() as u64 * per_user as u64;
    let mut trace = args.latency_trace.as_ref().map(|path| std::fs::File::create(path).map(std::io::BufWriter::new)).transpose()?;
    for write in &writes {
        let mut slowest = Duration::ZERO;
        for device in streams.iter().filter(|s| s.index / per_user == write.user) {
            if let Some(at) = arrivals.first_at_or_after(device.index, write.version) {
                delivered += 1;
                let took = at.saturating_duration_since(write.sent);
                slowest = slowest.max(took);
                latency.record(took.as_micros().max(1) as u64)?;
            }
        }
        if let Some(trace) = trace.as_mut() {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            writeln!(trace, "{:.3},{:.3},{:.3}", ms(write.sent - started), ms(write.answered - write.sent), ms(slowest))?;
        }
    }
    if let Some(mut trace) = trace {
        trace.flush()?;
    }
    println!(
        "writes: {} committed ({} failed) in {:.1} s = {:.0}/s",
        writes.len(),
        failed,
        write_phase.as_secs_f64(),
        writes.len() as f64 / write_phase.as_secs_f64()
    );
    println!(
        "events: {delivered}/{expected} delivered ({:.3}%)",
        if expected == 0 { 100.0 } else { delivered as f64 * 100.0 / expected as f64 }
    );
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "write→event latency: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(0.50),
        ms(0.95),
        ms(0.99),
        latency.max() as f64 / 1000.0
    );
    if let (Some(start), Some(end)) = (cpu_start, cpu_end) {
        println!(
            "server CPU: {:.2} s over {:.1} s of writes ({:.0}% of one core); RSS now {:.1} MiB",
            end.cpu_seconds - start.cpu_seconds,
            write_phase.as_secs_f64(),
            (end.cpu_seconds - start.cpu_seconds) * 100.0 / write_phase.as_secs_f64(),
            end.rss_bytes as f64 / 1048576.0
        );
    }
    Ok(())
}
