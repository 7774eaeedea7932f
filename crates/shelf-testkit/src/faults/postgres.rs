//! A private PostgreSQL cluster on a free port (initdb as the `postgres` user), so a scenario can
//! crash and restart it without touching the machine's shared server.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        run("chown", &["postgres", &dir.path().display().to_string()]).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        let cluster = Self { dir, port };
        as_postgres("initdb", &["-D", &cluster.data(), "-A", "trust", "-U", "postgres"]).await;
        cluster.pg_ctl(&["start"]).await;
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A crash and restart: `-m immediate` stops without a checkpoint, so the restart replays WAL.
    pub async fn crash_restart(&self) {
        self.pg_ctl(&["-m", "immediate", "restart"]).await;
    }

    fn data(&self) -> String {
        PathBuf::from(self.dir.path()).join("data").display().to_string()
    }

    async fn pg_ctl(&self, action: &[&str]) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let log = self.dir.path().join("log").display().to_string();
        let mut args = vec!["-D", &self.data(), "-o", &options, "-l", &log, "-w"].into_iter().map(str::to_owned).collect::<Vec<_>>();
        args.extend(action.iter().map(|a| a.to_string()));
        as_postgres("pg_ctl", &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Best effort: the cluster dies with its folder either way once its files are gone.
        let stopped = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{BIN}/pg_ctl"), "-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(error) = stopped {
            eprintln!("cannot stop the private PostgreSQL: {error}");
        }
    }
}

async fn as_postgres(tool: &str, args: &[&str]) {
    let mut all = vec!["-u", "postgres", "--"];
    let path = format!("{BIN}/{tool}");
    all.push(&path);
    all.extend_from_slice(args);
    run("runuser", &all).await;
}

async fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().await.unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}
