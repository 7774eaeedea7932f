//! What `shelf serve` is configured from: its flags (each also `SHELF_<NAME>`) and `shelf.toml`.
//! `config.rs` layers them into one [`Config`](super::Config) and checks every setting.

use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

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
    /// SQLite only: `full` acknowledges a write once it is on disk (survives power loss);
    /// `normal` survives a crash of Shelf but may lose the last writes to a power loss
    /// [default: full].
    #[arg(long, env = "SHELF_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<String>,
    /// Days tombstones stay in the change feed [default: 30].
    #[arg(long, env = "SHELF_TOMBSTONE_RETENTION_DAYS")]
    pub tombstone_retention_days: Option<u64>,
    /// Days a login stays valid [default: 30].
    #[arg(long, env = "SHELF_SESSION_TTL_DAYS")]
    pub session_ttl_days: Option<u64>,
    /// Largest accepted request body in bytes [default: 4194304].
    #[arg(long, env = "SHELF_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// `true`: the session cookie is always `Secure` (`__Host-shelf_session`); `false`: never
    /// [default: `Secure` when a trusted proxy says the client used HTTPS].
    #[arg(long, env = "SHELF_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// Origins besides the server's own that may use the session cookie for changes and streams,
    /// comma-separated, e.g. `https://app.example.com,http://localhost:5173` [default: none].
    #[arg(long, env = "SHELF_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Reverse proxies whose forwarding header names the client and its scheme, e.g.
    /// `10.0.0.0/8,127.0.0.1` [default: none; the socket peer is the client].
    #[arg(long, env = "SHELF_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// The header those proxies set: `x-forwarded-for` (with `X-Forwarded-Proto`/`-Host`) or
    /// `forwarded` (RFC 7239) [default: x-forwarded-for].
    #[arg(long, env = "SHELF_PROXY_HEADER")]
    pub proxy_header: Option<String>,
    /// Wrong-password logins per account per window; 0 = no limit [default: 10].
    #[arg(long, env = "SHELF_LOGIN_FAILURES_PER_ACCOUNT")]
    pub login_failures_per_account: Option<u32>,
    /// Failed logins per client address per window; 0 = no limit [default: 100].
    #[arg(long, env = "SHELF_LOGIN_FAILURES_PER_ADDRESS")]
    pub login_failures_per_address: Option<u32>,
    /// Registrations per client address per window; 0 = no limit [default: 20].
    #[arg(long, env = "SHELF_REGISTRATIONS_PER_ADDRESS")]
    pub registrations_per_address: Option<u32>,
    /// The window those limits count in, in seconds [default: 900].
    #[arg(long, env = "SHELF_RATE_LIMIT_WINDOW_SECS")]
    pub rate_limit_window_secs: Option<u64>,
    /// Logins/registrations that may wait for a free core to hash a password; more get 503
    /// [default: 64].
    #[arg(long, env = "SHELF_HASHING_QUEUE")]
    pub hashing_queue: Option<usize>,
    /// Runtime threads that serve requests and streams, 1–1024 [default: one per core]. One on
    /// a two-core machine spends less CPU per write but lets a long request delay the others
    /// (README, "Running it").
    #[arg(long, env = "SHELF_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Seconds between heartbeat comments on event streams [default: 30].
    #[arg(long, env = "SHELF_SSE_HEARTBEAT_SECS")]
    pub sse_heartbeat_secs: Option<u64>,
    /// Fan-out between instances: `in-process` (one instance), `postgres` (LISTEN/NOTIFY on the
    /// database), or a Redis URL such as `redis://127.0.0.1:6379` [default: in-process].
    #[arg(long, env = "SHELF_BUS")]
    pub bus: Option<String>,
    /// While the bus broker is unreachable, how often versions are polled from the database, in
    /// milliseconds, at least 10; only with `--bus postgres` or Redis [default: 1000].
    #[arg(long, env = "SHELF_BUS_POLL_MILLIS")]
    pub bus_poll_millis: Option<u64>,
    /// Where attachment bytes live: `local` (a folder in the data dir) or `s3` [default: s3 if any
    /// `--s3-*` flag is given, else local].
    #[arg(long, env = "SHELF_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (credentials from AWS_* variables).
    #[arg(long, env = "SHELF_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 bucket (required for S3).
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
    /// Hosts Web Push subscriptions may point at, comma-separated, `*.` wildcards allowed;
    /// `https://` only, except a loopback host listed by name (`127.0.0.1`), which may use
    /// `http://` [default: the browsers' push services: fcm.googleapis.com,
    /// *.push.services.mozilla.com, *.notify.windows.com, *.push.apple.com, web.push.apple.com].
    #[arg(long, env = "SHELF_PUSH_ALLOWED_HOSTS")]
    pub push_allowed_hosts: Option<String>,
    /// The VAPID private key: a file holding a PKCS#8 PEM P-256 key or base64url of the 32-byte
    /// private scalar, or that base64url text itself [default: a key generated at first start
    /// and kept in the database].
    #[arg(long, env = "SHELF_VAPID_PRIVATE_KEY")]
    pub vapid_private_key: Option<String>,
    /// Who push services contact about this server's pushes: `mailto:` or `https:` URL
    /// [default: mailto:admin@localhost; Apple's push service wants a real one].
    #[arg(long, env = "SHELF_VAPID_SUBJECT")]
    pub vapid_subject: Option<String>,
    /// Log lines as `text` (for people) or `json` (one object per line, for log collectors); the
    /// level comes from `RUST_LOG` [default: text].
    #[arg(long, env = "SHELF_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` on a listener of their own, e.g.
    /// `127.0.0.1:9187`; keep it off the public network [default: off].
    #[arg(long, env = "SHELF_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

/// `shelf.toml`: the same names as the flags, in kebab-case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sqlite_synchronous: Option<String>,
    pub tombstone_retention_days: Option<u64>,
    pub session_ttl_days: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub secure_cookies: Option<bool>,
    pub allowed_origins: Option<String>,
    pub trusted_proxies: Option<String>,
    pub proxy_header: Option<String>,
    pub login_failures_per_account: Option<u32>,
    pub login_failures_per_address: Option<u32>,
    pub registrations_per_address: Option<u32>,
    pub rate_limit_window_secs: Option<u64>,
    pub hashing_queue: Option<usize>,
    pub worker_threads: Option<usize>,
    pub sse_heartbeat_secs: Option<u64>,
    pub bus: Option<String>,
    pub bus_poll_millis: Option<u64>,
    pub blob_store: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_region: Option<String>,
    pub max_file_size: Option<String>,
    pub user_quota: Option<String>,
    pub push_allowed_hosts: Option<String>,
    pub vapid_private_key: Option<String>,
    pub vapid_subject: Option<String>,
    pub log_format: Option<String>,
    pub metrics_listen: Option<String>,
}
