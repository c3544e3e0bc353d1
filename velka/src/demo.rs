//! `velka serve --demo`: seeds a small city through the server's own HTTP command API — so the
//! events are exactly those real clients would cause — and prints where to look.
//!
//! Every request carries a fixed `Idempotency-Key`, so running the demo again against the same
//! database changes nothing and finds the same customers and cars.

use anyhow::{Context, bail};
use http_edge::{Role, TokenKeys};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Cars of the operator's brands, placed around the centre of Moscow.
const MODELS: [&str; 8] = [
    "Kia Rio",
    "Volkswagen Polo",
    "Škoda Octavia",
    "Renault Logan",
    "Mercedes-Benz A 200",
    "Audi A3",
    "Peugeot 408",
    "Suzuki Vitara",
];

/// Letters that appear on Russian plates (those shaped like Latin ones).
const PLATE_LETTERS: [char; 12] = ['А', 'В', 'Е', 'К', 'М', 'Н', 'О', 'Р', 'С', 'Т', 'У', 'Х'];

const CUSTOMERS: [(&str, &str); 3] = [
    ("Иван Петров", "ivan.petrov"),
    ("Мария Смирнова", "maria.smirnova"),
    ("Алексей Кузнецов", "alexey.kuznetsov"),
];

const CARS: usize = 24;

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        key: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("POST {path}: body"))?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    }
}

fn token(keys: &TokenKeys, role: Role, subject: &str) -> anyhow::Result<String> {
    Ok(keys.issue(
        role,
        subject,
        chrono::Duration::days(30),
        chrono::Utc::now(),
    )?)
}

/// Seeds the demo city and prints how to look at it.
pub async fn seed(addr: SocketAddr, keys: &TokenKeys) -> anyhow::Result<()> {
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?,
        base: format!("http://{addr}"),
    };
    let fleet = token(keys, Role::Fleet, "demo-fleet")?;
    let support = token(keys, Role::Support, "demo-support")?;
    let auditor = token(keys, Role::Auditor, "demo-auditor")?;

    let mut vehicle_ids = Vec::new();
    for n in 0..CARS {
        // A deterministic spiral around Tverskaya: 0.5 to 4 km from the centre.
        let angle = n as f64 * 2.4;
        let radius_deg = 0.005 + 0.0015 * n as f64;
        let lat = 55.7600 + radius_deg * angle.sin();
        let lon = 37.6100 + radius_deg * 1.8 * angle.cos();
        let letters: String = [n, n / 12 + 3, n + 5]
            .iter()
            .map(|i| PLATE_LETTERS[i % PLATE_LETTERS.len()])
            .collect();
        let mut chars = letters.chars();
        let plate = format!(
            "{}{:03}{}{}777",
            chars.next().unwrap_or('А'),
            101 + n,
            chars.next().unwrap_or('В'),
            chars.next().unwrap_or('С')
        );
        let body = client
            .post(
                "/v1/vehicles",
                Some(&fleet),
                &format!("demo-vehicle-{n}"),
                json!({
                    "plate": plate,
                    "vin": format!("XW8ZZZ61Z{:08}", 1000 + n),
                    "model": MODELS[n % MODELS.len()],
                    "lat": lat,
                    "lon": lon,
                    "fuel_percent": 35 + (n * 7) % 60,
                    "odometer_km": 12_000 + n * 731,
                }),
            )
            .await?;
        vehicle_ids.push(body["vehicle_id"].as_str().unwrap_or_default().to_owned());
    }

    let mut customers = Vec::new();
    for (n, (name, handle)) in CUSTOMERS.iter().enumerate() {
        let body = client
            .post(
                "/v1/customers",
                None,
                &format!("demo-customer-{n}"),
                json!({
                    "name": name,
                    "phone": format!("+7916555{:04}", n + 1),
                    "email": format!("{handle}@velka.example"),
                    "birth_date": "1990-04-12",
                    "licence": {
                        "number": format!("77 {:02} {:06}", 10 + n, 123_456 + n),
                        "issued_on": "2015-06-01",
                        "expires_on": "2035-06-01",
                    },
                }),
            )
            .await?;
        let customer_id = body["customer_id"].as_str().unwrap_or_default().to_owned();
        client
            .post(
                &format!("/v1/customers/{customer_id}/verification"),
                Some(&support),
                &format!("demo-verify-{n}"),
                json!({ "decision": "approved" }),
            )
            .await?;
        customers.push((name.to_string(), customer_id));
    }

    let base = &client.base;
    let (first_name, first_id) = &customers[0];
    let customer_token = token(keys, Role::Customer, first_id)?;
    println!(
        "\nvelka demo: {CARS} cars and {} verified customers are in Moscow.\n\
         \n  Customer {first_name} ({first_id}):\n    export TOKEN={customer_token}\n\
         \n  Cars near Tverskaya street:\n    curl -H \"Authorization: Bearer $TOKEN\" '{base}/v1/vehicles/available?lat=55.7648&lon=37.6056&radius_m=3000'\n\
         \n  Take one:\n    curl -X POST -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"vehicle_id\":\"{}\"}}' {base}/v1/trips\n\
         \n  A car's history (auditor):\n    curl -H 'Authorization: Bearer {auditor}' {base}/v1/streams/vehicle-{}/events\n\
         \n  The public GBFS v3.0 feed (no token):\n    {base}/gbfs/v3/gbfs.json\n\
         \n  Health and metrics:\n    {base}/readyz\n    {base}/metrics\n\
         \n  More tokens: velka token --role support --sub agent-1\n",
        customers.len(),
        vehicle_ids.first().map_or("", String::as_str),
        vehicle_ids.first().map_or("", String::as_str),
    );
    Ok(())
}
