//! One configuration, layered: defaults < `shelf.toml` < `SHELF_*` environment < flags.
//! (clap resolves flag-over-environment; the file fills what both leave unset.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use shelf_server::client::{Origin, ProxyHeader, TrustedProxies};
use shelf_server::service::push::{AllowedHosts, PrivateKeyBytes};
use shelf_server::service::rate_limits::RateLimits;

const DAY: u64 = 24 * 3600;

#[path = "config_inputs.rs"]
mod inputs;
pub use inputs::{FileConfig, ServeArgs};

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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => anyhow::bail!("--log-format must be text or json (got {other:?})"),
        }
    }
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub durability: shelf_store_sqlite::Durability,
    pub tombstone_retention: Duration,
    pub session_ttl: Duration,
    pub max_body_bytes: usize,
    pub secure_cookies: Option<bool>,
    pub allowed_origins: Vec<Origin>,
    pub trusted_proxies: TrustedProxies,
    pub rate_limits: RateLimits,
    pub hashing_queue: usize,
    /// Runtime worker threads; `None` is tokio's default, one per core.
    pub worker_threads: Option<usize>,
    pub sse_heartbeat: Duration,
    pub bus: BusChoice,
    pub bus_poll_interval: Duration,
    pub blobs: BlobChoice,
    pub max_file_size: u64,
    pub user_quota: u64,
    pub push_allowed_hosts: AllowedHosts,
    /// Debug shows it as `***`.
    pub vapid_private_key: Option<PrivateKeyBytes>,
    pub vapid_subject: String,
    pub log_format: LogFormat,
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
            .field("durability", &self.durability)
            .field("tombstone_retention", &self.tombstone_retention)
            .field("session_ttl", &self.session_ttl)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("secure_cookies", &self.secure_cookies)
            .field("allowed_origins", &self.allowed_origins.iter().map(ToString::to_string).collect::<Vec<_>>())
            .field("trusted_proxies", &self.trusted_proxies)
            .field("rate_limits", &self.rate_limits)
            .field("hashing_queue", &self.hashing_queue)
            .field("worker_threads", &self.worker_threads)
            .field("sse_heartbeat", &self.sse_heartbeat)
            .field("bus", &match &self.bus {
                BusChoice::Redis(url) => format!("Redis({})", redact_url(url)),
                other => format!("{other:?}"),
            })
            .field("bus_poll_interval", &self.bus_poll_interval)
            .field("blobs", &self.blobs)
            .field("max_file_size", &self.max_file_size)
            .field("user_quota", &self.user_quota)
            .field("push_allowed_hosts", &self.push_allowed_hosts)
            .field("vapid_private_key", &self.vapid_private_key)
            .field("vapid_subject", &self.vapid_subject)
            .field("log_format", &self.log_format)
            .field("metrics_listen", &self.metrics_listen)
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

    /// Layers flags over the file over defaults. No setting is ever ignored: one that would
    /// have no effect with the others (S3 details with `--blob-store local`, a poll interval
    /// with the in-process bus, a proxy header without proxies) stops the start with a message
    /// naming it, and S3 details alone select S3.
    pub fn resolve(args: ServeArgs, file: FileConfig) -> anyhow::Result<Self> {
        let database_url = args.database_url.or(file.database_url);
        let bus = match args.bus.or(file.bus) {
            Some(raw) => BusChoice::parse(&raw)?,
            None => BusChoice::InProcess,
        };
        let on_postgres = database_url.as_deref().is_some_and(|url| url.starts_with("postgres"));
        let durability = match (args.sqlite_synchronous.or(file.sqlite_synchronous).as_deref(), on_postgres) {
            (Some(_), true) => anyhow::bail!(
                "--sqlite-synchronous only applies to SQLite; on PostgreSQL durability is the server's synchronous_commit"
            ),
            (None, _) | (Some("full"), false) => shelf_store_sqlite::Durability::Full,
            (Some("normal"), false) => shelf_store_sqlite::Durability::Normal,
            (Some(other), false) => anyhow::bail!("--sqlite-synchronous must be full or normal (got {other:?})"),
        };
        anyhow::ensure!(bus != BusChoice::Postgres || on_postgres, "--bus postgres needs a PostgreSQL --database-url");
        let bus_poll_interval = match (args.bus_poll_millis.or(file.bus_poll_millis), &bus) {
            (Some(_), BusChoice::InProcess) => {
                anyhow::bail!("--bus-poll-millis only applies to --bus postgres or a Redis bus; the in-process bus never polls")
            }
            (Some(millis), _) if millis < 10 => anyhow::bail!("--bus-poll-millis must be at least 10 (got {millis})"),
            (millis, _) => Duration::from_millis(millis.unwrap_or(1000)),
        };
        let s3 = S3Flags {
            endpoint: args.s3_endpoint.or(file.s3_endpoint),
            bucket: args.s3_bucket.or(file.s3_bucket),
            region: args.s3_region.or(file.s3_region),
        };
        let blobs = s3.choose(args.blob_store.or(file.blob_store).as_deref())?;
        let max_file_size = parse_size(args.max_file_size.or(file.max_file_size).as_deref().unwrap_or("100MiB"))?;
        let user_quota = parse_size(args.user_quota.or(file.user_quota).as_deref().unwrap_or("10GiB"))?;
        let sse_heartbeat_secs = args.sse_heartbeat_secs.or(file.sse_heartbeat_secs).unwrap_or(30);
        anyhow::ensure!(sse_heartbeat_secs >= 1, "--sse-heartbeat-secs must be at least 1");
        let session_ttl_days = args.session_ttl_days.or(file.session_ttl_days).unwrap_or(30);
        anyhow::ensure!((1..=3650).contains(&session_ttl_days), "--session-ttl-days must be from 1 to 3650");
        let tombstone_retention_days = args.tombstone_retention_days.or(file.tombstone_retention_days).unwrap_or(30);
        anyhow::ensure!(tombstone_retention_days <= 36500, "--tombstone-retention-days must be at most 36500");
        let allowed_origins = args
            .allowed_origins
            .or(file.allowed_origins)
            .map(|raw| parse_origins(&raw))
            .transpose()?
            .unwrap_or_default();
        let trusted_proxies = trusted_proxies(
            args.trusted_proxies.or(file.trusted_proxies).as_deref(),
            args.proxy_header.or(file.proxy_header).as_deref(),
        )?;
        let defaults = RateLimits::default();
        let window_secs = args.rate_limit_window_secs.or(file.rate_limit_window_secs).unwrap_or(defaults.window.as_secs());
        anyhow::ensure!(window_secs >= 1, "--rate-limit-window-secs must be at least 1");
        let rate_limits = RateLimits {
            login_failures_per_account: args
                .login_failures_per_account
                .or(file.login_failures_per_account)
                .unwrap_or(defaults.login_failures_per_account),
            login_failures_per_address: args
                .login_failures_per_address
                .or(file.login_failures_per_address)
                .unwrap_or(defaults.login_failures_per_address),
            registrations_per_address: args
                .registrations_per_address
                .or(file.registrations_per_address)
                .unwrap_or(defaults.registrations_per_address),
            window: Duration::from_secs(window_secs),
        };
        let push_allowed_hosts = match args.push_allowed_hosts.or(file.push_allowed_hosts) {
            Some(raw) => AllowedHosts::parse(&raw).map_err(|e| anyhow::anyhow!("--push-allowed-hosts: {e}"))?,
            None => AllowedHosts::default(),
        };
        let vapid_private_key = args.vapid_private_key.or(file.vapid_private_key).map(|raw| vapid_key(&raw)).transpose()?;
        let vapid_subject = args.vapid_subject.or(file.vapid_subject).unwrap_or_else(|| "mailto:admin@localhost".to_owned());
        anyhow::ensure!(
            (vapid_subject.starts_with("mailto:") && vapid_subject.len() > 7) || vapid_subject.starts_with("https://"),
            "--vapid-subject must be a mailto: or https: URL (got {vapid_subject:?})"
        );
        let log_format = args.log_format.or(file.log_format).as_deref().map(LogFormat::parse).transpose()?.unwrap_or_default();
        let metrics_listen = args
            .metrics_listen
            .or(file.metrics_listen)
            .map(|raw| {
                raw.trim().parse::<std::net::SocketAddr>().map_err(|_| {
                    anyhow::anyhow!("--metrics-listen must be an address with a port, e.g. 127.0.0.1:9187 (got {raw:?})")
                })
            })
            .transpose()?;
        let worker_threads = args.worker_threads.or(file.worker_threads);
        if let Some(threads) = worker_threads {
            anyhow::ensure!((1..=MAX_WORKER_THREADS).contains(&threads), "--worker-threads must be 1 to {MAX_WORKER_THREADS} (got {threads})");
        }
        Ok(Self {
            push_allowed_hosts,
            vapid_private_key,
            vapid_subject,
            metrics_listen,
            log_format,
            blobs,
            max_file_size,
            user_quota,
            listen: args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8787".to_owned()),
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("shelf-data")),
            database_url,
            durability,
            tombstone_retention: Duration::from_secs(tombstone_retention_days * DAY),
            session_ttl: Duration::from_secs(session_ttl_days * DAY),
            max_body_bytes: args.max_body_bytes.or(file.max_body_bytes).unwrap_or(4 * 1024 * 1024),
            secure_cookies: args.secure_cookies.or(file.secure_cookies),
            allowed_origins,
            trusted_proxies,
            rate_limits,
            hashing_queue: args.hashing_queue.or(file.hashing_queue).unwrap_or(64),
            worker_threads,
            sse_heartbeat: Duration::from_secs(sse_heartbeat_secs),
            bus,
            bus_poll_interval,
        })
    }

    /// The database to open: the configured URL, or `shelf.db` in the data folder.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("shelf.db").display()))
    }
}

