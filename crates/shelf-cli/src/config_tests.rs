//! Unit tests of `config.rs`: layering, parsing, and that no setting is ignored silently.

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

fn resolve(flags: &[&str]) -> anyhow::Result<Config> {
    let mut argv = vec!["shelf"];
    argv.extend_from_slice(flags);
    Config::resolve(Cli::try_parse_from(argv).unwrap().serve, FileConfig::default())
}

fn error(flags: &[&str]) -> String {
    format!("{:#}", resolve(flags).unwrap_err())
}

#[test]
fn cfg1_s3_settings_alone_select_s3_or_name_the_missing_flag() {
    let config = resolve(&["--s3-endpoint", "http://127.0.0.1:9000", "--s3-bucket", "shelf"]).unwrap();
    let expected = BlobChoice::S3 { endpoint: Some("http://127.0.0.1:9000".into()), bucket: "shelf".into(), region: "us-east-1".into() };
    assert_eq!(config.blobs, expected);
    let message = error(&["--s3-region", "eu-west-1"]);
    assert!(message.contains("--s3-region") && message.contains("--s3-bucket"), "{message}");
    let message = error(&["--blob-store", "local", "--s3-endpoint", "http://127.0.0.1:9000"]);
    assert!(message.contains("--s3-endpoint") && message.contains("--blob-store local"), "{message}");
    assert!(error(&["--blob-store", "s3"]).contains("--s3-bucket"));
    assert_eq!(resolve(&[]).unwrap().blobs, BlobChoice::Local);
}

#[test]
fn cfg1_bus_settings_that_would_do_nothing_stop_the_start() {
    assert!(error(&["--bus-poll-millis", "200"]).contains("--bus-poll-millis"));
    assert!(error(&["--bus", "redis://127.0.0.1:6379", "--bus-poll-millis", "5"]).contains("at least 10"));
    let redis = resolve(&["--bus", "redis://127.0.0.1:6379", "--bus-poll-millis", "200"]).unwrap();
    assert_eq!(redis.bus_poll_interval, Duration::from_millis(200));
    assert!(error(&["--bus", "postgres"]).contains("PostgreSQL --database-url"));
    assert!(resolve(&["--bus", "postgres", "--database-url", "postgres://db/shelf"]).is_ok());
}

#[test]
fn cfg1_out_of_range_durations_are_refused_not_adjusted() {
    assert!(error(&["--sse-heartbeat-secs", "0"]).contains("--sse-heartbeat-secs"));
    assert!(error(&["--session-ttl-days", "0"]).contains("--session-ttl-days"));
    assert!(error(&["--session-ttl-days", "100000000000000"]).contains("--session-ttl-days"));
    assert!(error(&["--tombstone-retention-days", "100000000000000"]).contains("--tombstone-retention-days"));
    assert!(error(&["--rate-limit-window-secs", "0"]).contains("--rate-limit-window-secs"));
}

#[test]
fn proxies_origins_cookies_and_limits_resolve() {
    let config = resolve(&[
        "--trusted-proxies", "10.0.0.0/8,127.0.0.1",
        "--proxy-header", "forwarded",
        "--allowed-origins", "https://app.example.com, http://localhost:5173",
        "--secure-cookies", "true",
        "--login-failures-per-account", "5",
        "--registrations-per-address", "0",
        "--hashing-queue", "8",
        "--worker-threads", "1",
    ])
    .unwrap();
    assert_eq!(config.trusted_proxies.networks.len(), 2);
    assert_eq!(config.trusted_proxies.header, ProxyHeader::Forwarded);
    assert_eq!(config.allowed_origins, vec![Origin::parse("https://app.example.com").unwrap(), Origin::parse("http://localhost:5173").unwrap()]);
    assert_eq!(config.secure_cookies, Some(true));
    assert_eq!((config.rate_limits.login_failures_per_account, config.rate_limits.registrations_per_address), (5, 0));
    assert_eq!(config.rate_limits.login_failures_per_address, RateLimits::default().login_failures_per_address);
    assert_eq!((config.hashing_queue, config.worker_threads), (8, Some(1)));
    let defaults = resolve(&[]).unwrap();
    assert_eq!((defaults.secure_cookies, defaults.rate_limits, defaults.hashing_queue), (None, RateLimits::default(), 64));
    assert_eq!(defaults.worker_threads, None, "tokio's default: one per core");
    assert!(error(&["--worker-threads", "0"]).contains("--worker-threads must be 1 to 1024"));
    assert!(error(&["--worker-threads", "5000"]).contains("--worker-threads"));
    assert!(error(&["--proxy-header", "forwarded"]).contains("--trusted-proxies"));
    assert!(error(&["--trusted-proxies", "10.0.0.0/40"]).contains("--trusted-proxies"));
    assert!(error(&["--allowed-origins", "example.com"]).contains("--allowed-origins"));
}

/// README lists every environment variable, and `KNOWN_ENV` (the unknown-variable warning)
/// knows every flag's variable: a flag cannot be added without both.
#[test]
fn cfg1_every_flag_is_documented_and_known() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let command = Cli::command();
    let envs: Vec<String> =
        command.get_arguments().filter_map(|arg| arg.get_env()).map(|env| env.to_string_lossy().into_owned()).collect();
    assert_eq!(envs.len(), KNOWN_ENV.len());
    for env in &envs {
        assert!(KNOWN_ENV.contains(&env.as_str()), "{env} missing from KNOWN_ENV");
        assert!(env == "SHELF_CONFIG" || readme.contains(&format!("`{env}`")), "{env} missing from README");
    }
}

