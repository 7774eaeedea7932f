//! The fault suite's scenarios, shared by the `shelf-faults` command (full runs that print
//! figures) and the tests (short runs that assert no anomaly): a real `shelf serve` process is
//! killed with SIGKILL and restarted again and again while devices of two users write and read;
//! then every device pulls to the end and [`history::check`] judges what was recorded.

mod device;
pub mod history;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::process::Serve;
use crate::{Api, TestDatabase};
use device::Device;
use history::{check, ServerState, Verdict};

/// How hard to push.
#[derive(Debug, Clone)]
pub struct KillPlan {
    pub kills: usize,
    /// Devices of the first user; the second user always has one (isolation).
    pub devices: usize,
    /// Mean time between a restart and the next kill.
    pub interval: Duration,
}

/// What a run did and what the checker found.
#[derive(Debug)]
pub struct KillReport {
    pub kills: usize,
    pub elapsed: Duration,
    /// Requests that failed while the server was down and were sent again.
    pub retries: u64,
    /// Writes answered only after more than one attempt (their first answer was lost).
    pub retried_writes: usize,
    /// Of those, the ones the server had applied before it died (receipt `duplicate`).
    pub duplicates: usize,
    pub final_versions: Vec<i64>,
    /// Mean time from SIGKILL to the restarted server printing its address.
    pub mean_restart: Duration,
    pub verdict: Verdict,
}

/// Kills and restarts `shelf serve` (the binary `bin`, over `database`) `plan.kills` times while
/// devices write and read; returns the figures and the checker's verdict.
pub async fn kill_nine(bin: &Path, database: &TestDatabase, plan: &KillPlan) -> KillReport {
    let mut serve = Serve::start(bin, &database.url, &[]).await;
    let api = Api::new(&serve.base);
    let mut devices = Vec::new();
    for (user, count) in [(0, plan.devices), (1, 1)] {
        let first = api.user().await;
        devices.push(Device::new(devices.len(), user, &serve.base, &first.token));
        for _ in 1..count {
            let login = api.login(&first, &format!("device {}", devices.len())).await;
            devices.push(Device::new(devices.len(), user, &serve.base, login.body["token"].as_str().unwrap_or_default()));
        }
    }

    let started = Instant::now();
    let running = Arc::new(AtomicBool::new(true));
    let tasks: Vec<_> = devices
        .into_iter()
        .map(|mut device| {
            let running = running.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while running.load(Ordering::Relaxed) {
                    // Mostly writes, a read every few, studies once the device owns materials.
                    match n % 5 {
                        4 => device.read().await,
                        k => device.write(k % 2 == 1).await,
                    }
                    n += 1;
                }
                device
            })
        })
        .collect();

    let mut restarts = Duration::ZERO;
    for k in 0..plan.kills {
        // Spread kills over the interval, deterministically (no RNG needed to vary the phase).
        let jitter = (k as u64 * 7919) % (plan.interval.as_millis() as u64 + 1);
        tokio::time::sleep(plan.interval / 2 + Duration::from_millis(jitter)).await;
        let killed = Instant::now();
        serve.restart().await;
        restarts += killed.elapsed();
    }
    running.store(false, Ordering::Relaxed);
    let mut devices = Vec::new();
    for task in tasks {
        devices.push(task.await.expect("a device task panicked"));
    }
    let elapsed = started.elapsed();

    // Every device pulls to the end; the server's state is a fresh pull from 0 per user.
    let mut finals = HashMap::new();
    let mut servers = Vec::new();
    for device in &mut devices {
        device.read().await;
        finals.insert(device.index, device.replica.clone());
    }
    for user in [0, 1] {
        let Some(any) = devices.iter().find(|d| d.user == user) else { continue };
        let mut reader = Device::new(usize::MAX, user, &serve.base, any.token());
        reader.read().await;
        servers.push(ServerState { user, library_version: reader.cursor, library: reader.replica });
    }
    serve.stop().await;

    let writes = || devices.iter().flat_map(|d| d.ops.iter()).filter_map(|op| if let history::Op::Write(w) = op { Some(w) } else { None });
    let retried_writes = writes().filter(|w| w.attempts > 1).count();
    let duplicates = writes().filter(|w| w.status == "duplicate").count();
    let retries = devices.iter().map(|d| d.retries).sum();
    let logs: Vec<_> = devices.iter().map(|d| (d.index, d.user, d.ops.clone())).collect();
    let verdict = check(&logs, &servers, &finals);
    KillReport {
        kills: plan.kills,
        elapsed,
        retries,
        retried_writes,
        duplicates,
        final_versions: servers.iter().map(|s| s.library_version).collect(),
        mean_restart: restarts / plan.kills.max(1) as u32,
        verdict,
    }
}

impl KillReport {
    /// One line of figures.
    pub fn summary(&self, backend: &str) -> String {
        format!(
            "kill -9 {backend}: {} kills in {:.1} s (restart {:.0} ms mean); {} acknowledged writes ({} answered only on a retry, {} of them already applied), {} retried requests; final versions {:?}; history: {} operations ({} pages) checked, {} anomalies",
            self.kills,
            self.elapsed.as_secs_f64(),
            self.mean_restart.as_secs_f64() * 1000.0,
            self.verdict.writes,
            self.retried_writes,
            self.duplicates,
            self.retries,
            self.final_versions,
            self.verdict.operations,
            self.verdict.pages,
            self.verdict.anomalies.len(),
        )
    }
}
