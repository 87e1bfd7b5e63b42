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
