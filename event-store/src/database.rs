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
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) => format!("{before}password=***"),
            None => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    if tail.is_empty() && !rest.contains('/') {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{tail}")
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

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted("postgres://velka:s3cret@db:5432/velka"),
            "postgres://velka:***@db:5432/velka"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1:5432/velka"),
            "postgres://postgres@127.0.0.1:5432/velka"
        );
        assert_eq!(
            redacted("postgres://db/velka?user=v&password=s3cret"),
            "postgres://db/velka?user=v&password=***"
        );
        assert_eq!(redacted("postgres://db"), "postgres://db");
    }
}
