//! The binary's own promises: it creates its database, names an unreachable PostgreSQL and how
//! to start it, and prints tokens the server accepts.

#![allow(clippy::unwrap_used)]

use event_store::testing::{admin_url, database_url};
use http_edge::{Role, TokenKeys};
use std::process::Command;
use tests::velka_binary;

#[test]
fn migrate_creates_a_missing_database() {
    let binary = velka_binary().unwrap();
    let name = format!("velka_test_{}", uuid::Uuid::new_v4().simple());
    let url = database_url(&admin_url(), &name);
    let output = Command::new(&binary)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Drop it again whatever happened, before asserting.
    let dropped = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
        .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .status();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&name), "{stdout}");
    assert!(stdout.contains("up to date"), "{stdout}");
    assert!(dropped.is_ok());
}

#[test]
fn an_unreachable_database_is_named_with_how_to_start_it() {
    let binary = velka_binary().unwrap();
    // Nothing listens on port 1.
    let output = Command::new(&binary)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("DATABASE_URL", "postgres://velka:s3cret@127.0.0.1:1/velka")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach PostgreSQL at postgres://velka:***@127.0.0.1:1/velka"),
        "{stderr}"
    );
    assert!(stderr.contains("pg_ctlcluster"), "{stderr}");
    assert!(
        !stderr.contains("s3cret"),
        "the password never reaches the output"
    );
}

#[test]
fn token_prints_a_token_for_the_role_and_subject() {
    let binary = velka_binary().unwrap();
    let output = Command::new(&binary)
        .args(["token", "--role", "auditor", "--sub", "inspector-7"])
        .env("VELKA_JWT_SECRET", "the-secret")
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap();
    let caller = TokenKeys::from_secret(b"the-secret")
        .verify(token.trim())
        .unwrap();
    assert_eq!(caller.role, Role::Auditor);
    assert_eq!(caller.subject, "inspector-7");

    let refused = Command::new(&binary)
        .args(["token", "--role", "admin", "--sub", "x"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown role"));
}