#[test]
fn cfg1_sqlite_durability_is_full_unless_asked_and_refused_on_postgres() {
    let resolve = |args: ServeArgs| Config::resolve(args, FileConfig::default());
    assert_eq!(resolve(ServeArgs::default()).unwrap().durability, shelf_store_sqlite::Durability::Full);
    let normal = ServeArgs { sqlite_synchronous: Some("normal".into()), ..Default::default() };
    assert_eq!(resolve(normal).unwrap().durability, shelf_store_sqlite::Durability::Normal);
    assert!(resolve(ServeArgs { sqlite_synchronous: Some("off".into()), ..Default::default() }).is_err());
    let on_postgres = ServeArgs {
        sqlite_synchronous: Some("full".into()),
        database_url: Some("postgres://postgres@127.0.0.1/shelf".into()),
        ..Default::default()
    };
    let refused = resolve(on_postgres).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("--sqlite-synchronous"), "{refused}");
}

/// `shelf serve` does not warn about the client's own variable.
#[test]
fn cl8_the_client_profile_variable_is_not_an_unknown_setting() {
    // The variable is read by no other test in this binary.
    std::env::set_var("SHELF_PROFILE", "laptop");
    let unknown = unknown_env_names();
    std::env::remove_var("SHELF_PROFILE");
    assert!(!unknown.iter().any(|name| name == "SHELF_PROFILE"), "{unknown:?}");
}

#[test]
fn push_hosts_vapid_key_and_subject_are_checked() {
    let config = Config::resolve(ServeArgs::default(), FileConfig::default()).unwrap();
    assert_eq!(config.push_allowed_hosts, AllowedHosts::default());
    assert_eq!((config.vapid_private_key.is_none(), config.vapid_subject.as_str()), (true, "mailto:admin@localhost"));

    let key = "RS0WdYWWo1HajXg3NZR1olzCf31i-ZBGDkFyCs7j1jw";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vapid.key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    for given in [key.to_owned(), file.display().to_string()] {
        let args = ServeArgs {
            vapid_private_key: Some(given),
            vapid_subject: Some("mailto:ops@example.com".into()),
            push_allowed_hosts: Some("127.0.0.1,*.push.example.com".into()),
            ..Default::default()
        };
        let config = Config::resolve(args, FileConfig::default()).unwrap();
        assert_eq!(config.vapid_private_key.as_ref().map(|k| k.0.len()), Some(32));
        assert!(!format!("{config:?}").contains(key), "the key is redacted");
        assert_eq!(config.push_allowed_hosts.0.len(), 2);
    }
    for (args, flag) in [
        (ServeArgs { vapid_private_key: Some("not-a-key".into()), ..Default::default() }, "--vapid-private-key"),
        (ServeArgs { vapid_subject: Some("ops@example.com".into()), ..Default::default() }, "--vapid-subject"),
        (ServeArgs { push_allowed_hosts: Some("https://x.example".into()), ..Default::default() }, "--push-allowed-hosts"),
        (ServeArgs { push_allowed_hosts: Some(" , ".into()), ..Default::default() }, "--push-allowed-hosts"),
    ] {
        let error = Config::resolve(args, FileConfig::default()).unwrap_err().to_string();
        assert!(error.contains(flag), "{error}");
    }
}

#[test]
fn log_format_parses_and_refuses_unknown_formats() {
    let cli = Cli::try_parse_from(["shelf", "--log-format", "json"]).unwrap();
    assert_eq!(Config::resolve(cli.serve, FileConfig::default()).unwrap().log_format, LogFormat::Json);
    let file = FileConfig { log_format: Some("text".into()), ..Default::default() };
    assert_eq!(Config::resolve(ServeArgs::default(), file).unwrap().log_format, LogFormat::Text);
    let bad = Cli::try_parse_from(["shelf", "--log-format", "xml"]).unwrap();
    let error = Config::resolve(bad.serve, FileConfig::default()).unwrap_err().to_string();
    assert!(error.contains("--log-format"), "{error}");
}

#[test]
fn metrics_listen_is_off_by_default_and_must_be_an_address() {
    assert_eq!(Config::resolve(ServeArgs::default(), FileConfig::default()).unwrap().metrics_listen, None);
    let cli = Cli::try_parse_from(["shelf", "--metrics-listen", "127.0.0.1:9187"]).unwrap();
    assert_eq!(Config::resolve(cli.serve, FileConfig::default()).unwrap().metrics_listen, Some("127.0.0.1:9187".parse().unwrap()));
    let file = FileConfig { metrics_listen: Some("[::1]:9000".into()), ..Default::default() };
    assert_eq!(Config::resolve(ServeArgs::default(), file).unwrap().metrics_listen, Some("[::1]:9000".parse().unwrap()));
    let bad = Cli::try_parse_from(["shelf", "--metrics-listen", "localhost"]).unwrap();
    let error = Config::resolve(bad.serve, FileConfig::default()).unwrap_err().to_string();
    assert!(error.contains("--metrics-listen"), "{error}");
}
