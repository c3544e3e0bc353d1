//! The public GBFS v3.0 feed, over HTTP and without a token: `gbfs.json` lists its files, every
//! file validates against the official schema (`tests/schemas/gbfs-v3.0/`), answers are
//! cacheable for the file's `ttl` and conditional on their `ETag`, a rented car is not listed,
//! and a car's public id stays put between polls but changes after each trip.

#![allow(clippy::unwrap_used)]

use http_edge::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tests::{Answer, App, eventually};

/// Central Moscow, inside MKAD and outside the Kremlin.
const TVERSKAYA: (f64, f64) = (55.7648, 37.6056);
const ARBAT: (f64, f64) = (55.7520, 37.5900);
const CHISTYE_PRUDY: (f64, f64) = (55.7650, 37.6380);

/// The files the feed must publish, besides `gbfs.json` itself.
const FILES: [&str; 5] = [
    "system_information",
    "vehicle_types",
    "vehicle_status",
    "geofencing_zones",
    "system_pricing_plans",
];

/// The official schema of a GBFS file, from the copy in the repository.
fn validator(file: &str) -> jsonschema::Validator {
    let path = format!(
        "{}/schemas/gbfs-v3.0/{file}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// The schema's complaints about `instance`, one line each.
fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

/// `GET` a feed file without a token; asserts 200, JSON and the caching headers.
async fn fetch(app: &App, path: &str) -> Answer {
    let answer = app.get(path, None).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    assert!(
        answer.content_type().starts_with("application/json"),
        "{path}: {}",
        answer.content_type()
    );
    let ttl = answer.body["ttl"].as_u64().unwrap();
    assert_eq!(
        answer.headers["cache-control"].to_str().unwrap(),
        format!("public, max-age={ttl}"),
        "{path}"
    );
    assert!(answer.headers.contains_key("etag"), "{path}");
    answer
}

async fn vehicles(app: &App) -> Vec<Value> {
    fetch(app, "/gbfs/v3/vehicle_status.json").await.body["data"]["vehicles"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until `vehicle_status` lists exactly `count` cars; returns them.
async fn until_listed(app: &App, count: usize) -> Vec<Value> {
    eventually(Duration::from_secs(10), || async {
        let listed = vehicles(app).await;
        Ok((listed.len() == count).then_some(listed))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_file_the_feed_lists_validates_against_the_gbfs_v3_schema() {
    let app = App::spawn().await.unwrap();
    let free = app.car(1, TVERSKAYA).await.unwrap();
    let reserved = app.car(2, ARBAT).await.unwrap();
    let rented = app.car(3, CHISTYE_PRUDY).await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let boris = app.verified_customer(2).await.unwrap();
    let started = app
        .post(
            "/v1/trips",
            Some(&app.token(Role::Customer, &anna)),
            &json!({ "vehicle_id": rented }),
        )
        .await
        .unwrap();
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let reservation = app
        .post(
            "/v1/reservations",
            Some(&app.token(Role::Customer, &boris)),
            &json!({ "vehicle_id": reserved }),
        )
        .await
        .unwrap();
    assert_eq!(
        reservation.status,
        StatusCode::CREATED,
        "{}",
        reservation.body
    );

    // The rented car is not listed; the reserved one is, and says so.
    let listed = eventually(Duration::from_secs(10), || async {
        let listed = vehicles(&app).await;
        let reserved_shown = listed.iter().any(|v| v["is_reserved"] == json!(true));
        Ok((listed.len() == 2 && reserved_shown).then_some(listed))
    })
    .await
    .unwrap();
    let real_ids: BTreeSet<&str> = [free.as_str(), reserved.as_str(), rented.as_str()].into();
    for vehicle in &listed {
        let id = vehicle["vehicle_id"].as_str().unwrap();
        assert!(!real_ids.contains(id), "a real vehicle id is published");
        assert!(real_ids.iter().all(|real| !id.contains(&real[..8])));
        assert_eq!(vehicle["is_disabled"], json!(false));
        assert_eq!(vehicle["current_fuel_percent"], json!(0.8));
        assert_eq!(vehicle["current_range_meters"], json!(480_000.0));
        assert_eq!(vehicle["pricing_plan_id"], "standard");
    }
    assert_eq!(
        listed
            .iter()
            .filter(|v| v["is_reserved"] == json!(true))
            .count(),
        1
    );

    // Discovery lists exactly the files we publish, at absolute URLs of this server.
    let discovery = fetch(&app, "/gbfs/v3/gbfs.json").await;
    let problems = violations(&validator("gbfs"), &discovery.body);
    assert!(problems.is_empty(), "gbfs.json: {problems:#?}");
    assert_eq!(discovery.body["version"], "3.0");
    let feeds = discovery.body["data"]["feeds"].as_array().unwrap();
    let names: BTreeSet<&str> = feeds.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, FILES.into_iter().collect());

    let mut files = std::collections::BTreeMap::new();
    for feed in feeds {
        let name = feed["name"].as_str().unwrap();
        let url = feed["url"].as_str().unwrap();
        let path = url
            .strip_prefix(&app.base)
            .unwrap_or_else(|| panic!("{url} is not on {}", app.base));
        assert_eq!(path, format!("/gbfs/v3/{name}.json"));
        let answer = fetch(&app, path).await;
        let problems = violations(&validator(name), &answer.body);
        assert!(
            problems.is_empty(),
            "{name}: {problems:#?}\n{}",
            answer.body
        );
        assert_eq!(answer.body["version"], "3.0", "{name}");

        // Conditional GET: the same ETag gets a 304 with no body.
        let etag = answer.headers["etag"].to_str().unwrap().to_owned();
        let again = app
            .send(Method::GET, path, None, &[("If-None-Match", &etag)], None)
            .await
            .unwrap();
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{name}");
        assert_eq!(again.body, Value::Null);
        assert_eq!(again.headers["etag"].to_str().unwrap(), etag);
        files.insert(name, answer.body);
    }

    // The files agree with each other and with the fixture.
    let data = |name: &str| files[name]["data"].clone();
    assert_eq!(data("system_information")["system_id"], "velka-moscow");
    assert_eq!(data("system_information")["timezone"], "Europe/Moscow");
    let types = data("vehicle_types")["vehicle_types"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(types.len(), 1, "one model in the fleet: {types:?}");
    assert_eq!(types[0]["form_factor"], "car");
    let vehicles_now = data("vehicle_status")["vehicles"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(vehicles_now.len(), 2);
    for vehicle in &vehicles_now {
        assert_eq!(vehicle["vehicle_type_id"], types[0]["vehicle_type_id"]);
    }
    let plan = &data("system_pricing_plans")["plans"][0];
    assert_eq!(plan["plan_id"], "standard");
    assert_eq!(plan["currency"], "RUB");
    assert_eq!(plan["per_min_pricing"][0]["rate"], json!(9.9));
    assert_eq!(plan["per_km_pricing"][0]["start"], json!(70));
    assert_eq!(plan["per_km_pricing"][0]["rate"], json!(12.0));
    let zones = data("geofencing_zones")["geofencing_zones"]["features"]
        .as_array()
        .unwrap()
        .clone();
    // The Kremlin, three airports, MKAD; the forbidden zone first, so that it wins.
    assert_eq!(zones.len(), 5);
    assert_eq!(
        zones[0]["properties"]["rules"][0]["ride_end_allowed"],
        json!(false)
    );
    assert!(
        zones[1..]
            .iter()
            .all(|z| z["properties"]["rules"][0]["ride_end_allowed"] == json!(true))
    );
    assert_eq!(
        data("geofencing_zones")["global_rules"][0]["ride_end_allowed"],
        json!(false)
    );

    // And the schemas do bite: a file without its version, or a car without its flags, fails.
    let mut broken = files["vehicle_status"].clone();
    broken["data"]["vehicles"][0]
        .as_object_mut()
        .unwrap()
        .remove("is_reserved");
    assert!(!violations(&validator("vehicle_status"), &broken).is_empty());
    let mut broken = files["system_information"].clone();
    broken["version"] = json!("2.3");
    assert!(!violations(&validator("system_information"), &broken).is_empty());
}

#[tokio::test]
async fn a_cars_public_id_holds_between_polls_and_changes_after_each_trip() {
    let app = App::spawn().await.unwrap();
    let car = app.car(1, TVERSKAYA).await.unwrap();
    let anna = app.verified_customer(1).await.unwrap();
    let me = app.token(Role::Customer, &anna);

    let first = until_listed(&app, 1).await[0]["vehicle_id"].clone();
    // A telematics report changes where the car is, not who it is.
    let reading = app.telemetry(&car, ARBAT, 12_000.5, true).await.unwrap();
    assert_eq!(reading.status, StatusCode::OK);
    let moved = eventually(Duration::from_secs(10), || async {
        let listed = vehicles(&app).await;
        Ok((listed.len() == 1 && listed[0]["lat"] == json!(ARBAT.0)).then_some(listed))
    })
    .await
    .unwrap();
    assert_eq!(moved[0]["vehicle_id"], first);
    assert_eq!(vehicles(&app).await[0]["vehicle_id"], first);

    let mut ids = vec![first];
    for trip in 1..=2 {
        let started = app
            .post("/v1/trips", Some(&me), &json!({ "vehicle_id": car }))
            .await
            .unwrap();
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
        // In a rental, even parked, the car is not in the feed.
        until_listed(&app, 0).await;
        let trip_id = started.str("trip_id");
        let parked = app
            .post(&format!("/v1/trips/{trip_id}/park"), Some(&me), &json!({}))
            .await
            .unwrap();
        assert_eq!(parked.status, StatusCode::OK, "{}", parked.body);
        app.advance_clock(5 * 60).await.unwrap();
        assert!(vehicles(&app).await.is_empty());

        let odometer = 12_000.5 + 3.0 * f64::from(trip);
        let place = if trip % 2 == 1 { TVERSKAYA } else { ARBAT };
        app.telemetry(&car, place, odometer, true).await.unwrap();
        let ended = app
            .post(&format!("/v1/trips/{trip_id}/end"), Some(&me), &json!({}))
            .await
            .unwrap();
        assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);

        let after = until_listed(&app, 1).await[0]["vehicle_id"].clone();
        assert!(!ids.contains(&after), "trip {trip}: the id did not change");
        // Stable again until the next trip.
        assert_eq!(vehicles(&app).await[0]["vehicle_id"], after);
        ids.push(after);
    }
}
