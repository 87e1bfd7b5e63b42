//! Address filters, header edits and rewrites at the edges of what they accept.

use anyhow::Result;
use serde_json::json;

use super::support::{passed, refused, route, Setup};

#[test]
fn ip_filter_entries_in_ipv4_mapped_form_match_ipv4_clients() -> Result<()> {
    let s = Setup::start(&[
        (
            "routes",
            route(
                "mapped-deny",
                &["/mapped-deny"],
                json!([{"type": "ip_filter", "deny": ["::ffff:127.0.0.0/104"]}]),
            ),
        ),
        (
            "routes",
            route(
                "mapped-allow",
                &["/mapped-allow"],
                json!([{"type": "ip_filter", "allow": ["::ffff:127.0.0.1"]}]),
            ),
        ),
    ])?;
    refused(
        &s.get("/mapped-deny", &[])?,
        403,
        "127.0.0.1 against ::ffff:127.0.0.0/104",
    )?;
    passed(
        &s.get("/mapped-allow", &[])?,
        "127.0.0.1 allowed as ::ffff:127.0.0.1",
    )?;
    assert_eq!(s.upstream.hits(), 1);
    Ok(())
}

#[test]
fn header_add_appends_and_underscore_spellings_of_edited_names_are_dropped() -> Result<()> {
    let edits = json!([{"type": "headers", "request": {
        "set": {"x-user-id": "from-gateway"},
        "add": {"x-role": "reader"},
        "remove": ["x-internal-token"]
    }}]);
    let s = Setup::start(&[("routes", route("edit", &["/edit"], edits))])?;
    let echoed = passed(
        &s.get(
            "/edit",
            &[
                ("x-role", "admin"),
                ("x_user_id", "forged"),
                ("x-user_id", "forged"),
                ("x_role", "admin"),
                ("x_internal_token", "forged"),
                ("x_other", "kept"),
            ],
        )?,
        "an edited request",
    )?;
    // `add` appends after the client's value (documented); `set` replaces.
    assert_eq!(echoed.header("x-role"), Some("admin, reader"));
    assert_eq!(echoed.header("x-user-id"), Some("from-gateway"));
    // CGI-style upstreams read `x_user_id` as `x-user-id`: the client's spellings go.
    for dropped in ["x_user_id", "x-user_id", "x_role", "x_internal_token"] {
        assert_eq!(echoed.header(dropped), None, "{dropped}");
    }
    assert_eq!(echoed.header("x_other"), Some("kept"));
    Ok(())
}

#[test]
fn a_rewrite_that_makes_no_path_is_refused_with_400() -> Result<()> {
    let rewrite = json!([{"type": "rewrite", "regex": "^/to/(.*)$", "replacement": "$1"}]);
    let s = Setup::start(&[("routes", route("to", &["/to"], rewrite))])?;
    let unmatched = passed(&s.get("/to?q=1", &[])?, "a path the rewrite does not match")?;
    assert_eq!(
        (unmatched.path.as_str(), unmatched.query.as_str()),
        ("/to", "q=1")
    );
    let hits = s.upstream.hits();
    refused(&s.get("/to/*", &[])?, 400, "a rewrite to *")?;
    refused(
        &s.get("/to/evil.example", &[])?,
        400,
        "a rewrite to a host name",
    )?;
    assert_eq!(s.upstream.hits(), hits, "nothing reached the upstream");

    // Seen at config time: a replacement that is a literal `$`.
    let answer = s.admin.post(
        "/api/v1/routes",
        &route(
            "dollar",
            &["/dollar"],
            json!([{"type": "rewrite", "regex": "^/dollar", "replacement": "$$x"}]),
        ),
    )?;
    answer.expect_status(400, "a replacement that cannot start with /")?;
    Ok(())
}
