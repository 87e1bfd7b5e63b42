//! Rate limits against credential guessing: a limit by address counts every request,
//! whatever the order the policies are written in.

use anyhow::Result;
use serde_json::json;

use super::support::{refused, route, Setup};

#[test]
fn an_address_limit_written_after_auth_still_slows_key_guessing() -> Result<()> {
    let policies = json!([
        {"type": "key_auth"},
        {"type": "rate_limit", "requests": 3, "per": "minute", "key": "ip"}
    ]);
    let s = Setup::start(&[
        ("consumers", json!({"id": "acme"})),
        ("routes", route("guarded", &["/guarded"], policies)),
    ])?;
    let (_, key) = s.new_key("acme")?;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let guess = format!("tg_guess_{i}");
        statuses.push(s.get("/guarded", &[("x-api-key", &guess)])?.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    let answer = s.get("/guarded", &[("x-api-key", &key)])?;
    refused(&answer, 429, "the right key, from the guessing address")?;
    assert_eq!(s.upstream.hits(), 0);
    assert_eq!(s.rejections("guarded", "key_auth", "401")?, 3.0);
    assert_eq!(s.rejections("guarded", "rate_limit", "429")?, 8.0);
    Ok(())
}

#[test]
fn an_address_limit_written_after_basic_auth_stops_password_guessing() -> Result<()> {
    use base64::Engine;
    let policies = json!([
        {"type": "basic_auth"},
        {"type": "rate_limit", "requests": 3, "per": "minute", "key": "ip"}
    ]);
    let s = Setup::start(&[
        ("consumers", json!({"id": "acme"})),
        ("routes", route("login", &["/login"], policies)),
    ])?;
    s.admin
        .post(
            "/api/v1/consumers/acme/basic-auth",
            &json!({"username": "alice", "password": "s3cret"}),
        )?
        .expect_status(201, "creating a credential")?;
    let basic = |password: &str| {
        let pair = format!("alice:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    // One at a time: no argon2 check is turned away for load (503).
    let mut statuses = Vec::new();
    for i in 0..6 {
        let guess = basic(&format!("guess-{i}"));
        statuses.push(s.get("/login", &[("authorization", &guess)])?.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
    refused(
        &s.get("/login", &[("authorization", &basic("s3cret"))])?,
        429,
        "the right password, from the guessing address",
    )?;
    assert_eq!(s.upstream.hits(), 0);
    Ok(())
}
