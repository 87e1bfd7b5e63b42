//! The response cache (policy `cache`) through the real binary and a real upstream that
//! counts what reaches it: hits, misses and `Age`; what is never stored; `Vary`;
//! revalidation with ETag; stale answers; one origin fetch for simultaneous misses; purges;
//! eviction under `--cache-size`; policies still run on cached URLs; metrics.

mod cache {
    pub mod support;
}

use std::sync::{Arc, Barrier};
use std::time::Duration;

use anyhow::{ensure, Result};
use cache::support::{cached, expect, route, Setup};
use serde_json::json;
use tests::wait_until;

#[test]
fn second_get_is_a_hit_with_age_and_head_is_served_from_the_cache() -> Result<()> {
    let s = Setup::start(&[cached("c", &["/c"], json!({"ttl_secs": 60}))])?;
    let first = s.get("/c/a", &[])?;
    expect(&first, "MISS", "first GET")?;
    let hit = s.get("/c/a", &[])?;
    expect(&hit, "HIT", "second GET")?;
    ensure!(hit.text == first.text, "the hit serves the stored body");
    ensure!(
        hit.header("age").is_some_and(|a| a.parse::<u64>().is_ok()),
        "a hit carries Age: {:?}",
        hit.headers
    );
    ensure!(hit.header("x-request-id") != first.header("x-request-id"));
    let head = s.send("HEAD", "/c/a", &[])?;
    expect(&head, "HIT", "HEAD")?;
    ensure!(head.text.is_empty(), "HEAD has no body");
    ensure!(
        s.upstream.hits() == 1,
        "one origin fetch: {}",
        s.upstream.hits()
    );
    // Another path is another entry.
    expect(&s.get("/c/b", &[])?, "MISS", "another path")?;
    ensure!(s.upstream.hits() == 2);
    ensure!(s.counted("c", "hit")? == 2.0, "hits counted");
    ensure!(s.counted("c", "miss")? == 2.0, "misses counted");
    ensure!(s.size()? > 0.0, "the size gauge shows what is held");
    Ok(())
}

#[test]
fn answers_without_freshness_are_stored_only_with_a_ttl() -> Result<()> {
    let s = Setup::start(&[
        cached("no-ttl", &["/n"], json!({})),
        cached("ttl", &["/t"], json!({"ttl_secs": 60})),
    ])?;
    expect(
        &s.get("/n/a", &[])?,
        "BYPASS",
        "nothing says it may be stored",
    )?;
    expect(&s.get("/n/a", &[])?, "BYPASS", "again")?;
    s.upstream.set_headers(&[("cache-control", "max-age=60")]);
    expect(&s.get("/n/b", &[])?, "MISS", "max-age says so")?;
    expect(&s.get("/n/b", &[])?, "HIT", "and it is stored")?;
    s.upstream
        .set_headers(&[("expires", "Thu, 01 Jan 2099 00:00:00 GMT")]);
    expect(&s.get("/n/c", &[])?, "MISS", "Expires says so")?;
    expect(&s.get("/n/c", &[])?, "HIT", "and it is stored")?;
    ensure!(s.upstream.hits() == 4, "hits {}", s.upstream.hits());
    Ok(())
}

#[test]
fn no_store_private_set_cookie_and_authorized_answers_are_never_stored() -> Result<()> {
    let s = Setup::start(&[cached("c", &["/c"], json!({"ttl_secs": 60}))])?;
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Headers<'_>, Headers<'_>); 4] = [
        ("/c/no-store", &[("cache-control", "no-store")], &[]),
        (
            "/c/private",
            &[("cache-control", "private, max-age=60")],
            &[],
        ),
        (
            "/c/cookie",
            &[
                ("set-cookie", "session=secret"),
                ("cache-control", "max-age=60"),
            ],
            &[],
        ),
        (
            "/c/auth",
            &[("cache-control", "max-age=60")],
            &[("authorization", "Bearer t")],
        ),
    ];
    for (path, answer_headers, request_headers) in cases {
        s.upstream.set_headers(answer_headers);
        let before = s.upstream.hits();
        for round in 0..3 {
            let a = s.get(path, request_headers)?;
            expect(&a, "BYPASS", &format!("{path} round {round}"))?;
        }
        ensure!(
            s.upstream.hits() == before + 3,
            "{path}: every request reaches the upstream"
        );
    }
    s.upstream
        .set_headers(&[("cache-control", "public, max-age=60")]);
    expect(
        &s.get("/c/auth-public", &[("authorization", "Bearer t")])?,
        "MISS",
        "public",
    )?;
    expect(
        &s.get("/c/auth-public", &[])?,
        "HIT",
        "a public answer is shared",
    )?;
    Ok(())
}

