//! `shelf admin stats` reads a live server's database directly (spec OP5), on SQLite and on
//! PostgreSQL.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use serde_json::Value;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(op5_admin_stats_counts_users_devices_lag_and_storage);

async fn op5_admin_stats_counts_users_devices_lag_and_storage(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user().await;
    server.login(&alice, "phone").await;
    let bob = server.user().await;
    server.get("/api/library/changes?since=0", &alice.token).await;
    server.create_material(&alice.token, "one").await;
    server.create_material(&alice.token, "two").await;
    server.create_material(&bob.token, "three").await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_shelf"))
        .args(["admin", "stats", "--json", "--database-url", &server.database.url])
        .env_remove("SHELF_DATA_DIR")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stats: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stats["users"], 2);
    assert_eq!((stats["devices"].as_i64(), stats["devicesNeverSynced"].as_i64()), (Some(3), Some(2)), "{stats}");
    assert_eq!(stats["lag"]["max"], 2, "Alice's laptop pulled at version 1; her library is at 3");
    assert_eq!(stats["materials"], 3);
    assert_eq!((stats["blobs"].as_i64(), stats["storageBytes"].as_i64()), (Some(0), Some(0)));

    let text = tokio::process::Command::new(env!("CARGO_BIN_EXE_shelf"))
        .args(["admin", "stats", "--database-url", &server.database.url])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("users:          2") && text.contains("p50 2"), "{text}");
}
