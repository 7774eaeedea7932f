//! Backups of a stopped server's database, restorable over it, for the restore tests.

#![allow(clippy::unwrap_used)] // Test support: a failed unwrap is a failed test.

use std::time::Duration;

use shelf_testkit::{Backend, TestDatabase};

/// A copy of a stopped server's database, restorable over it (SQLite: the file and its WAL;
/// PostgreSQL: a database made from it as a template).
pub struct Backup {
    database: String,
    saved: String,
}

impl Backup {
    pub async fn take(database: &TestDatabase) -> Self {
        let saved = match database.backend {
            Backend::Sqlite => {
                let path = database.url.trim_start_matches("sqlite://");
                let saved = format!("{path}.backup");
                for suffix in ["", "-wal"] {
                    let _ = std::fs::remove_file(format!("{saved}{suffix}"));
                    if std::path::Path::new(&format!("{path}{suffix}")).exists() {
                        std::fs::copy(format!("{path}{suffix}"), format!("{saved}{suffix}")).unwrap();
                    }
                }
                saved
            }
            Backend::Postgres => {
                let name = database.url.rsplit('/').next().unwrap();
                let saved = format!("{name}_backup");
                postgres_copy(name, &saved).await;
                saved
            }
        };
        Self { database: database.url.clone(), saved }
    }

    /// Puts the copy back over the (stopped) server's database.
    pub async fn restore(&self) {
        if let Some(path) = self.database.strip_prefix("sqlite://") {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
                if std::path::Path::new(&format!("{}{suffix}", self.saved)).exists() {
                    std::fs::copy(format!("{}{suffix}", self.saved), format!("{path}{suffix}")).unwrap();
                }
            }
        } else {
            let name = self.database.rsplit('/').next().unwrap();
            let mut admin = admin().await;
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
            postgres_copy(&self.saved, name).await;
            sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.saved)).execute(&mut admin).await.unwrap();
        }
    }
}

async fn admin() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&shelf_testkit::postgres_admin_url()).await.unwrap()
}

/// `CREATE DATABASE to TEMPLATE from`, once the killed server's sessions are gone.
async fn postgres_copy(from: &str, to: &str) {
    let mut admin = admin().await;
    for _ in 0..100 {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1").bind(from).execute(&mut admin).await.unwrap();
        match sqlx::query(&format!("CREATE DATABASE {to} TEMPLATE {from}")).execute(&mut admin).await {
            Ok(_) => return,
            Err(error) if error.to_string().contains("being accessed by other users") => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(error) => panic!("copying database {from}: {error}"),
        }
    }
    panic!("database {from} stayed in use");
}