#[test]
fn vary_keeps_one_variant_per_accept_encoding() -> Result<()> {
    let s = Setup::start(&[cached("c", &["/c"], json!({}))])?;
    s.upstream
        .set_headers(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]);
    let gzip = [("accept-encoding", "gzip")];
    expect(&s.get("/c/v", &gzip)?, "MISS", "gzip client")?;
    expect(
        &s.get("/c/v", &[])?,
        "MISS",
        "identity client: another variant",
    )?;
    let gzip_hit = s.get("/c/v", &gzip)?;
    expect(&gzip_hit, "HIT", "gzip again")?;
    let identity_hit = s.get("/c/v", &[])?;
    expect(&identity_hit, "HIT", "identity again")?;
    ensure!(gzip_hit.echo()?.header("accept-encoding") == Some("gzip"));
    ensure!(identity_hit.echo()?.header("accept-encoding").is_none());
    ensure!(s.upstream.hits() == 2, "hits {}", s.upstream.hits());
    Ok(())
}

#[test]
fn a_304_from_the_origin_refreshes_the_stored_answer() -> Result<()> {
    let s = Setup::start(&[cached("c", &["/c"], json!({}))])?;
    // `no-cache`: stored, but checked with the origin before each use.
    s.upstream.set_headers(&[("cache-control", "no-cache")]);
    s.upstream.set_etag(Some("\"v1\""));
    let first = s.get("/c/r", &[])?;
    expect(&first, "MISS", "first")?;
    for round in 0..2 {
        let again = s.get("/c/r", &[])?;
        expect(&again, "HIT", &format!("revalidated {round}"))?;
        ensure!(again.text == first.text, "the stored body, refreshed");
    }
    ensure!(
        s.upstream.not_modified() == 2,
        "{} 304s",
        s.upstream.not_modified()
    );
    let seen = s.upstream.seen();
    ensure!(
        seen.last().and_then(|e| e.header("if-none-match")) == Some("\"v1\""),
        "the gateway asks with the stored ETag"
    );
    // A new ETag at the origin: its 200 replaces the entry.
    s.upstream.set_etag(Some("\"v2\""));
    expect(&s.get("/c/r", &[])?, "MISS", "changed at the origin")?;
    ensure!(s.upstream.not_modified() == 2);
    Ok(())
}

#[test]
fn stale_answers_cover_upstream_errors_and_revalidation() -> Result<()> {
    let s = Setup::start(&[
        cached("sie", &["/e"], json!({"stale_if_error_secs": 600})),
        cached("swr", &["/w"], json!({})),
    ])?;
    // stale-while-revalidate from the answer itself.
    s.upstream
        .set_headers(&[("cache-control", "max-age=0, stale-while-revalidate=600")]);
    expect(&s.get("/w/x", &[])?, "MISS", "first")?;
    let before = s.upstream.hits();
    expect(
        &s.get("/w/x", &[])?,
        "STALE",
        "served stale while refreshing",
    )?;
    wait_until("the background refresh", Duration::from_secs(10), || {
        Ok((s.upstream.hits() > before).then_some(()))
    })?;
    ensure!(s.counted("swr", "stale")? >= 1.0);

    // Expired at once, stale-if-error from the policy.
    s.upstream.set_headers(&[("cache-control", "max-age=0")]);
    let first = s.get("/e/x", &[])?;
    expect(&first, "MISS", "first")?;
    s.upstream.set_status(500);
    let stale = s.get("/e/x", &[])?;
    expect(&stale, "STALE", "the origin fails: stale")?;
    ensure!(stale.text == first.text);
    // Last: a killed target is ejected (passive health) and stays out a while.
    s.upstream.kill()?;
    let down = s.get("/e/x", &[])?;
    expect(&down, "STALE", "the origin is down: stale")?;
    ensure!(
        down.header("connection") == Some("close"),
        "the client's connection is not reused after a failed fetch, and says so"
    );
    expect(
        &s.get("/e/x", &[])?,
        "STALE",
        "its target ejected: still stale",
    )?;
    ensure!(s.counted("sie", "stale")? == 3.0);
    Ok(())
}

