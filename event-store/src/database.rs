//! Connecting to PostgreSQL: create the database if it is missing, open a pool, migrate.

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// Why the database could not be reached or prepared.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("DATABASE_URL {url} is not a valid PostgreSQL URL: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The server did not answer or refused us.
    #[error("cannot reach PostgreSQL at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("migrating {url} failed: {source}")]
    Migration {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// The URL with any password replaced, fit for logs and error messages.
pub fn redacted(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => {
            let mut shown = options.to_url_lossy();
            if shown.password().is_some() {
                let _ = shown.set_password(Some("***"));
            }
            shown.to_string()
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}

/// Opens a pool on `url`, creating the database first if it does not exist.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, ConnectError> {
    let shown = redacted(url);
    let options = PgConnectOptions::from_str(url).map_err(|source| ConnectError::BadUrl {
        url: shown.clone(),
        source,
    })?;
    let unreachable = |source| ConnectError::Unreachable {
        url: shown.clone(),
        source,
    };
    let exists = Postgres::database_exists(url).await.map_err(unreachable)?;
    if !exists {
        tracing::info!(url = %shown, "creating database");
        if let Err(error) = Postgres::create_database(url).await {
            // Another process may have created it in the meantime.
            if !Postgres::database_exists(url).await.map_err(unreachable)? {
                return Err(unreachable(error));
            }
        }
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.log_statements(tracing::log::LevelFilter::Trace))
        .await
        .map_err(unreachable)
}

/// Brings the schema up to date. Safe to run from several processes at once (sqlx takes an
/// advisory lock).
pub async fn migrate(pool: &PgPool, url: &str) -> Result<(), ConnectError> {
    crate::MIGRATOR
        .run(pool)
        .await
        .map_err(|source| ConnectError::Migration {
            url: redacted(url),
            source,
        })
}
