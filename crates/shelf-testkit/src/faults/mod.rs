//! The fault suite's scenarios, shared by the `shelf-faults` command (full runs that print
//! figures) and the tests (short runs that assert no anomaly). Devices of two users write and
//! read through real `shelf serve` processes while a fault is injected again and again (the
//! server killed with SIGKILL; PostgreSQL crashed and restarted under two instances); then every
//! device pulls to the end and [`history::check`] judges what was recorded.

mod device;
pub mod history;
mod postgres;
mod redis;
mod storm;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::process::Serve;
use crate::{Api, SseReader, TestDatabase};
use device::Device;
use history::{check, ServerState, Verdict};
pub use postgres::PrivatePostgres;
pub use redis::PrivateRedis;
pub use storm::{reconnect_storm, StormPlan, StormReport};

/// How hard to push.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// How many times the fault is injected.
    pub faults: usize,
    /// Devices of the first user; the second user always has one (isolation).
    pub devices: usize,
    /// Mean time between recovering from one fault and the next.
    pub interval: Duration,
}

/// What a run did and what the checker found.
#[derive(Debug)]
pub struct FaultReport {
    pub scenario: &'static str,
    pub faults: usize,
    pub elapsed: Duration,
    /// Requests that failed while something was down and were sent again.
    pub retries: u64,
    /// Writes answered only after more than one attempt (their first answer was lost).
    pub retried_writes: usize,
    /// Of those, the ones the server had applied before the answer was lost (`duplicate`).
    pub duplicates: usize,
    pub final_versions: Vec<i64>,
    /// Mean time for the fault and the recovery (kill → ready, or PostgreSQL restart).
    pub mean_recovery: Duration,
    /// For scenarios with a live stream: the time from the last write until the stream on the
    /// other instance showed the final version.
    pub stream_caught_up: Option<Duration>,
    pub verdict: Verdict,
}

/// Kills and restarts `shelf serve` (the binary `bin`, over `database`) `plan.faults` times.
pub async fn kill_nine(bin: &Path, database: &TestDatabase, plan: &FaultPlan) -> FaultReport {
    let mut serve = Serve::start(bin, &database.url, &[]).await;
    let devices = enlist(&[serve.base.clone()], plan.devices).await;
    let run = Running::start(devices);
    let mut recovery = Duration::ZERO;
    for k in 0..plan.faults {
        tokio::time::sleep(pause(plan, k)).await;
        let killed = Instant::now();
        serve.restart().await;
        recovery += killed.elapsed();
    }
    let (devices, elapsed) = run.stop().await;
    let report = judge(devices, &serve.base).await;
    serve.stop().await;
    report.finish("kill -9", plan.faults, elapsed, recovery, None)
}

/// Two instances on a private PostgreSQL fanning out through `--bus postgres`; PostgreSQL is
/// crashed and restarted `plan.faults` times while devices write through both instances and a
/// stream listens on the second. The instances must recover by themselves and the stream resume.
pub async fn postgres_restart(bin: &Path, plan: &FaultPlan) -> FaultReport {
    let cluster = PrivatePostgres::start().await;
    let flags = ["--bus", "postgres", "--bus-poll-millis", "200", "--sse-heartbeat-secs", "1"];
    two_instances("postgres crash-restart", bin, &cluster.url(), &flags, plan, || async { cluster.crash_restart().await }).await
}

/// Two instances on one PostgreSQL database fanning out through a private Redis, which is killed
/// and started again `plan.faults` times: nothing is missed in the end.
pub async fn redis_restart(bin: &Path, database: &TestDatabase, plan: &FaultPlan) -> FaultReport {
    let redis = tokio::sync::Mutex::new(PrivateRedis::start().await);
    let url = redis.lock().await.url();
    let flags = ["--bus", &url, "--bus-poll-millis", "200", "--sse-heartbeat-secs", "1"];
    two_instances("redis restart", bin, &database.url, &flags, plan, || async {
        let mut redis = redis.lock().await;
        redis.stop().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        *redis = PrivateRedis::start_on(redis.port).await;
    })
    .await
}

/// Devices write through two instances over `database_url` while `fault` runs `plan.faults`
/// times; a stream on the second instance must reach the final version.
async fn two_instances<F, Fut>(scenario: &'static str, bin: &Path, database_url: &str, flags: &[&str], plan: &FaultPlan, fault: F) -> FaultReport
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let one = Serve::start(bin, database_url, flags).await;
    let two = Serve::start(bin, database_url, flags).await;
    let devices = enlist(&[one.base.clone(), two.base.clone()], plan.devices).await;
    let seen: Seen = Arc::new(std::sync::Mutex::new((0, Instant::now())));
    let listener = listen(&two.base, devices[0].token(), seen.clone());
    let run = Running::start(devices);
    let mut recovery = Duration::ZERO;
    for k in 0..plan.faults {
        tokio::time::sleep(pause(plan, k)).await;
        let started = Instant::now();
        fault().await;
        recovery += started.elapsed();
    }
    let (devices, elapsed) = run.stop().await;
    let written = Instant::now();
    let report = judge(devices, &one.base).await;
    let target = report.servers.first().map_or(0, |s| s.library_version);
    let reached = || seen.lock().ok().filter(|s| s.0 >= target).map(|s| s.1.saturating_duration_since(written));
    while reached().is_none() && written.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let caught_up = reached();
    listener.abort();
    report.finish(scenario, plan.faults, elapsed, recovery, caught_up)
}

