//! A reconnect storm: many SSE streams open, the server is killed with SIGKILL and restarted, so
//! every stream drops at once; clients reconnect with exponential backoff and full jitter (as the
//! Rust and web clients do) and `Last-Event-ID`. Measures how long until every stream has the
//! version written right after the restart, and whether the server stayed up.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Xorshift;
use crate::process::Serve;
use crate::{Api, SseReader, TestDatabase};

#[derive(Debug, Clone)]
pub struct StormPlan {
    pub users: usize,
    pub streams_per_user: usize,
    /// The first reconnect waits up to this (full jitter), doubling per failed attempt up to `cap`.
    pub base: Duration,
    pub cap: Duration,
}

#[derive(Debug)]
pub struct StormReport {
    pub streams: usize,
    pub opened_in: Duration,
    /// From the restarted server being ready until every stream showed the version written then.
    pub converged_in: Option<Duration>,
    /// Streams still behind when the wait gave up (60 s).
    pub behind: usize,
    pub attempts: u64,
    pub failed_attempts: u64,
    pub server_stayed_up: bool,
}

impl StormReport {
    pub fn summary(&self) -> String {
        let converged = match self.converged_in {
            Some(took) => format!("all at the new version {:.2} s after the restart", took.as_secs_f64()),
            None => format!("{} streams NEVER reached the new version", self.behind),
        };
        format!(
            "reconnect storm: {} SSE streams (opened in {:.1} s) dropped at once by kill -9; {converged}; {} reconnect attempts ({} failed); server {}",
            self.streams,
            self.opened_in.as_secs_f64(),
            self.attempts,
            self.failed_attempts,
            if self.server_stayed_up { "stayed up" } else { "DIED" },
        )
    }
}

struct Shared {
    seen: Vec<AtomicI64>,
    attempts: AtomicU64,
    failed: AtomicU64,
}

pub async fn reconnect_storm(bin: &Path, database: &TestDatabase, plan: &StormPlan) -> StormReport {
    let mut serve = Serve::start(bin, &database.url, &["--registrations-per-address", "0", "--sse-heartbeat-secs", "15"]).await;
    let api = Api::new(&serve.base);
    let mut tokens = Vec::new();
    for _ in 0..plan.users {
        tokens.push(api.user().await.token);
    }
    let streams = plan.users * plan.streams_per_user;
    let shared = Arc::new(Shared { seen: (0..streams).map(|_| AtomicI64::new(0)).collect(), attempts: AtomicU64::new(0), failed: AtomicU64::new(0) });
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap_or_default();
    let opening = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| tokio::spawn(follow(client.clone(), serve.base.clone(), tokens[i / plan.streams_per_user].clone(), i, shared.clone(), plan.clone())))
        .collect();
    wait_until(&shared, |_| 1, Duration::from_secs(120)).await;
    let opened_in = opening.elapsed();

    serve.restart().await;
    let ready = Instant::now();
    let mut targets = Vec::new();
    for token in &tokens {
        let reply = api.post("/api/materials", token, json!({"title": "after the storm"})).await;
        targets.push(reply.body["libraryVersion"].as_i64().unwrap_or(i64::MAX));
    }
    let per_user = plan.streams_per_user;
    let behind = wait_until(&shared, |i| targets[i / per_user], Duration::from_secs(60)).await;
    let converged_in = (behind == 0).then(|| ready.elapsed());
    let server_stayed_up = serve.is_running();
    for task in tasks {
        task.abort();
    }
    serve.stop().await;
    StormReport {
        streams,
        opened_in,
        converged_in,
        behind,
        attempts: shared.attempts.load(Ordering::Relaxed),
        failed_attempts: shared.failed.load(Ordering::Relaxed),
        server_stayed_up,
    }
}

/// Waits until every stream `i` has seen at least `target(i)`; returns how many had not.
async fn wait_until(shared: &Shared, target: impl Fn(usize) -> i64, limit: Duration) -> usize {
    let started = Instant::now();
    loop {
        let behind = shared.seen.iter().enumerate().filter(|(i, seen)| seen.load(Ordering::Relaxed) < target(*i)).count();
        if behind == 0 || started.elapsed() > limit {
            return behind;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One client's stream: reconnects after `random(0, min(cap, base · 2^n))`, n counting failures.
async fn follow(client: reqwest::Client, base: String, token: String, index: usize, shared: Arc<Shared>, plan: StormPlan) {
    let mut random = Xorshift::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1));
    let mut failures = 0u32;
    loop {
        shared.attempts.fetch_add(1, Ordering::Relaxed);
        let last = shared.seen[index].load(Ordering::Relaxed);
        let request = client.get(format!("{base}/api/library-version-events")).bearer_auth(&token).header("last-event-id", last.to_string());
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                let mut reader = SseReader::new(response);
                while let Some(event) = reader.next(Duration::from_secs(3600)).await {
                    if let Some(version) = event.json()["libraryVersion"].as_i64() {
                        shared.seen[index].fetch_max(version, Ordering::Relaxed);
                        failures = 0;
                    }
                }
            }
            _ => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                failures += 1;
            }
        }
        let ceiling = plan.cap.min(plan.base.saturating_mul(1 << failures.min(16)));
        tokio::time::sleep(ceiling.mul_f64(random.unit())).await;
    }
}