#[test]
fn twenty_simultaneous_misses_make_one_origin_request() -> Result<()> {
    let s = Arc::new(Setup::start(&[cached(
        "c",
        &["/c"],
        json!({"ttl_secs": 60}),
    )])?);
    s.upstream.set_delay(Duration::from_millis(300));
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                s.get("/c/stampede", &[])
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for t in threads {
        let answer = t.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
        ensure!(answer.status == 200, "{} {}", answer.status, answer.text);
        bodies.push(answer.text);
    }
    ensure!(
        s.upstream.hits() == 1,
        "origin requests: {}",
        s.upstream.hits()
    );
    ensure!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every client got the one answer"
    );
    Ok(())
}

#[test]
fn purge_drops_a_path_or_a_whole_route() -> Result<()> {
    let s = Setup::start(&[
        cached("c", &["/c"], json!({"ttl_secs": 60, "key": ["query"]})),
        cached("d", &["/d"], json!({"ttl_secs": 60})),
    ])?;
    for path in ["/c/a", "/c/a?x=1", "/c/b", "/d/a"] {
        expect(&s.get(path, &[])?, "MISS", path)?;
        expect(&s.get(path, &[])?, "HIT", path)?;
    }
    let (status, body) = s.purge(&json!({"route": "c", "path": "/c/a"}))?;
    ensure!(
        status == 200 && body == json!({"purged": 2}),
        "{status} {body}"
    );
    expect(&s.get("/c/a", &[])?, "MISS", "purged path")?;
    expect(&s.get("/c/b", &[])?, "HIT", "other path kept")?;
    expect(&s.get("/d/a", &[])?, "HIT", "other route kept")?;
    // Another spelling of a path purges the same entries; a query is refused, not ignored.
    let (status, body) = s.purge(&json!({"route": "c", "path": "/c/./%62"}))?;
    ensure!(
        status == 200 && body == json!({"purged": 1}),
        "{status} {body}"
    );
    let (status, body) = s.purge(&json!({"route": "c", "path": "/c/b?x=1"}))?;
    ensure!(status == 400, "{status} {body}");
    ensure!(body["problems"][0]["path"] == "path", "{body}");
    expect(&s.get("/c/b", &[])?, "MISS", "purged by its other spelling")?;
    let (status, body) = s.purge(&json!({"route": "c"}))?;
    ensure!(
        status == 200 && body == json!({"purged": 2}),
        "{status} {body}"
    );
    expect(&s.get("/c/b", &[])?, "MISS", "purged route")?;

    let (status, body) = s.purge(&json!({"route": "nope"}))?;
    ensure!(status == 404, "unknown route: {status} {body}");
    for bad in [
        json!({}),
        json!({"route": "c", "path": "no-slash"}),
        json!({"route": "c", "extra": 1}),
        json!("c"),
    ] {
        let (status, body) = s.purge(&bad)?;
        ensure!(status == 400, "{bad}: {status} {body}");
        ensure!(
            body["problems"].as_array().is_some_and(|p| !p.is_empty()),
            "{bad}: {body}"
        );
    }
    let (_, body) = s.purge(&json!({"route": "c", "path": "/c/a"}))?;
    ensure!(body == json!({"purged": 0}), "nothing left: {body}");
    Ok(())
}

