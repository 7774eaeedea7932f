//! A private redis-server on a free port, so a scenario (or a test) can stop and start it without
//! touching anyone else's.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        Self::start_on(port).await
    }

    /// Starts on `port` (again, after [`PrivateRedis::stop`]).
    pub async fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/services installs it)");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { port, child: Some(child) }
    }

    /// Kills it (SIGKILL): the broker is simply gone, with every connection.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.kill().await.is_ok() {
                // Reaping can only fail if it was reaped already.
                child.wait().await.ok();
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}
