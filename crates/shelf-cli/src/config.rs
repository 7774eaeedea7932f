//! One configuration, layered: defaults < `shelf.toml` < `SHELF_*` environment < flags.
//! (clap resolves flag-over-environment; the file fills what both leave unset.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

const DAY: u64 = 24 * 3600;

/// Flags of `shelf serve`. Every one can also come from `SHELF_<NAME>` or `shelf.toml`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Configuration file; `./shelf.toml` is read when present.
    #[arg(long, env = "SHELF_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8787].
    #[arg(long, env = "SHELF_LISTEN")]
    pub listen: Option<String>,
    /// Folder for the SQLite database and local files [default: ./shelf-data].
    #[arg(long, env = "SHELF_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` for PostgreSQL, `sqlite://…` for another SQLite file [default: SQLite in the data folder].
    #[arg(long, env = "SHELF_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Days tombstones stay in the change feed [default: 30].
    #[arg(long, env = "SHELF_TOMBSTONE_RETENTION_DAYS")]
    pub tombstone_retention_days: Option<u64>,
    /// Days a login stays valid [default: 30].
    #[arg(long, env = "SHELF_SESSION_TTL_DAYS")]
    pub session_ttl_days: Option<u64>,
    /// Largest accepted request body in bytes [default: 4194304].
    #[arg(long, env = "SHELF_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Mark the session cookie `Secure` (serve behind HTTPS) [default: false].
    #[arg(long, env = "SHELF_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// Seconds between heartbeat comments on event streams [default: 30].
    #[arg(long, env = "SHELF_SSE_HEARTBEAT_SECS")]
    pub sse_heartbeat_secs: Option<u64>,
    /// Fan-out between instances: `in-process` (one instance), `postgres` (LISTEN/NOTIFY on the
    /// database), or a Redis URL such as `redis://127.0.0.1:6379` [default: in-process].
    #[arg(long, env = "SHELF_BUS")]
    pub bus: Option<String>,
    /// While the bus broker is unreachable, how often versions are polled from the database, in
    /// milliseconds [default: 1000].
    #[arg(long, env = "SHELF_BUS_POLL_MILLIS")]
    pub bus_poll_millis: Option<u64>,
    /// Where attachment bytes live: `local` (a folder in the data dir) or `s3` [default: local].
    #[arg(long, env = "SHELF_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (credentials from AWS_* variables).
    #[arg(long, env = "SHELF_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 bucket.
    #[arg(long, env = "SHELF_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 region [default: us-east-1].
    #[arg(long, env = "SHELF_S3_REGION")]
    pub s3_region: Option<String>,
    /// Largest attachment, e.g. `100MiB` [default: 100MiB].
    #[arg(long, env = "SHELF_MAX_FILE_SIZE")]
    pub max_file_size: Option<String>,
    /// Attachment bytes per user, e.g. `10GiB` [default: 10GiB].
    #[arg(long, env = "SHELF_USER_QUOTA")]
    pub user_quota: Option<String>,
}

/// `shelf.toml`: the same names as the flags, in kebab-case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub tombstone_retention_days: Option<u64>,
    pub session_ttl_days: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub secure_cookies: Option<bool>,
    pub sse_heartbeat_secs: Option<u64>,
    pub bus: Option<String>,
    pub bus_poll_millis: Option<u64>,
    pub blob_store: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_region: Option<String>,
    pub max_file_size: Option<String>,
    pub user_quota: Option<String>,
}

/// Parses sizes like `100MiB`, `1GB`, `512KiB`, `4096` (bytes).
pub fn parse_size(raw: &str) -> anyhow::Result<u64> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: f64 = number.parse().map_err(|_| anyhow::anyhow!("invalid size {raw:?}: use e.g. 100MiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => anyhow::bail!("invalid size unit {other:?} in {raw:?}"),
    };
    Ok((number * factor).round() as u64)
}

/// Where attachment bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobChoice {
    Local,
    S3 { endpoint: Option<String>, bucket: String, region: String },
}

/// Which fan-out bus to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusChoice {
    InProcess,
    Postgres,
    Redis(String),
}

impl BusChoice {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "in-process" | "inprocess" | "memory" => Ok(BusChoice::InProcess),
            "postgres" | "postgresql" => Ok(BusChoice::Postgres),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(BusChoice::Redis(url.to_owned())),
            other => anyhow::bail!("unknown bus {other:?}: use in-process, postgres, or a redis:// URL"),
        }
    }
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub tombstone_retention: Duration,
    pub session_ttl: Duration,
    pub max_body_bytes: usize,
    pub secure_cookies: bool,
    pub sse_heartbeat: Duration,
    pub bus: BusChoice,
    pub bus_poll_interval: Duration,
    pub blobs: BlobChoice,
    pub max_file_size: u64,
    pub user_quota: u64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
            .field("tombstone_retention", &self.tombstone_retention)
            .field("session_ttl", &self.session_ttl)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("secure_cookies", &self.secure_cookies)
            .field("sse_heartbeat", &self.sse_heartbeat)
            .field("bus", &match &self.bus {
                BusChoice::Redis(url) => format!("Redis({})", redact_url(url)),
                other => format!("{other:?}"),
            })
            .field("bus_poll_interval", &self.bus_poll_interval)
            .field("blobs", &self.blobs)
            .field("max_file_size", &self.max_file_size)
            .field("user_quota", &self.user_quota)
            .finish()
    }
}

