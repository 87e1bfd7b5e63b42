//! Credentials on their way to the upstream: `hide_credentials`, and repeated credentials
//! (which one counts would be a guess: the gateway checked the first, the upstream may
//! read another).

use anyhow::Result;
use base64::Engine;
use serde_json::json;

use super::jwt;
use super::support::{passed, refused, route, Setup};

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[test]
fn hidden_credentials_never_reach_the_upstream_and_the_rest_of_the_query_is_kept() -> Result<()> {
    let s = Setup::start(&[
        ("consumers", json!({"id": "acme"})),
        ("jwt-issuers", jwt::issuer_spec()),
        (
            "routes",
            route(
                "shown",
                &["/shown"],
                json!([{"type": "key_auth", "query": "apikey"}]),
            ),
        ),
        (
            "routes",
            route(
                "hidden",
                &["/hidden"],
                json!([{"type": "key_auth", "query": "apikey", "hide_credentials": true}]),
            ),
        ),
        (
            "routes",
            route(
                "jwt",
                &["/jwt"],
                json!([{"type": "jwt", "hide_credentials": true}]),
            ),
        ),
        (
            "routes",
            route("basic", &["/basic"], json!([{"type": "basic_auth"}])),
        ),
    ])?;
    s.admin
        .post(
            "/api/v1/consumers/acme/basic-auth",
            &json!({"username": "alice", "password": "s3cret"}),
        )?
        .expect_status(201, "creating a credential")?;
    let (_, key) = s.new_key("acme")?;

    // key_auth shows the key unless told (the upstream may use it).
    let shown = passed(&s.get("/shown", &[("x-api-key", &key)])?, "a key, shown")?;
    assert_eq!(shown.header("x-api-key"), Some(key.as_str()));

    let by_header = passed(
        &s.get("/hidden?a=1", &[("x-api-key", &key)])?,
        "a hidden key",
    )?;
    assert_eq!(by_header.header("x-api-key"), None);
    assert_eq!(by_header.query, "a=1");
    let query = format!("a=1&apikey={key}&b=%2Fx+y&apikey2=z&&c");
    let by_query = passed(
        &s.get(&format!("/hidden?{query}"), &[])?,
        "a hidden key, by query",
    )?;
    assert_eq!(
        by_query.query, "a=1&b=%2Fx+y&apikey2=z&&c",
        "only the key is stripped"
    );
    assert!(!by_query.query.contains(&key));
    let alone = passed(
        &s.get(&format!("/hidden?apikey={key}"), &[])?,
        "the key alone",
    )?;
    assert_eq!(alone.query, "");

    let token = jwt::rs256(&jwt::claims("acme"), jwt::KID)?;
    let bearer = format!("Bearer {token}");
    let echoed = passed(
        &s.get("/jwt", &[("authorization", &bearer)])?,
        "a hidden token",
    )?;
    assert_eq!(echoed.header("authorization"), None);

    // basic_auth hides the password (in clear in the header) by default.
    let echoed = passed(
        &s.get("/basic", &[("authorization", &basic("alice", "s3cret"))])?,
        "a hidden password",
    )?;
    assert_eq!(echoed.header("authorization"), None);
    Ok(())
}

#[test]
fn repeated_credentials_are_refused_with_400_before_the_upstream() -> Result<()> {
    let s = Setup::start(&[
        ("consumers", json!({"id": "acme"})),
        ("jwt-issuers", jwt::issuer_spec()),
        (
            "routes",
            route(
                "keyed",
                &["/keyed"],
                json!([{"type": "key_auth", "query": "apikey"}]),
            ),
        ),
        ("routes", route("jwt", &["/jwt"], json!([{"type": "jwt"}]))),
    ])?;
    let (_, key) = s.new_key("acme")?;
    let bearer = format!("Bearer {}", jwt::rs256(&jwt::claims("acme"), jwt::KID)?);
    passed(&s.get("/keyed", &[("x-api-key", &key)])?, "one key")?;
    passed(&s.get("/jwt", &[("authorization", &bearer)])?, "one token")?;
    let hits = s.upstream.hits();

    // A valid credential first, then a forged one.
    refused(
        &s.get("/keyed", &[("x-api-key", &key), ("x-api-key", "tg_forged")])?,
        400,
        "two x-api-key headers",
    )?;
    refused(
        &s.get(&format!("/keyed?apikey={key}&apikey=tg_forged"), &[])?,
        400,
        "two apikey parameters",
    )?;
    refused(
        &s.get(
            "/jwt",
            &[
                ("authorization", &bearer),
                ("authorization", "Bearer forged"),
            ],
        )?,
        400,
        "two Authorization headers",
    )?;
    assert_eq!(
        s.upstream.hits(),
        hits,
        "no repeated credential reached the upstream"
    );
    assert_eq!(s.rejections("keyed", "key_auth", "400")?, 2.0);
    assert_eq!(s.rejections("jwt", "jwt", "400")?, 1.0);
    Ok(())
}