/// The `--s3-*` settings, however they were given.
struct S3Flags {
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
}

impl S3Flags {
    fn given(&self) -> Option<&'static str> {
        [(self.endpoint.is_some(), "--s3-endpoint"), (self.bucket.is_some(), "--s3-bucket"), (self.region.is_some(), "--s3-region")]
            .into_iter()
            .find_map(|(given, flag)| given.then_some(flag))
    }

    /// `--blob-store` as given, or S3 when only S3 details were given.
    fn choose(self, store: Option<&str>) -> anyhow::Result<BlobChoice> {
        match (store, self.given()) {
            (None, None) | (Some("local"), None) => Ok(BlobChoice::Local),
            (Some("local"), Some(flag)) => anyhow::bail!("{flag} has no effect with --blob-store local; drop it or use --blob-store s3"),
            (None | Some("s3"), given) => {
                let why = match (store, given) {
                    (None, Some(flag)) => flag,
                    _ => "--blob-store s3",
                };
                let bucket = self.bucket.ok_or_else(|| anyhow::anyhow!("{why} selects S3 storage, which needs --s3-bucket"))?;
                Ok(BlobChoice::S3 { endpoint: self.endpoint, bucket, region: self.region.unwrap_or_else(|| "us-east-1".into()) })
            }
            (Some(other), _) => anyhow::bail!("unknown blob store {other:?}: use local or s3"),
        }
    }
}

