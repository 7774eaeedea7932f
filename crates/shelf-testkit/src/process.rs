//! Real `shelf serve` child processes (CLI tests, the fault suite): started on a free port, ready
//! once they print their address (no sleeps), and killable/restartable on the same port and database.

#![allow(clippy::unwrap_used)] // Test support: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const WAIT: Duration = Duration::from_secs(20);

/// A `shelf serve` process, killed when dropped.
pub struct Serve {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    bin: PathBuf,
    database_url: String,
    extra: Vec<String>,
    data: tempfile::TempDir,
    child: Option<Child>,
}

impl Serve {
    /// Starts the `shelf` binary `bin` on a port the OS picks, over `database_url`, with extra flags.
    pub async fn start(bin: &Path, database_url: &str, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, base) = spawn(bin, database_url, "127.0.0.1:0", data.path(), &extra).await;
        Self { base, bin: bin.to_owned(), database_url: database_url.to_owned(), extra, data, child: Some(child) }
    }

    /// Whether the process is still running (it did not exit or crash by itself).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the process (SIGKILL): the server is simply gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
            child.wait().await.unwrap();
        }
    }

    /// Starts again on the same port, database and data folder.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listen = self.base.trim_start_matches("http://").to_owned();
        let (child, base) = spawn(&self.bin, &self.database_url, &listen, self.data.path(), &self.extra).await;
        assert_eq!(base, self.base);
        self.child = Some(child);
    }
}

async fn spawn(bin: &Path, database_url: &str, listen: &str, data: &Path, extra: &[String]) -> (Child, String) {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", listen, "--database-url", database_url])
        .args(extra)
        .env("SHELF_DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("shelf binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Shelf is running at ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("shelf exited before printing its address");
    })
    .await
    .expect("shelf printed its address");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}