/// Hides the password in `scheme://user:password@host/...`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Reads the file named by `--config` (or `./shelf.toml` if it exists) and resolves.
    pub fn load(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None if Path::new("shelf.toml").exists() => read_file(Path::new("shelf.toml"))?,
            None => FileConfig::default(),
        };
        Self::resolve(args, file)
    }

    pub fn resolve(args: ServeArgs, file: FileConfig) -> anyhow::Result<Self> {
        let bus = match args.bus.or(file.bus) {
            Some(raw) => BusChoice::parse(&raw)?,
            None => BusChoice::InProcess,
        };
        let blobs = match args.blob_store.or(file.blob_store).as_deref() {
            None | Some("local") => BlobChoice::Local,
            Some("s3") => BlobChoice::S3 {
                endpoint: args.s3_endpoint.or(file.s3_endpoint),
                bucket: args.s3_bucket.or(file.s3_bucket).ok_or_else(|| anyhow::anyhow!("--blob-store s3 needs --s3-bucket"))?,
                region: args.s3_region.or(file.s3_region).unwrap_or_else(|| "us-east-1".into()),
            },
            Some(other) => anyhow::bail!("unknown blob store {other:?}: use local or s3"),
        };
        let max_file_size = parse_size(args.max_file_size.or(file.max_file_size).as_deref().unwrap_or("100MiB"))?;
        let user_quota = parse_size(args.user_quota.or(file.user_quota).as_deref().unwrap_or("10GiB"))?;
        Ok(Self {
            blobs,
            max_file_size,
            user_quota,
            listen: args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8787".to_owned()),
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("shelf-data")),
            database_url: args.database_url.or(file.database_url),
            tombstone_retention: Duration::from_secs(
                args.tombstone_retention_days.or(file.tombstone_retention_days).unwrap_or(30) * DAY,
            ),
            session_ttl: Duration::from_secs(args.session_ttl_days.or(file.session_ttl_days).unwrap_or(30) * DAY),
            max_body_bytes: args.max_body_bytes.or(file.max_body_bytes).unwrap_or(4 * 1024 * 1024),
            secure_cookies: args.secure_cookies.or(file.secure_cookies).unwrap_or(false),
            sse_heartbeat: Duration::from_secs(args.sse_heartbeat_secs.or(file.sse_heartbeat_secs).unwrap_or(30).max(1)),
            bus,
            bus_poll_interval: Duration::from_millis(args.bus_poll_millis.or(file.bus_poll_millis).unwrap_or(1000).max(10)),
        })
    }

    /// The database to open: the configured URL, or `shelf.db` in the data folder.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("shelf.db").display()))
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))
}

const KNOWN_ENV: &[&str] = &[
    "SHELF_CONFIG",
    "SHELF_LISTEN",
    "SHELF_DATA_DIR",
    "SHELF_DATABASE_URL",
    "SHELF_TOMBSTONE_RETENTION_DAYS",
    "SHELF_SESSION_TTL_DAYS",
    "SHELF_MAX_BODY_BYTES",
    "SHELF_SECURE_COOKIES",
    "SHELF_SSE_HEARTBEAT_SECS",
    "SHELF_BUS",
    "SHELF_BUS_POLL_MILLIS",
    "SHELF_BLOB_STORE",
    "SHELF_S3_ENDPOINT",
    "SHELF_S3_BUCKET",
    "SHELF_S3_REGION",
    "SHELF_MAX_FILE_SIZE",
    "SHELF_USER_QUOTA",
];

/// `SHELF_*` variables this version does not read: usually a typo worth a warning.
pub fn unknown_env_names() -> Vec<String> {
    std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("SHELF_") && !KNOWN_ENV.contains(&name.as_str()) && !name.starts_with("SHELF_TEST_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn layers_resolve_flag_over_env_over_file_over_default() {
        let file = FileConfig {
            listen: Some("127.0.0.1:1".into()),
            data_dir: Some("from-file".into()),
            session_ttl_days: Some(7),
            ..Default::default()
        };
        // The variable names are unique to this test, so no other test races on them.
        std::env::set_var("SHELF_DATA_DIR", "from-env");
        std::env::set_var("SHELF_LISTEN", "127.0.0.1:2");
        let cli = Cli::try_parse_from(["shelf", "--listen", "127.0.0.1:3"]).unwrap();
        let config = Config::resolve(cli.serve, file).unwrap();
        std::env::remove_var("SHELF_DATA_DIR");
        std::env::remove_var("SHELF_LISTEN");
        assert_eq!(config.listen, "127.0.0.1:3"); // flag beats env and file
        assert_eq!(config.data_dir, PathBuf::from("from-env")); // env beats file
        assert_eq!(config.session_ttl, Duration::from_secs(7 * DAY)); // file beats default
        assert_eq!(config.max_body_bytes, 4 * 1024 * 1024); // default
        assert_eq!(config.database_url(), "sqlite://from-env/shelf.db");
    }

    #[test]
    fn database_password_is_redacted() {
        let config = Config::resolve(
            ServeArgs { database_url: Some("postgres://shelf:hunter2@db/shelf".into()), ..Default::default() },
            FileConfig::default(),
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("postgres://shelf:***@db/shelf"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("100MiB").unwrap(), 100 * 1024 * 1024);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1.5 KiB").unwrap(), 1536);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn bus_choices_parse() {
        assert_eq!(BusChoice::parse("postgres").unwrap(), BusChoice::Postgres);
        assert_eq!(BusChoice::parse("redis://127.0.0.1:6379").unwrap(), BusChoice::Redis("redis://127.0.0.1:6379".into()));
        assert!(BusChoice::parse("kafka").is_err());
    }

    #[test]
    fn file_rejects_unknown_keys() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        let file: FileConfig = toml::from_str("listen = \"0.0.0.0:80\"\ndata-dir = \"/var/lib/shelf\"").unwrap();
        assert_eq!(file.data_dir, Some(PathBuf::from("/var/lib/shelf")));
    }
}