fn parse_origins(raw: &str) -> anyhow::Result<Vec<Origin>> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Origin::parse(s).ok_or_else(|| anyhow::anyhow!("invalid --allowed-origins entry {s:?}: use scheme://host[:port]")))
        .collect()
}

fn trusted_proxies(networks: Option<&str>, header: Option<&str>) -> anyhow::Result<TrustedProxies> {
    let header = header.map(ProxyHeader::parse).transpose().map_err(|e| anyhow::anyhow!("--proxy-header: {e}"))?;
    match networks {
        None if header.is_some() => anyhow::bail!("--proxy-header has no effect without --trusted-proxies"),
        None => Ok(TrustedProxies::default()),
        Some(raw) => Ok(TrustedProxies {
            networks: TrustedProxies::parse_networks(raw).map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
            header: header.unwrap_or_default(),
        }),
    }
}

/// `--vapid-private-key`: a file's contents if it names a file, else the key text itself.
fn vapid_key(raw: &str) -> anyhow::Result<PrivateKeyBytes> {
    let path = Path::new(raw);
    let (text, source) = if path.is_file() {
        (std::fs::read_to_string(path).with_context(|| format!("--vapid-private-key: cannot read {}", path.display()))?, "the file")
    } else {
        (raw.to_owned(), "the value")
    };
    let bytes = shelf_server::service::push::vapid::parse_private_key(&text).map_err(|e| anyhow::anyhow!("--vapid-private-key: {source}: {e}"))?;
    Ok(PrivateKeyBytes(bytes))
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))
}

/// Most runtime worker threads `--worker-threads` takes: beyond the cores they only add switching.
const MAX_WORKER_THREADS: usize = 1024;

const KNOWN_ENV: &[&str] = &[
    "SHELF_CONFIG",
    "SHELF_LISTEN",
    "SHELF_DATA_DIR",
    "SHELF_DATABASE_URL",
    "SHELF_SQLITE_SYNCHRONOUS",
    "SHELF_TOMBSTONE_RETENTION_DAYS",
    "SHELF_SESSION_TTL_DAYS",
    "SHELF_MAX_BODY_BYTES",
    "SHELF_SECURE_COOKIES",
    "SHELF_ALLOWED_ORIGINS",
    "SHELF_TRUSTED_PROXIES",
    "SHELF_PROXY_HEADER",
    "SHELF_LOGIN_FAILURES_PER_ACCOUNT",
    "SHELF_LOGIN_FAILURES_PER_ADDRESS",
    "SHELF_REGISTRATIONS_PER_ADDRESS",
    "SHELF_RATE_LIMIT_WINDOW_SECS",
    "SHELF_HASHING_QUEUE",
    "SHELF_WORKER_THREADS",
    "SHELF_SSE_HEARTBEAT_SECS",
    "SHELF_BUS",
    "SHELF_BUS_POLL_MILLIS",
    "SHELF_BLOB_STORE",
    "SHELF_S3_ENDPOINT",
    "SHELF_S3_BUCKET",
    "SHELF_S3_REGION",
    "SHELF_MAX_FILE_SIZE",
    "SHELF_USER_QUOTA",
    "SHELF_PUSH_ALLOWED_HOSTS",
    "SHELF_VAPID_PRIVATE_KEY",
    "SHELF_VAPID_SUBJECT",
    "SHELF_LOG_FORMAT",
    "SHELF_METRICS_LISTEN",
];

/// Variables of the client commands (`--profile`), often set in the same shell as `shelf serve`.
const CLIENT_ENV: &[&str] = &["SHELF_PROFILE"];

/// `SHELF_*` variables this version does not read: usually a typo worth a warning.
pub fn unknown_env_names() -> Vec<String> {
    std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("SHELF_") && !name.starts_with("SHELF_TEST_"))
        .filter(|name| !KNOWN_ENV.contains(&name.as_str()) && !CLIENT_ENV.contains(&name.as_str()))
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