/// Spreads the faults over the interval, deterministically (the phase varies without an RNG).
fn pause(plan: &FaultPlan, k: usize) -> Duration {
    let jitter = (k as u64 * 7919) % (plan.interval.as_millis() as u64 + 1);
    plan.interval / 2 + Duration::from_millis(jitter)
}

/// Registers two users and logs in their devices, spread over the instances at `bases`.
async fn enlist(bases: &[String], devices: usize) -> Vec<Device> {
    let api = Api::new(&bases[0]);
    let mut enlisted = Vec::new();
    for (user, count) in [(0, devices), (1, 1)] {
        let first = api.user().await;
        for k in 0..count {
            let base = &bases[enlisted.len() % bases.len()];
            let token = match k {
                0 => first.token.clone(),
                _ => api.login(&first, &format!("device {}", enlisted.len())).await.body["token"].as_str().unwrap_or_default().to_owned(),
            };
            enlisted.push(Device::new(enlisted.len(), user, base, &token));
        }
    }
    enlisted
}

/// The highest version a stream announced, and when.
type Seen = Arc<std::sync::Mutex<(i64, Instant)>>;

/// Follows the first user's stream on `base`, as a client would: reconnecting with
/// `Last-Event-ID` whenever it ends or cannot open (while PostgreSQL is down).
fn listen(base: &str, token: &str, seen: Seen) -> tokio::task::JoinHandle<()> {
    let (api, token) = (Api::new(base), token.to_owned());
    tokio::spawn(async move {
        loop {
            let last = seen.lock().map(|s| s.0).unwrap_or(0);
            let request = api.client.get(api.url("/api/library-version-events")).bearer_auth(&token).header("last-event-id", last.to_string());
            if let Ok(response) = request.send().await {
                let mut stream = SseReader::new(response);
                while let Some(event) = stream.next_event(Duration::from_secs(5)).await {
                    if let (Some(version), Ok(mut seen)) = (event.json()["libraryVersion"].as_i64(), seen.lock()) {
                        if version > seen.0 {
                            *seen = (version, Instant::now());
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The devices at work, each in its own task.
struct Running {
    flag: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Device>>,
    started: Instant,
}

impl Running {
    fn start(devices: Vec<Device>) -> Self {
        let flag = Arc::new(AtomicBool::new(true));
        let tasks = devices
            .into_iter()
            .map(|mut device| {
                let flag = flag.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while flag.load(Ordering::Relaxed) {
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
        Self { flag, tasks, started: Instant::now() }
    }

    async fn stop(self) -> (Vec<Device>, Duration) {
        self.flag.store(false, Ordering::Relaxed);
        let mut devices = Vec::new();
        for task in self.tasks {
            devices.push(task.await.expect("a device task panicked"));
        }
        (devices, self.started.elapsed())
    }
}

/// The checker's inputs and verdict.
struct Judged {
    devices: Vec<Device>,
    servers: Vec<ServerState>,
    verdict: Verdict,
}

/// Every device pulls to the end; each user's library on the server is a fresh pull from 0.
async fn judge(mut devices: Vec<Device>, base: &str) -> Judged {
    let mut finals = HashMap::new();
    for device in &mut devices {
        device.read().await;
        finals.insert(device.index, device.replica.clone());
    }
    let mut servers = Vec::new();
    for user in [0, 1] {
        let Some(any) = devices.iter().find(|d| d.user == user) else { continue };
        let mut reader = Device::new(usize::MAX, user, base, any.token());
        reader.read().await;
        servers.push(ServerState { user, library_version: reader.cursor, library: reader.replica });
    }
    let logs: Vec<_> = devices.iter().map(|d| (d.index, d.user, d.ops.clone())).collect();
    let verdict = check(&logs, &servers, &finals);
    Judged { devices, servers, verdict }
}

impl Judged {
    fn finish(self, scenario: &'static str, faults: usize, elapsed: Duration, recovery: Duration, stream_caught_up: Option<Duration>) -> FaultReport {
        let writes = || self.devices.iter().flat_map(|d| d.ops.iter()).filter_map(|op| if let history::Op::Write(w) = op { Some(w) } else { None });
        FaultReport {
            scenario,
            faults,
            elapsed,
            retries: self.devices.iter().map(|d| d.retries).sum(),
            retried_writes: writes().filter(|w| w.attempts > 1).count(),
            duplicates: writes().filter(|w| w.status == "duplicate").count(),
            final_versions: self.servers.iter().map(|s| s.library_version).collect(),
            mean_recovery: recovery / faults.max(1) as u32,
            stream_caught_up,
            verdict: self.verdict,
        }
    }
}

impl FaultReport {
    /// One line of figures.
    pub fn summary(&self, backend: &str) -> String {
        let stream = match (self.scenario, self.stream_caught_up) {
            ("kill -9", _) => String::new(),
            (_, Some(took)) => format!("; the stream on the other instance reached the final version {:.0} ms after the last write", took.as_secs_f64() * 1000.0),
            (_, None) => "; the stream on the other instance NEVER reached the final version".to_owned(),
        };
        format!(
            "{} {backend}: {} faults in {:.1} s (recovery {:.0} ms mean); {} acknowledged writes ({} answered only on a retry, {} of them already applied), {} retried requests; final versions {:?}{stream}; history: {} operations ({} pages) checked, {} anomalies",
            self.scenario,
            self.faults,
            self.elapsed.as_secs_f64(),
            self.mean_recovery.as_secs_f64() * 1000.0,
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

/// A tiny deterministic generator: faults and random requests need spread, not quality, and a
/// seed makes a failing run repeatable.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// In [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}
