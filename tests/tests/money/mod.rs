//! Setting the scene for the money tests (accounts, penalties, fines) through the API itself: a
//! customer's trip to penalise, and reading an account once the read model has caught up.

#![allow(dead_code)]

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{Answer, App, eventually};

/// Tverskaya street, inside the operating area.
pub const CENTRE: (f64, f64) = (55.7648, 37.6056);

/// How long a read model may take to show a command's effect.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A verified customer `n` who took car `n` and, if `end`, ended the trip at once.
#[derive(Debug)]
pub struct Trip {
    pub customer_id: String,
    pub trip_id: String,
    /// The customer's token.
    pub token: String,
}

/// Customer `n` takes car `n` near the centre and, if `end`, ends the trip in the same minute
/// and place: it costs nothing, so the customer's account holds only what the test puts there
/// (a trip's price charge is tested in `charges.rs`).
pub async fn trip(app: &App, n: u32, end: bool) -> anyhow::Result<Trip> {
    let customer_id = app.verified_customer(n).await?;
    let vehicle_id = app.car(n, CENTRE).await?;
    let token = app.token(Role::Customer, &customer_id);
    let started = app
        .post(
            "/v1/trips",
            Some(&token),
            &json!({ "vehicle_id": vehicle_id }),
        )
        .await?;
    if started.status != StatusCode::CREATED {
        bail!(
            "starting a trip answered {}: {}",
            started.status,
            started.body
        );
    }
    let trip_id = started.str("trip_id");
    if end {
        let locked = app.telemetry(&vehicle_id, CENTRE, 12_000.0, true).await?;
        if locked.status != StatusCode::OK {
            bail!("telemetry answered {}: {}", locked.status, locked.body);
        }
        let ended = app
            .post(
                &format!("/v1/trips/{trip_id}/end"),
                Some(&token),
                &json!({}),
            )
            .await?;
        if ended.status != StatusCode::OK {
            bail!("ending the trip answered {}: {}", ended.status, ended.body);
        }
    }
    Ok(Trip {
        customer_id,
        trip_id,
        token,
    })
}

/// Support (agent `agent-7`) issues a penalty.
pub async fn penalty(app: &App, body: &Value) -> anyhow::Result<Answer> {
    let support = app.token(Role::Support, "agent-7");
    app.post("/v1/penalties", Some(&support), body).await
}

/// The account of `customer_id` as `token` reads it, once it reflects `version` account events.
pub async fn account_at(
    app: &App,
    customer_id: &str,
    token: &str,
    version: i64,
) -> anyhow::Result<Value> {
    eventually(DEADLINE, || async {
        let answer = app
            .get(&format!("/v1/accounts/{customer_id}"), Some(token))
            .await?;
        if answer.status != StatusCode::OK {
            bail!(
                "reading the account answered {}: {}",
                answer.status,
                answer.body
            );
        }
        Ok((answer.body["version"].as_i64() >= Some(version)).then_some(answer.body))
    })
    .await
}

/// The server's clock.
pub async fn server_now(app: &App) -> anyhow::Result<DateTime<Utc>> {
    let service = app.token(Role::Service, "test-clock");
    let answer = app.get("/v1/admin/clock", Some(&service)).await?;
    answer.body["now"]
        .as_str()
        .context("the clock reading has no now")?
        .parse()
        .context("the clock reading is not a time")
}

/// The events of one stream as an auditor reads them.
pub async fn stream(app: &App, stream_id: &str) -> anyhow::Result<Vec<Value>> {
    let auditor = app.token(Role::Auditor, "auditor-1");
    let answer = app
        .get(&format!("/v1/streams/{stream_id}/events"), Some(&auditor))
        .await?;
    if answer.status != StatusCode::OK {
        bail!(
            "reading {stream_id} answered {}: {}",
            answer.status,
            answer.body
        );
    }
    Ok(answer.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}
