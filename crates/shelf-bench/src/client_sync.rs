//! The Rust client's sync: a cold sync of a large library into an empty replica (a SQLite file,
//! synchronous=FULL as in real use), incremental syncs of 100 changes made on another device, and
//! reading the whole library back from the replica (`shelf ls`). The feed fetched alone (no
//! replica) shows how much of the cold sync is the server's.

use std::time::{Duration, Instant};

use shelf_client::{Client, Http, Replica};
use shelf_testkit::{Backend, TestServer};

const ROUNDS: usize = 20;
const CHANGES: usize = 100;

pub async fn run(backends: &[Backend], library_size: usize) -> anyhow::Result<()> {
    for backend in backends {
        println!("\n== {backend:?}: client sync of a {library_size}-material library ==");
        let server = TestServer::start(*backend).await;
        let user = server.user().await;
        let seeded_in = crate::seed_library(&server, &user, library_size).await?;
        println!("seeded in {:.1} s", seeded_in.as_secs_f64());

        // Measured before and after the cold sync: the database may still be settling after the
        // seeding (autovacuum on PostgreSQL), which would otherwise be billed to one side only.
        let feed_before = download_feed(&server, &user.token).await?;
        let device = server.login(&user, "bench device").await.body["token"].as_str().unwrap_or_default().to_owned();
        let dir = tempfile::tempdir()?;
        let client = Client::new(Replica::open(&dir.path().join("replica.sqlite3"))?, Http::new(&server.base, Some(device))?);
        let started = Instant::now();
        let report = client.sync().await?;
        let cold = started.elapsed();
        let feed_after = download_feed(&server, &user.token).await?;
        let started = Instant::now();
        let listed = client.materials().await?.len();
        let read = started.elapsed();
        anyhow::ensure!(listed == library_size, "the replica holds {listed} materials, not {library_size}");
        println!(
            "cold sync:        {:>8.2} s   ({} changes into an empty replica, {:.0} changes/s)",
            cold.as_secs_f64(),
            report.pulled,
            report.pulled as f64 / cold.as_secs_f64()
        );
        println!(
            "feed alone:       {:>8.2} s before, {:.2} s after (the same pages fetched and parsed, nothing written)",
            feed_before.as_secs_f64(),
            feed_after.as_secs_f64()
        );
        println!("read library:     {:>8.2} s   (all {listed} materials from the replica, as shelf ls)", read.as_secs_f64());

        let mut rounds = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            for i in 0..CHANGES {
                server.create_material(&user.token, &format!("delta {round}-{i}")).await;
            }
            let started = Instant::now();
            let report = client.sync().await?;
            rounds.push(started.elapsed());
            anyhow::ensure!(report.pulled == CHANGES, "pulled {} changes, not {CHANGES}", report.pulled);
        }
        rounds.sort();
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "incremental sync: {:>8.1} ms median, {:.1} ms max ({CHANGES} changes from another device, {ROUNDS} rounds)",
            millis(rounds[ROUNDS / 2]),
            millis(rounds[ROUNDS - 1])
        );
    }
    Ok(())
}

/// Fetches and parses the whole feed page by page, as the client does, without writing it.
async fn download_feed(server: &TestServer, token: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut since = 0;
    loop {
        let path = format!("/api/library/changes?since={since}&limit={}", shelf_client::PAGE_LIMIT);
        let bytes = server.client.get(server.url(&path)).bearer_auth(token).send().await?.error_for_status()?.bytes().await?;
        let page: shelf_api::ChangesResponse = serde_json::from_slice(&bytes)?;
        if !page.has_more {
            return Ok(started.elapsed());
        }
        since = page.next_since;
    }
}
