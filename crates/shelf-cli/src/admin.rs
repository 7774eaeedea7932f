//! `shelf admin …`: operator commands that read the database directly through the `Store`
//! (no server needed; the same `--database-url`/`--data-dir`/`shelf.toml`/`SHELF_*` resolution as
//! `shelf serve`).

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use shelf_store::AdminStats;

use crate::config::{Config, ServeArgs};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Users, devices, how far devices lag behind their library, storage used.
    Stats(DatabaseArgs),
    /// After restoring a backup, with every server stopped: give the database a new epoch, so
    /// every device rebuilds its copy and sends again the changes the backup lacks.
    NewEpoch(DatabaseArgs),
}

/// Which database to read, resolved like `shelf serve` resolves it.
#[derive(Args)]
pub struct DatabaseArgs {
    /// Configuration file; `./shelf.toml` is read when present.
    #[arg(long, env = "SHELF_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Folder of the SQLite database [default: ./shelf-data].
    #[arg(long, env = "SHELF_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// `postgres://…` or `sqlite://…` [default: SQLite in the data folder].
    #[arg(long, env = "SHELF_DATABASE_URL")]
    database_url: Option<String>,
}

pub async fn run(command: AdminCommand, json: bool) -> anyhow::Result<()> {
    match command {
        AdminCommand::Stats(args) => {
            let store = open_existing_store(&args.config()?).await?;
            let stats = store.admin_stats(shelf_server::service::auth::now()).await?;
            print_stats(&stats, json);
            Ok(())
        }
        AdminCommand::NewEpoch(args) => {
            let store = open_existing_store(&args.config()?).await?;
            let previous = store.epoch().await?;
            let epoch = store.new_epoch().await?;
            match json {
                true => println!("{}", json!({ "previousEpoch": previous.0, "epoch": epoch.0 })),
                false => println!("epoch {} replaced by {}: start the servers; every device will resync", previous.0, epoch.0),
            }
            Ok(())
        }
    }
}

impl DatabaseArgs {
    fn config(self) -> anyhow::Result<Config> {
        Config::load(ServeArgs { config: self.config, data_dir: self.data_dir, database_url: self.database_url, ..ServeArgs::default() })
    }
}

/// Opens the configured database, refusing to create an empty SQLite one (a wrong path would
/// otherwise report an empty server).
async fn open_existing_store(config: &Config) -> anyhow::Result<std::sync::Arc<dyn shelf_store::Store>> {
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = shelf_store_postgres::PostgresStore::connect(&url).await.context("cannot open PostgreSQL")?;
        return Ok(std::sync::Arc::new(store));
    }
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    anyhow::ensure!(std::path::Path::new(path).exists(), "no Shelf database at {path}: pass --database-url or --data-dir");
    let store = shelf_store_sqlite::SqliteStore::connect_with(&url, config.durability).await.context("cannot open SQLite")?;
    Ok(std::sync::Arc::new(store))
}

fn print_stats(stats: &AdminStats, json: bool) {
    let lag = Lag::of(&stats.lags);
    if json {
        let body = json!({
            "users": stats.users,
            "devices": stats.live_sessions,
            "devicesNeverSynced": stats.never_synced,
            "lag": {"p50": lag.p50, "p90": lag.p90, "p99": lag.p99, "max": lag.max},
            "materials": stats.materials,
            "blobs": stats.blobs,
            "storageBytes": stats.blob_bytes,
            // Streams live in the server processes, not in the database.
            "openStreams": null,
        });
        println!("{body}");
        return;
    }
    println!("users:          {}", stats.users);
    println!("devices:        {} signed in, {} never synced", stats.live_sessions, stats.never_synced);
    match lag.max {
        Some(max) => println!(
            "lag (versions): p50 {}, p90 {}, p99 {}, max {max}",
            lag.p50.unwrap_or(0),
            lag.p90.unwrap_or(0),
            lag.p99.unwrap_or(0)
        ),
        None => println!("lag (versions): no device has synced"),
    }
    println!("materials:      {}", stats.materials);
    println!("storage:        {} in {} files", human_bytes(stats.blob_bytes), stats.blobs);
    println!("open streams:   not in the database; see shelf_open_streams on each server's --metrics-listen");
}

/// Nearest-rank percentiles of the devices' lags.
#[derive(Debug, PartialEq)]
struct Lag {
    p50: Option<i64>,
    p90: Option<i64>,
    p99: Option<i64>,
    max: Option<i64>,
}

impl Lag {
    fn of(lags: &[i64]) -> Self {
        let mut sorted = lags.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
            sorted.get(index).copied()
        };
        Lag { p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), max: sorted.last().copied() }
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_percentiles_are_nearest_rank() {
        assert_eq!(Lag::of(&[]), Lag { p50: None, p90: None, p99: None, max: None });
        assert_eq!(Lag::of(&[4]), Lag { p50: Some(4), p90: Some(4), p99: Some(4), max: Some(4) });
        let lags: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(Lag::of(&lags), Lag { p50: Some(50), p90: Some(90), p99: Some(99), max: Some(100) });
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
