//! `shelf-bench --compaction USERS`: how long the hourly tombstone compaction (spec CF6) holds
//! the database, on a library of `USERS` users with two devices each and 10 tombstones each, of
//! which every active device has pulled half. It runs in one transaction (on SQLite under the
//! single write lock), so its duration is how long writers wait once an hour.

use std::time::Instant;

use shelf_core::{DeviceId, Email, LibraryMutation, MaterialBody, MaterialId, MaterialTitle, Tags};
use shelf_store::{NewSession, Store};
use shelf_testkit::{Backend, TestDatabase};

const TOMBSTONES_PER_USER: usize = 10;

pub async fn run(backends: &[Backend], users: usize) -> anyhow::Result<()> {
    for backend in backends {
        let database = TestDatabase::create(*backend).await;
        let store = database.open_store().await;
        let seeding = Instant::now();
        for n in 0..users {
            seed_user(store.as_ref(), n).await?;
        }
        let seeded = seeding.elapsed();
        let now = shelf_server::service::auth::now();
        let active_since = now - time::Duration::days(30);
        let first = Instant::now();
        let removed = store.compact_tombstones(active_since, now).await?;
        let first = first.elapsed();
        let again = Instant::now();
        let none = store.compact_tombstones(active_since, now).await?;
        let again = again.elapsed();
        println!(
            "{backend:?}: {users} users, {} tombstones (seeded in {:.1} s): compaction removed {removed} in {:.1} ms; \
             the next run (nothing to remove, removed {none}) took {:.1} ms",
            users * TOMBSTONES_PER_USER,
            seeded.as_secs_f64(),
            first.as_secs_f64() * 1000.0,
            again.as_secs_f64() * 1000.0,
        );
    }
    Ok(())
}

/// A user with two devices; 10 materials created and deleted; both devices pulled half-way.
async fn seed_user(store: &dyn Store, n: usize) -> anyhow::Result<()> {
    let now = shelf_server::service::auth::now();
    let user = store.create_user(&Email::parse(&format!("bench{n}@example.com"))?, "hash", now).await?;
    let mut devices = Vec::new();
    for name in ["laptop", "phone"] {
        let session = NewSession {
            device_id: DeviceId::new(),
            user_id: user,
            token_hash: uuid::Uuid::new_v4().as_bytes().to_vec(),
            device_name: name.into(),
            created_at: now,
            expires_at: now + time::Duration::days(30),
        };
        store.create_session(&session).await?;
        devices.push(session.device_id);
    }
    for i in 0..TOMBSTONES_PER_USER {
        let id = MaterialId::new();
        let create = LibraryMutation::CreateMaterial {
            id,
            title: MaterialTitle::parse("bench")?,
            body: MaterialBody::parse("")?,
            tags: Tags::parse::<&str>(&[])?,
            progress: None,
        };
        store.apply(user, &create, now).await?;
        let version = store.apply(user, &LibraryMutation::DeleteMaterial { id, base_version: None }, now).await?.library_version;
        if i == TOMBSTONES_PER_USER / 2 - 1 {
            for device in &devices {
                store.record_device_sync(*device, version, now).await?;
            }
        }
    }
    Ok(())
}
