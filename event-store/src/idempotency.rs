//! Results of idempotent commands. A successful command's result is written by `append` in the
//! same transaction as its events; a rejected command's result is written here on its own, since
//! it appended nothing.

use crate::EventStore;
use crate::error::StoreError;
use crate::model::CommandResult;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

/// A result found under an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    /// Digest of the request that produced it.
    pub request_hash: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its body.
    pub body: Value,
}

impl EventStore {
    /// The result recorded for `key` in `scope`, if any.
    pub async fn find_result(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<StoredResult>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM command_results
             WHERE scope = $1 AND idempotency_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let status: i16 = row.try_get("status")?;
            Ok(StoredResult {
                request_hash: row.try_get("request_hash")?,
                status: u16::try_from(status).unwrap_or(500),
                body: row.try_get("body")?,
            })
        })
        .transpose()
    }

    /// Records the result of a command that appended nothing (a rejection). If a result is
    /// already there (a concurrent retry), that one is returned and stays.
    pub async fn record_result(
        &self,
        result: &CommandResult,
        at: DateTime<Utc>,
    ) -> Result<StoredResult, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO command_results (scope, idempotency_key, request_hash, status, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&result.scope)
        .bind(&result.key)
        .bind(&result.request_hash)
        .bind(i16::try_from(result.status).unwrap_or(i16::MAX))
        .bind(&result.body)
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(StoredResult {
                request_hash: result.request_hash.clone(),
                status: result.status,
                body: result.body.clone(),
            });
        }
        self.find_result(&result.scope, &result.key)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                position: 0,
                reason: format!("command result {} vanished after a conflict", result.key),
            })
    }

    /// The stream holding an exclusive claim, if any.
    pub async fn claim_holder(&self, claim: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT holder_stream FROM exclusive_claims WHERE claim = $1")
                .bind(claim)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