#[test]
fn a_small_cache_evicts_to_stay_within_its_size() -> Result<()> {
    let s = Setup::start_with(
        &["--cache-size", "1"],
        &[cached("big", &["/bytes"], json!({"ttl_secs": 600}))],
    )?;
    for i in 0..20 {
        let path = format!("/bytes/{}", 200_000 + i);
        let a = s.get(&path, &[])?;
        ensure!(a.status == 200 && a.text.len() == 200_000 + i, "{path}");
    }
    let size = s.size()?;
    ensure!(size > 0.0 && size <= 1024.0 * 1024.0, "size {size}");
    // The last one stored is there; the first ones made room for the others.
    expect(&s.get("/bytes/200019", &[])?, "HIT", "the last stored")?;
    let first = s.get("/bytes/200000", &[])?;
    ensure!(
        first.header("x-cache") == Some("MISS"),
        "the first was evicted"
    );
    ensure!(s.size()? <= 1024.0 * 1024.0);
    Ok(())
}

#[test]
fn bodies_over_max_body_bytes_are_not_stored() -> Result<()> {
    let s = Setup::start(&[cached(
        "c",
        &["/bytes"],
        json!({"ttl_secs": 60, "max_body_bytes": 1000}),
    )])?;
    expect(&s.get("/bytes/999", &[])?, "MISS", "small")?;
    expect(&s.get("/bytes/999", &[])?, "HIT", "small stored")?;
    let big = s.get("/bytes/5000", &[])?;
    ensure!(big.status == 200 && big.text.len() == 5000);
    let again = s.get("/bytes/5000", &[])?;
    ensure!(again.text.len() == 5000 && again.header("x-cache") != Some("HIT"));
    ensure!(s.upstream.hits() == 3);
    Ok(())
}

