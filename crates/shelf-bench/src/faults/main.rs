//! `shelf-faults`: the fault suite. Runs real `shelf serve` processes under faults and prints one
//! line of figures per scenario and backend; exits non-zero when the history checker found an
//! anomaly. The same scenarios run briefly in the tests (`crates/shelf-cli/tests/faults.rs`).
//!
//! Build both binaries first: `cargo build --release -p shelf-cli -p shelf-bench`.

#[path = "../which.rs"]
mod which;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use which::Which;
use shelf_testkit::faults::{kill_nine, postgres_restart, reconnect_storm, redis_restart, FaultPlan, StormPlan};
use shelf_testkit::{Backend, TestDatabase};

#[derive(Parser)]
#[command(about = "Fault suite: kill -9 of the server, PostgreSQL crash-restarts, while devices write; checked by a history checker")]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    backend: Which,
    /// SIGKILLs of the server per backend.
    #[arg(long, default_value_t = 100)]
    kills: usize,
    /// Crash-restarts of a private PostgreSQL, and restarts of a private Redis, under two
    /// instances (0: skip those scenarios).
    #[arg(long, default_value_t = 5)]
    postgres_restarts: usize,
    /// Devices of the first user (a second user writes too, for isolation).
    #[arg(long, default_value_t = 4)]
    devices: usize,
    /// Mean milliseconds between a restart and the next kill.
    #[arg(long, default_value_t = 300)]
    interval_ms: u64,
    /// Streams of the reconnect storm (0: skip it); 100 per user.
    #[arg(long, default_value_t = 10_000)]
    storm_streams: usize,
    /// The `shelf` binary; default: next to this one.
    #[arg(long)]
    shelf_bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let bin = match args.shelf_bin {
        Some(bin) => bin,
        None => std::env::current_exe()?.with_file_name("shelf"),
    };
    anyhow::ensure!(bin.exists(), "no shelf binary at {} (cargo build -p shelf-cli, or --shelf-bin)", bin.display());
    let backends = args.backend.backends();
    let interval = Duration::from_millis(args.interval_ms);
    let mut reports = Vec::new();
    for backend in backends {
        let database = TestDatabase::create(backend).await;
        let plan = FaultPlan { faults: args.kills, devices: args.devices, interval };
        let report = kill_nine(&bin, &database, &plan).await;
        reports.push(print(report, &format!("{backend:?}").to_lowercase()));
    }
    if args.postgres_restarts > 0 {
        let plan = FaultPlan { faults: args.postgres_restarts, devices: args.devices, interval: interval * 4 };
        reports.push(print(postgres_restart(&bin, &plan).await, "two instances, --bus postgres"));
        let database = TestDatabase::create(Backend::Postgres).await;
        reports.push(print(redis_restart(&bin, &database, &plan).await, "two instances, --bus redis"));
    }
    if args.storm_streams > 0 {
        let database = TestDatabase::create(Backend::Sqlite).await;
        let users = args.storm_streams.div_ceil(100);
        let plan = StormPlan { users, streams_per_user: 100, base: Duration::from_millis(500), cap: Duration::from_secs(5) };
        let report = reconnect_storm(&bin, &database, &plan).await;
        println!("{}", report.summary());
        reports.push(report.behind == 0 && report.server_stayed_up);
    }
    Ok(if reports.iter().all(|clean| *clean) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Prints a report's line and its first anomalies; true when it is clean.
fn print(report: shelf_testkit::faults::FaultReport, what: &str) -> bool {
    println!("{}", report.summary(what));
    for anomaly in report.verdict.anomalies.iter().take(20) {
        println!("  anomaly: {anomaly}");
    }
    report.verdict.anomalies.is_empty() && (report.scenario == "kill -9" || report.stream_caught_up.is_some())
}
