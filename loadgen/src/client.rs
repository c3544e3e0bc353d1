//! A small HTTP client of Velka's own API, for the commands that drive a running server from
//! outside (`velka seed`, `velka simulate`, the demo): tokens signed with the server's secret,
//! idempotency keys, and answers read as JSON with their problem type.

use crate::error::{Context, Result};
use http_edge::{Role, TokenKeys};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// A client of one server.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    keys: TokenKeys,
}

/// An answer: status and JSON body (`Null` when there is none or it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// A string field of the body, or empty.
    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_default().to_owned()
    }

    /// The problem type's last path segment (`vehicle-not-available`), or empty.
    pub fn problem(&self) -> String {
        let kind = self.body["type"].as_str().unwrap_or_default();
        kind.rsplit('/').next().unwrap_or_default().to_owned()
    }
}

impl Api {
    /// A client of the server at `base` (`http://127.0.0.1:8080`), signing tokens with `keys`.
    pub fn new(base: &str, keys: TokenKeys) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            keys,
        })
    }

    /// The server's origin.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A bearer token for `role` and `subject`, valid for 30 days.
    pub fn token(&self, role: Role, subject: &str) -> Result<String> {
        Ok(self.keys.issue(
            role,
            subject,
            chrono::Duration::days(30),
            chrono::Utc::now(),
        )?)
    }

    /// Sends one request. Only a failure to reach the server is an error; any status is a reply.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        idempotency_key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// A POST with an idempotency key, retried (safely, by the key) on a transport failure or a
    /// 5xx, up to three times.
    pub async fn command(
        &self,
        path: &str,
        token: Option<&str>,
        key: &str,
        body: &Value,
    ) -> Result<Reply> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let reply = self
                .send(Method::POST, path, token, Some(key), Some(body))
                .await;
            match reply {
                Ok(reply) if !reply.status.is_server_error() => return Ok(reply),
                Ok(reply) if attempt >= 3 => {
                    bail!("POST {path} answered {}: {}", reply.status, reply.body)
                }
                Err(error) if attempt >= 3 => {
                    return Err(error).context(format!("POST {path}"));
                }
                _ => tokio::time::sleep(Duration::from_millis(200 * attempt)).await,
            }
        }
    }
}