#[test]
fn a_keyed_route_refuses_requests_without_a_key_on_a_cached_url() -> Result<()> {
    let s = Setup::start(&[route(
        "keyed",
        &["/k"],
        json!([{"type": "cache", "ttl_secs": 60}, {"type": "key_auth"}]),
    )])?;
    s.admin
        .post("/api/v1/consumers", &json!({"id": "acme"}))?
        .expect_status(201, "consumer")?;
    let key = s
        .admin
        .post("/api/v1/consumers/acme/keys", &json!({}))?
        .expect_status(201, "key")?
        .body["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let with_key = [("x-api-key", key.as_str())];
    expect(&s.get("/k/a", &with_key)?, "MISS", "with key")?;
    expect(&s.get("/k/a", &with_key)?, "HIT", "with key again")?;
    let refused = s.get("/k/a", &[])?;
    ensure!(
        refused.status == 401,
        "no key on a cached URL: {}",
        refused.status
    );
    ensure!(refused.header("x-cache").is_none());
    let wrong = s.get("/k/a", &[("x-api-key", "tg_wrong")])?;
    ensure!(
        wrong.status == 401,
        "a wrong key on a cached URL: {}",
        wrong.status
    );
    ensure!(s.upstream.hits() == 1);
    Ok(())
}

#[test]
fn other_methods_pass_through_uncached() -> Result<()> {
    let s = Setup::start(&[cached("c", &["/c"], json!({"ttl_secs": 60}))])?;
    expect(&s.get("/c/p", &[])?, "MISS", "GET")?;
    for _ in 0..2 {
        let post = s.send("POST", "/c/p", &[])?;
        expect(&post, "BYPASS", "POST")?;
        ensure!(post.echo()?.method == "POST");
    }
    ensure!(s.upstream.hits() == 3);
    ensure!(s.counted("c", "bypass")? == 2.0);
    Ok(())
}

#[test]
fn the_console_purges_a_route_with_a_plain_form_and_shows_the_cache() -> Result<()> {
    const PASSWORD: &str = "cache-console-pw";
    let s = Setup::start_opts(
        tests::GatewayOptions {
            env: vec![("TOLLGATE_ADMIN_PASSWORD".into(), PASSWORD.into())],
            ..tests::GatewayOptions::default()
        },
        &[cached("c", &["/c"], json!({"ttl_secs": 60}))],
    )?;
    expect(&s.get("/c/a", &[])?, "MISS", "first")?;
    expect(&s.get("/c/a", &[])?, "HIT", "cached")?;
    let console = tests::console::Console::new(s.gateway.admin_addr());
    let session = console.log_in("admin", PASSWORD)?;
    let dashboard = console.get("/", Some(&session), &[])?;
    ensure!(
        dashboard.text.contains("Cache hit ratio") && dashboard.text.contains("50.0%"),
        "the dashboard shows the hit ratio"
    );
    let page = console.get("/routes/c", Some(&session), &[])?;
    ensure!(page.status == 200, "route page: {}", page.status);
    ensure!(
        page.text.contains("action=\"/routes/c/purge-cache\""),
        "the route page has the purge form"
    );
    let csrf = tests::console::hidden_field(&page.text, "csrf")
        .ok_or_else(|| anyhow::anyhow!("no csrf field"))?;
    let refused = console.post_form("/routes/c/purge-cache", &session, "forged", &[])?;
    ensure!(
        refused.status >= 400,
        "a forged form is refused: {}",
        refused.status
    );
    expect(
        &s.get("/c/a", &[])?,
        "HIT",
        "still cached after the forged post",
    )?;
    let done = console.post_form("/routes/c/purge-cache", &session, &csrf, &[])?;
    ensure!(done.status == 303, "purge answered {}", done.status);
    ensure!(done.header("location") == Some("/routes/c"));
    expect(&s.get("/c/a", &[])?, "MISS", "purged from the console")?;
    let back = console.get("/routes/c", Some(&session), &[])?;
    ensure!(
        back.text.contains("Purged 1 cached answer"),
        "the flash says how many"
    );
    Ok(())
}

#[test]
fn a_follower_purges_its_own_cache() -> Result<()> {
    use tests::gateway::{Gateway, GatewayOptions};
    const TOKEN: &str = "cache-cluster-token";
    let control = Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), TOKEN.into())],
        ..GatewayOptions::default()
    })?;
    let upstream = tests::EchoServer::start("up")?;
    let admin = control.admin();
    admin.create_upstream(&tests::admin::upstream_spec("up", &[upstream.addr()]))?;
    admin.create_route(&cached("c", &["/c"], json!({"ttl_secs": 60})))?;
    let follower = Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), TOKEN.into())],
        args: vec![
            "--follow".into(),
            format!("http://{}", control.admin_addr()),
            "--node-id".into(),
            "f1".into(),
        ],
        ..GatewayOptions::default()
    })?;
    let client = tests::http_client();
    let get = || tests::send(&client, "GET", &follower.url("/c/a"), &[]);
    wait_until(
        "the follower serving the route",
        Duration::from_secs(20),
        || Ok((get()?.status == 200).then_some(())),
    )?;
    expect(&get()?, "HIT", "cached on the follower")?;
    let purge = follower
        .admin()
        .post("/api/v1/cache/purge", &json!({"route": "c"}))?;
    ensure!(
        purge.status == 200 && purge.body == json!({"purged": 1}),
        "a purge is no config write: {} {}",
        purge.status,
        purge.body
    );
    expect(&get()?, "MISS", "purged on the follower")?;
    let write = follower
        .admin()
        .post("/api/v1/routes", &cached("d", &["/d"], json!({})))?;
    ensure!(
        write.status == 409,
        "config writes stay refused: {}",
        write.status
    );
    Ok(())
}

