//! Attacks on the policies through the real binary: credentials smuggled past the repeated
//! credential check and `hide_credentials` in spellings the gateway reads one way and an
//! upstream another.

use anyhow::Result;
use serde_json::json;

use super::support::{passed, refused, route, Setup};

/// A gateway with `/keyed` (key in `x-api-key` or `apikey`, shown to the upstream) and
/// `/hidden` (the same, hidden), and a key of consumer `acme`.
fn keyed() -> Result<(Setup, String)> {
    let s = Setup::start(&[
        ("consumers", json!({"id": "acme"})),
        (
            "routes",
            route(
                "keyed",
                &["/keyed"],
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
    ])?;
    let (_, key) = s.new_key("acme")?;
    Ok((s, key))
}

#[test]
fn a_key_header_spelled_with_underscores_is_a_repeated_key() -> Result<()> {
    // CGI-style upstreams (PHP, WSGI) read `x_api_key` and `x-api-key` as one variable,
    // HTTP_X_API_KEY: the gateway would check one key and the upstream read another, and
    // `hide_credentials` would let the second through.
    let (s, key) = keyed()?;
    let hits = s.upstream.hits();
    for path in ["/keyed", "/hidden"] {
        refused(
            &s.get(path, &[("x-api-key", &key), ("x_api_key", "tg_forged")])?,
            400,
            &format!("{path}: x-api-key and x_api_key"),
        )?;
    }
    assert_eq!(
        s.upstream.hits(),
        hits,
        "no second key reached the upstream"
    );
    Ok(())
}

#[test]
fn a_key_parameter_with_a_percent_encoded_name_is_a_repeated_key() -> Result<()> {
    // Upstreams decode parameter names: `api%6Bey` is `apikey` to them, so the gateway
    // would check the first and the upstream (most read the last) the forged one.
    let (s, key) = keyed()?;
    let hits = s.upstream.hits();
    for path in ["/keyed", "/hidden"] {
        refused(
            &s.get(&format!("{path}?apikey={key}&api%6Bey=tg_forged"), &[])?,
            400,
            &format!("{path}: apikey and api%6Bey"),
        )?;
    }
    assert_eq!(
        s.upstream.hits(),
        hits,
        "no second key reached the upstream"
    );
    // Alone, an encoded name is the key parameter: checked, and hidden.
    let echoed = passed(
        &s.get(&format!("/hidden?a=1&%61pikey={key}"), &[])?,
        "the key under an encoded name",
    )?;
    assert_eq!(
        echoed.query, "a=1",
        "the encoded key parameter is hidden too"
    );
    Ok(())
}

#[test]
fn a_key_in_both_the_header_and_the_query_is_a_repeated_key() -> Result<()> {
    // The gateway checks the header; an upstream reading the parameter would take the
    // forged one for the caller's key.
    let (s, key) = keyed()?;
    let hits = s.upstream.hits();
    refused(
        &s.get("/keyed?apikey=tg_forged", &[("x-api-key", &key)])?,
        400,
        "a key header and another key parameter",
    )?;
    assert_eq!(
        s.upstream.hits(),
        hits,
        "the forged key never reached the upstream"
    );
    // The same key in both places names one caller.
    passed(
        &s.get(&format!("/keyed?apikey={key}"), &[("x-api-key", &key)])?,
        "the same key twice",
    )?;
    Ok(())
}

#[test]
fn a_key_parameter_after_a_semicolon_is_a_repeated_key() -> Result<()> {
    // Rack 2 (Rails up to 7.0) and Python before 3.9.2 split queries at `;` as well as
    // `&`: to them `x=1;apikey=FORGED` holds a second key the gateway did not see.
    let (s, key) = keyed()?;
    let hits = s.upstream.hits();
    refused(
        &s.get(&format!("/keyed?apikey={key}&x=1;apikey=tg_forged"), &[])?,
        400,
        "a second key parameter after a ;",
    )?;
    refused(
        &s.get("/keyed?x=1;apikey=tg_forged", &[("x-api-key", &key)])?,
        400,
        "a key header and a key parameter after a ;",
    )?;
    assert_eq!(
        s.upstream.hits(),
        hits,
        "no second key reached the upstream"
    );
    let echoed = passed(
        &s.get(&format!("/keyed?apikey={key}&x=a;b"), &[])?,
        "a ; elsewhere",
    )?;
    assert_eq!(echoed.query, format!("apikey={key}&x=a;b"));
    Ok(())
}

/// Whether `path` has an empty segment or a dot segment: not what a canonical client path
/// becomes, and `//host/x` reads as a scheme-relative reference (another host) to
/// upstreams that build redirects or URLs from the path.
fn is_canonical(path: &str) -> bool {
    path == "/"
        || path
            .strip_prefix('/')
            .is_some_and(|rest| rest.split('/').all(|seg| !matches!(seg, "" | "." | "..")))
}

#[test]
fn a_rewrite_never_sends_a_scheme_relative_or_dot_segment_path_upstream() -> Result<()> {
    // A prefix written without its slash, a replacement with one: `/r/evil.example/x`
    // became `//evil.example/x` upstream; a dot in the replacement, `/public/./x`.
    let s = Setup::start(&[
        (
            "routes",
            route(
                "r",
                &["/r"],
                json!([{"type": "rewrite", "regex": "^/r(.*)$", "replacement": "/$1"}]),
            ),
        ),
        (
            "routes",
            route(
                "dot",
                &["/dot"],
                json!([{"type": "rewrite", "regex": "^/dot(.*)$", "replacement": "/public/.$1"}]),
            ),
        ),
    ])?;
    for path in ["/r/evil.example/x", "/r/", "/dot/x"] {
        let answer = s.get(path, &[])?;
        if answer.status == 400 {
            refused(&answer, 400, path)?;
        } else {
            let echoed = passed(&answer, path)?;
            anyhow::ensure!(
                is_canonical(&echoed.path),
                "{path} reached the upstream as {}",
                echoed.path
            );
        }
    }
    Ok(())
}

#[test]
fn header_edits_that_would_break_message_framing_are_refused_by_the_api() -> Result<()> {
    // Accepted before: `set content-length: 0` dropped every request body on the way up
    // (Pingora frames the body by the edited header) and `response.set content-length: 2`
    // cut every answer to 2 bytes; `add host` made every request of the route a 500.
    let s = Setup::start(&[])?;
    let edits = [
        json!({"request": {"set": {"content-length": "0"}}}),
        json!({"request": {"add": {"transfer-encoding": "chunked"}}}),
        json!({"request": {"set": {"connection": "close"}}}),
        json!({"request": {"add": {"host": "internal.example"}}}),
        json!({"request": {"remove": ["host"]}}),
        json!({"response": {"set": {"content-length": "2"}}}),
        json!({"response": {"add": {"Transfer-Encoding": "chunked"}}}),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut policy = edit.clone();
        policy["type"] = json!("headers");
        let answer = s
            .admin
            .post(
                "/api/v1/routes",
                &route(&format!("r{i}"), &[&format!("/r{i}")], json!([policy])),
            )?
            .expect_status(400, &format!("a route with {edit}"))?;
        let text = answer.body.to_string();
        anyhow::ensure!(text.contains("policies[0]"), "{edit}: {text}");
    }
    // Setting Host (a virtual host upstream) and removing a length stay allowed.
    s.admin
        .post(
            "/api/v1/routes",
            &route(
                "host",
                &["/host"],
                json!([{"type": "headers", "request": {"set": {"host": "internal.example"}, "remove": ["content-length"]}}]),
            ),
        )?
        .expect_status(201, "a route setting Host")?;
    let echoed = passed(&s.get("/host", &[])?, "Host set")?;
    assert_eq!(echoed.header("host"), Some("internal.example"));
    Ok(())
}
