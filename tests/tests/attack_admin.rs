//! Attacks on the admin surface through the real binary: what a password guesser or a
//! curious admin can make the gateway do beyond what `admin_hardening.rs` covers.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use tests::console::Console;
use tests::{http_client, wait_until, Gateway};

const WAIT: Duration = Duration::from_secs(60);

/// The JSON log lines of stderr whose message contains `message`.
fn logged(gateway: &Gateway, message: &str) -> Vec<(usize, Value)> {
    gateway
        .stderr()
        .lines()
        .filter_map(|line| Some((line.len(), serde_json::from_str::<Value>(line).ok()?)))
        .filter(|(_, l)| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(message))
        })
        .collect()
}

#[test]
fn long_user_names_are_logged_cut_short() -> Result<()> {
    // The attack: every refused login is logged with its user name, and a console login
    // form takes 2 MB: 100 logins with 1 MB names wrote 100 MB of log.
    let gateway = Gateway::start_default()?;
    let long_name = format!("intruder{}", "x".repeat(200_000));
    let console = Console::new(gateway.admin_addr());
    let answer = console.post_login(&console.login_form()?, &long_name, "wrong")?;
    ensure!(answer.status == 401, "console login: {}", answer.status);
    let basic_name = format!("basic-intruder{}", "y".repeat(20_000));
    let status = http_client()
        .get(format!("http://{}/api/v1/status", gateway.admin_addr()))
        .basic_auth(&basic_name, Some("wrong"))
        .send()?
        .status();
    ensure!(status == 401, "Basic auth: {status}");
    let lines = wait_until("both refusals to be logged", WAIT, || {
        let lines = logged(&gateway, "login refused");
        Ok((lines.len() == 2).then_some(lines))
    })?;
    for (len, line) in &lines {
        ensure!(*len < 1024, "a log line of {len} bytes");
        let user = line["fields"]["user"].as_str().unwrap_or_default();
        ensure!(
            user.starts_with("intruder") || user.starts_with("basic-intruder"),
            "the log still names the user: {user}"
        );
    }
    Ok(())
}

#[test]
fn a_post_without_a_body_or_content_type_creates_no_key() -> Result<()> {
    // The attack: a POST without a body and without a Content-Type is one a web page may
    // send to another site without asking it first (a "simple" request), with the
    // browser's stored Basic credentials for it. `POST .../keys` took an empty body as
    // `{}`: any site an admin visited could create API keys for a consumer.
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    admin
        .post("/api/v1/consumers", &json!({"id": "acme"}))?
        .expect_status(201, "consumer")?;
    let status = http_client()
        .post(format!(
            "http://{}/api/v1/consumers/acme/keys",
            gateway.admin_addr()
        ))
        .basic_auth("admin", Some("e2e-admin-password"))
        .send()?
        .status();
    ensure!(status == 415, "bodyless POST answered {status}");
    let keys = admin
        .get("/api/v1/consumers/acme/keys")?
        .expect_status(200, "keys")?;
    ensure!(keys.body == json!([]), "keys: {}", keys.text);
    Ok(())
}

#[test]
fn an_hmac_secret_given_as_a_jwks_key_is_hidden_and_an_empty_one_refused() -> Result<()> {
    // The attack: `GET /api/v1/jwt-issuers` hid `secret` but showed a JWKS `oct` key's `k`
    // (the same HMAC secret, base64url); and `"k": ""` was taken as an empty HMAC key.
    const K: &str = "ZTJlLWp3a3Mtc2VjcmV0LTAxMjM0NTY3";
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    let issuer = |id: &str, k: &str| {
        json!({"id": id, "issuer": "https://idp.example", "algorithms": ["HS256"],
               "keys": [{"jwks": {"keys": [{"kty": "oct", "kid": "j1", "k": k}]}}]})
    };
    admin
        .post("/api/v1/jwt-issuers", &issuer("idp", K))?
        .expect_status(201, "issuer")?;
    for path in [
        "/api/v1/jwt-issuers",
        "/api/v1/jwt-issuers/idp",
        "/api/v1/config",
    ] {
        let shown = admin.get(path)?.expect_status(200, path)?;
        ensure!(
            !shown.text.contains(K),
            "{path} shows the secret: {}",
            shown.text
        );
    }
    let shown = admin.get("/api/v1/jwt-issuers/idp")?.body;
    admin
        .put("/api/v1/jwt-issuers/idp", &shown)?
        .expect_status(200, "put back as shown")?;
    let empty = admin.post("/api/v1/jwt-issuers", &issuer("other", ""))?;
    ensure!(
        empty.status == 400,
        "an empty k: {} {}",
        empty.status,
        empty.text
    );
    Ok(())
}