#[test]
fn config_changes_that_make_entries_wrong_start_the_route_empty() -> Result<()> {
    let s = Setup::start(&[cached("c", &["/c"], json!({"ttl_secs": 600}))])?;
    let other = tests::EchoServer::start("other")?;
    s.admin
        .create_upstream(&tests::admin::upstream_spec("other", &[other.addr()]))?;
    expect(&s.get("/c/a", &[])?, "MISS", "first")?;
    expect(&s.get("/c/a", &[])?, "HIT", "cached")?;

    // Another upstream: its own answers.
    let mut moved = cached("c", &["/c"], json!({"ttl_secs": 600}));
    moved["upstream"] = json!("other");
    s.admin.update_route("c", &moved)?;
    let answer = s.get("/c/a", &[])?;
    expect(&answer, "MISS", "moved to another upstream")?;
    ensure!(answer.echo()?.server == "other");

    // Other key parts: other keys.
    let mut keyed = cached("c", &["/c"], json!({"ttl_secs": 600, "key": ["query"]}));
    keyed["upstream"] = json!("other");
    s.admin.update_route("c", &keyed)?;
    expect(&s.get("/c/a", &[])?, "MISS", "new key parts")?;
    expect(&s.get("/c/a", &[])?, "HIT", "then cached")?;

    // Deleted, then made again under the same id: empty.
    s.admin
        .delete("/api/v1/routes/c")?
        .expect_status(204, "deleting the route")?;
    ensure!(s.get("/c/a", &[])?.status == 404);
    s.admin.create_route(&keyed)?;
    expect(&s.get("/c/a", &[])?, "MISS", "made again")?;

    // A change of ttl keeps what is stored (still the answers to those requests).
    let mut longer = cached("c", &["/c"], json!({"ttl_secs": 900, "key": ["query"]}));
    longer["upstream"] = json!("other");
    s.admin.update_route("c", &longer)?;
    expect(&s.get("/c/a", &[])?, "HIT", "a ttl change keeps entries")?;
    Ok(())
}

/// Found by the attack pass, each a way to make the cache serve one request's answer to
/// others: a query the key leaves out, an error given the route's TTL, `_` header names
/// (which CGI-style upstreams read as `-` ones) that the key and `Vary` never see, and
/// another consumer's answer on a route that identifies callers.
#[test]
fn unkeyed_inputs_never_pick_what_everyone_gets() -> Result<()> {
    let s = Setup::start(&[
        cached("c", &["/c"], json!({"ttl_secs": 60})),
        route(
            "keyed",
            &["/k"],
            json!([{"type": "key_auth"}, {"type": "cache", "ttl_secs": 60}]),
        ),
    ])?;
    // A query the key leaves out: that request goes to the origin uncached.
    expect(&s.get("/c/q?poison=1", &[])?, "BYPASS", "unkeyed query")?;
    expect(&s.get("/c/q?poison=1", &[])?, "BYPASS", "again")?;
    expect(
        &s.get("/c/q", &[])?,
        "MISS",
        "the plain URL is not poisoned",
    )?;
    expect(&s.get("/c/q", &[])?, "HIT", "and cached")?;
    // An error status without a lifetime of its own is not kept for the TTL.
    s.upstream.set_status(414);
    let error = s.get("/c/e", &[])?;
    ensure!(error.status == 414, "{}", error.status);
    s.upstream.set_status(200);
    let after = s.get("/c/e", &[])?;
    ensure!(
        after.status == 200,
        "the error was served again: {}",
        after.status
    );
    // `_` names do not reach the upstream of a cached route.
    let underscored = s.get("/c/u", &[("x_lang", "evil"), ("x-lang", "en")])?;
    let seen = s.upstream.seen();
    let last = seen
        .last()
        .ok_or_else(|| anyhow::anyhow!("nothing reached the upstream"))?;
    ensure!(last.header("x_lang").is_none(), "{:?}", last.headers);
    ensure!(last.header("x-lang") == Some("en"), "{:?}", last.headers);
    ensure!(underscored.status == 200);
    // Two consumers on a route that identifies them: each gets answers of its own.
    s.admin
        .post("/api/v1/consumers", &json!({"id": "alice"}))?
        .expect_status(201, "alice")?;
    s.admin
        .post("/api/v1/consumers", &json!({"id": "bob"}))?
        .expect_status(201, "bob")?;
    let key = |consumer: &str| -> Result<String> {
        Ok(s.admin
            .post(&format!("/api/v1/consumers/{consumer}/keys"), &json!({}))?
            .expect_status(201, "key")?
            .body["key"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    };
    let (alice, bob) = (key("alice")?, key("bob")?);
    expect(&s.get("/k/me", &[("x-api-key", &alice)])?, "MISS", "alice")?;
    expect(
        &s.get("/k/me", &[("x-api-key", &alice)])?,
        "HIT",
        "alice again",
    )?;
    expect(
        &s.get("/k/me", &[("x-api-key", &bob)])?,
        "MISS",
        "bob never gets alice's",
    )?;
    Ok(())
}
