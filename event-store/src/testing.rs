//! A fresh, migrated database per test, dropped when the test ends.
//!
//! The server comes from `VELKA_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test gets its own database on it.

use crate::EventStore;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("VELKA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    pool: PgPool,
}

/// Panics with a helpful message: this is test setup, and a test without a database cannot run.
fn setup_failed(what: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "test database setup failed ({what}): {error}. Is PostgreSQL running at {}? \
         Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        admin_url()
    )
}

impl TestDatabase {
    /// Creates and migrates a new database.
    pub async fn new() -> Self {
        let db = Self::unmigrated().await;
        crate::MIGRATOR
            .run(&db.pool)
            .await
            .unwrap_or_else(|e| setup_failed("migrate", e));
        db
    }

    /// Creates a new, empty database, for tests that migrate it themselves (an upgrade from an
    /// earlier schema).
    pub async fn unmigrated() -> Self {
        let admin = admin_url();
        let name = format!("velka_test_{}", uuid::Uuid::new_v4().simple());
        let admin_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin)
            .await
            .unwrap_or_else(|e| setup_failed("connect", e));
        admin_pool
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| setup_failed("create database", e));
        admin_pool.close().await;
        let url = database_url(&admin, &name);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .unwrap_or_else(|e| setup_failed("connect to the new database", e));
        Self { name, url, pool }
    }

    /// The database's pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database's URL, for a process under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An event store over this database.
    pub fn store(&self) -> EventStore {
        EventStore::new(self.pool.clone())
    }
}

/// `admin` with its database name replaced by `name`.
pub fn database_url(admin: &str, name: &str) -> String {
    match admin.rsplit_once('/') {
        Some((server, last)) => {
            let query = last
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            format!("{server}/{name}{query}")
        }
        None => format!("{admin}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_url();
        // Drop runs inside or outside a runtime; a thread with its own runtime works in both.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin)
                    .await
                    .ok()?;
                pool.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Runs a query returning one `bigint`, for tests that check what the database holds.
pub async fn scalar(pool: &PgPool, sql: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_one(pool).await
}
