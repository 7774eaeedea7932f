//! Per-test databases: a temporary SQLite file, or a fresh PostgreSQL database dropped afterwards.

use std::path::PathBuf;
use std::sync::Arc;

use shelf_store::Store;
use shelf_store_postgres::PostgresStore;
use shelf_store_sqlite::SqliteStore;
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The admin URL tests create databases through (`SHELF_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("SHELF_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test and is removed when dropped.
pub struct TestDatabase {
    pub backend: Backend,
    /// The URL the server opens.
    pub url: String,
    dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join("shelf.db");
                Self { backend, url: format!("sqlite://{}", path.display()), dir: Some(dir), postgres_name: None }
            }
            Backend::Postgres => {
                let name = format!("shelf_test_{}", uuid::Uuid::new_v4().simple());
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
                let url = match admin.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}"),
                    None => panic!("SHELF_TEST_POSTGRES_URL must end in /<database>"),
                };
                Self { backend, url, dir: None, postgres_name: Some(name) }
            }
        }
    }

    pub async fn open_store(&self) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => Arc::new(SqliteStore::connect(&self.url).await.expect("open SQLite")),
            Backend::Postgres => Arc::new(PostgresStore::connect(&self.url).await.expect("open PostgreSQL")),
        }
    }

    /// Runs raw SQL under the seam (fault injection, inspection).
    pub async fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.expect("connect SQLite");
                sqlx::raw_sql(sql).execute(&mut conn).await.expect("raw SQL");
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("connect PostgreSQL");
                sqlx::raw_sql(sql).execute(&mut conn).await.expect("raw SQL");
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = self.dir.take();
        let Some(name) = self.postgres_name.take() else { return };
        // Drop runs outside async; a short-lived runtime on its own thread removes the database.
        let admin = postgres_admin_url();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}
