//! `shelf-faults`: the fault suite. Runs real `shelf serve` processes under faults and prints one
//! line of figures per scenario and backend; exits non-zero when the history checker found an
//! anomaly. The same scenarios run briefly in the tests (`crates/shelf-cli/tests/faults.rs`).
//!
//! Build both binaries first: `cargo build --release -p shelf-cli -p shelf-bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use shelf_testkit::faults::{kill_nine, KillPlan};
use shelf_testkit::{Backend, TestDatabase};

#[derive(Parser)]
#[command(about = "Fault suite: kill -9 of the server while devices write, checked by a history checker")]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    backend: Which,
    /// SIGKILLs of the server per backend.
    #[arg(long, default_value_t = 100)]
    kills: usize,
    /// Devices of the first user (a second user writes too, for isolation).
    #[arg(long, default_value_t = 4)]
    devices: usize,
    /// Mean milliseconds between a restart and the next kill.
    #[arg(long, default_value_t = 300)]
    interval_ms: u64,
    /// The `shelf` binary; default: next to this one.
    #[arg(long)]
    shelf_bin: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let bin = match args.shelf_bin {
        Some(bin) => bin,
        None => std::env::current_exe()?.with_file_name("shelf"),
    };
    anyhow::ensure!(bin.exists(), "no shelf binary at {} (cargo build -p shelf-cli, or --shelf-bin)", bin.display());
    let backends = match args.backend {
        Which::Sqlite => vec![Backend::Sqlite],
        Which::Postgres => vec![Backend::Postgres],
        Which::Both => vec![Backend::Sqlite, Backend::Postgres],
    };
    let plan = KillPlan { kills: args.kills, devices: args.devices, interval: Duration::from_millis(args.interval_ms) };
    let mut clean = true;
    for backend in backends {
        let database = TestDatabase::create(backend).await;
        let report = kill_nine(&bin, &database, &plan).await;
        println!("{}", report.summary(&format!("{backend:?}").to_lowercase()));
        for anomaly in report.verdict.anomalies.iter().take(20) {
            println!("  anomaly: {anomaly}");
        }
        clean &= report.verdict.anomalies.is_empty();
    }
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
