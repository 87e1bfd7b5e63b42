//! Request targets an attacker spells so that the router judges one request while the
//! upstream serves another: the upstream must get exactly the host and path the router
//! matched, or the request is refused. The upstreams here are scripted (raw bytes), so they
//! record every target as sent, even ones a real server library would refuse to parse.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::raw::{send_raw, RawResponse};
use tests::scripted::ScriptedServer;
use tests::Gateway;

const QUIET: Duration = Duration::from_secs(2);
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// An open catch-all route `/` (to `all`) beside routes protected by `key_auth` (to
/// `admin`): the host `admin.example`, and the path `/admin` on any host.
struct Setup {
    gateway: Gateway,
    all: ScriptedServer,
    admin: ScriptedServer,
}

impl Setup {
    fn start() -> Result<Setup> {
        let gateway = Gateway::start_default()?;
        let api = gateway.admin();
        let all = ScriptedServer::start(OK)?;
        let admin = ScriptedServer::start(OK)?;
        api.create_upstream(&upstream_spec("all", &[all.addr()]))?;
        api.create_upstream(&upstream_spec("admin", &[admin.addr()]))?;
        api.create_route(&json!({"id": "all", "paths": ["/"], "upstream": "all"}))?;
        api.create_route(&json!({"id": "admin-host", "hosts": ["admin.example"],
            "paths": ["/"], "upstream": "admin", "policies": [{"type": "key_auth"}]}))?;
        api.create_route(&json!({"id": "admin-path", "paths": ["/admin"],
            "upstream": "admin", "policies": [{"type": "key_auth"}]}))?;
        Ok(Setup {
            gateway,
            all,
            admin,
        })
    }

    fn send(&self, request: &str) -> Result<RawResponse> {
        send_raw(self.gateway.proxy_addr(), request.as_bytes(), QUIET)
    }
}

fn assert_status(answer: &RawResponse, want: u16, what: &str) {
    assert_eq!(
        answer.status,
        Some(want),
        "{what}: {}",
        answer.text.chars().take(400).collect::<String>()
    );
}

// RFC 9112 3.2.2: the host of an absolute-form target is the request's host, whatever the
// `Host` header says (an HTTP/1.0 request may have none). nginx picks its `server` by that
// host too (`GET http://admin.example/secret HTTP/1.0` gets the admin server's answer).
// Routing such a request by its missing `Host` sent it to the open catch-all route, while
// the upstream got `Host: admin.example` and served the protected site.
#[test]
fn an_absolute_form_target_is_routed_by_its_own_host() -> Result<()> {
    let setup = Setup::start()?;
    let answer = setup.send("GET http://admin.example/secret HTTP/1.0\r\n\r\n")?;
    assert_status(&answer, 401, "absolute-form target without Host");
    assert_eq!(
        setup.all.heads(),
        Vec::<String>::new(),
        "the open route's upstream was asked for the protected host"
    );
    assert_eq!(setup.admin.hits(), 0, "nothing reached admin without a key");

    // The upstream gets the host and the path the router judged, in origin-form.
    for request in [
        "GET http://open.example/a/../b?q=1 HTTP/1.0\r\n\r\n",
        "GET http://open.example/b?q=1 HTTP/1.1\r\nHost: open.example\r\nConnection: close\r\n\r\n",
    ] {
        assert_status(&setup.send(request)?, 200, request);
    }
    let heads = setup.all.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in &heads {
        assert!(head.starts_with("GET /b?q=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nHost: open.example\r\n"), "{head}");
    }
    Ok(())
}

// A target that is neither origin-form (`/...`), absolute-form (`http://host/...`) nor `*`
// has no path the router can judge: Pingora routes it as `/` and sends the bytes as they
// came, which a lenient upstream may resolve to `/admin/secret`. nginx answers 400 to each.
#[test]
fn a_target_that_is_not_a_path_is_refused_unforwarded() -> Result<()> {
    let setup = Setup::start()?;
    for target in [
        "admin/secret",
        "pub/../admin/secret",
        "foo:/admin/secret",
        "?x=1",
    ] {
        let answer = setup.send(&format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ))?;
        assert_status(&answer, 400, target);
    }
    assert_eq!(setup.all.heads(), Vec::<String>::new(), "forwarded");
    assert_eq!(setup.admin.hits(), 0);
    Ok(())
}

// An upstream answering with a transfer coding that does not end in `chunked`
// (`Transfer-Encoding: identity`) frames its body by closing the connection (RFC 9112
// 6.3), but the gateway relayed the field with `Connection: keep-alive`: the client cannot
// tell where the body ends and the next response on its connection begins. nginx 1.22
// frames such an answer itself (by its Content-Length, dropping the field); newer nginx
// answers 502. The gateway answers 502, as for a `Content-Length` list.
#[test]
fn an_upstream_transfer_coding_other_than_chunked_is_a_502() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let api = gateway.admin();
    let upstream = ScriptedServer::start(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
    )?;
    api.create_upstream(&upstream_spec("identity", &[upstream.addr()]))?;
    api.create_route(&json!({"id": "identity", "paths": ["/"], "upstream": "identity"}))?;
    let answer = send_raw(
        gateway.proxy_addr(),
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        QUIET,
    )?;
    assert_eq!(upstream.hits(), 1, "the upstream was asked");
    assert_status(&answer, 502, "transfer-encoding: identity");
    assert!(
        answer.header_values("transfer-encoding").is_empty(),
        "{}",
        answer.text
    );
    Ok(())
}

// RFC 9110 15.2.2: a server switches only to a protocol the request's `Upgrade` named.
// The gateway's own tunnel refuses a `101` to a request it did not forward as an upgrade
// (502); the normal path relayed it, and the client's connection then hung as a tunnel
// to nowhere. `Upgrade` without `Connection: upgrade` is forwarded without it (README), so
// a `101` to it is the upstream's error too.
#[test]
fn a_101_to_a_request_that_asked_for_no_upgrade_is_a_502() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let api = gateway.admin();
    let upstream = ScriptedServer::start(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )?;
    api.create_upstream(&upstream_spec("switching", &[upstream.addr()]))?;
    api.create_route(&json!({"id": "switching", "paths": ["/"], "upstream": "switching"}))?;
    for request in [
        "GET /x HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
    ] {
        let hits = upstream.hits();
        let answer = send_raw(gateway.proxy_addr(), request.as_bytes(), QUIET)?;
        assert_eq!(
            upstream.hits(),
            hits + 1,
            "{request}: the upstream was asked"
        );
        assert_status(&answer, 502, request);
    }
    Ok(())
}

// The router reads `Host: admin.example/x` as a host of its own (no route's), so the open
// catch-all took it, while an upstream that parses `http://` + Host with a URL parser
// (WHATWG URL: Node's `new URL(req.url, "http://" + host)`) reads the host up to `/`, `?`,
// `#` or `\`: `admin.example`, the protected site. nginx refuses a Host with `/` (400,
// "client sent invalid host header"); the gateway refuses every Host that is not a plain
// name or IP literal with an optional port, whichever way the request spells it.
#[test]
fn a_host_that_parsers_read_differently_is_refused_unforwarded() -> Result<()> {
    let setup = Setup::start()?;
    for host in [
        "admin.example/x",
        "admin.example?",
        "admin.example#",
        "admin.example\\x",
        "admin.example, x",
        "admin.example:80:80",
        "[::1]x",
    ] {
        let answer = setup.send(&format!(
            "GET /s HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))?;
        assert_status(&answer, 400, host);
    }
    let answer = setup.send("GET ftp://admin.example,x/s HTTP/1.0\r\n\r\n")?;
    assert_status(&answer, 400, "an absolute-form authority with a comma");
    assert_eq!(setup.all.heads(), Vec::<String>::new(), "forwarded");
    assert_eq!(setup.admin.hits(), 0);
    // Plain names, ports and IP literals pass.
    for host in [
        "open.example:8080",
        "a_b.example.",
        "[::1]:80",
        "127.0.0.1",
        "",
    ] {
        let answer = setup.send(&format!(
            "GET /s HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))?;
        assert_status(&answer, 200, host);
    }
    Ok(())
}

// A `rewrite` works on the canonical path, but its output was sent as it came: with a
// regex that captures part of a segment (`^/u-(.*)$` to `/users/$1`), `/u-../admin/secret`
// (canonical: `u-..` is no dot segment) became `/users/../admin/secret`, which the upstream
// resolves to `/admin/secret` behind the open route. A rewritten path with a dot segment
// is refused (400) and not forwarded.
#[test]
fn a_rewrite_that_makes_a_dot_segment_is_refused_unforwarded() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let api = gateway.admin();
    let upstream = ScriptedServer::start(OK)?;
    api.create_upstream(&upstream_spec("users", &[upstream.addr()]))?;
    api.create_route(&json!({"id": "users", "paths": ["/"], "upstream": "users",
        "policies": [{"type": "rewrite", "regex": "^/u-(.*)$", "replacement": "/users/$1"}]}))?;
    let send = |target: &str| {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        send_raw(gateway.proxy_addr(), request.as_bytes(), QUIET)
    };
    for target in ["/u-../admin/secret", "/u-./x", "/u-%2e%2e/admin"] {
        assert_status(&send(target)?, 400, target);
    }
    assert_eq!(upstream.heads(), Vec::<String>::new(), "forwarded");
    assert_status(&send("/u-7/orders")?, 200, "a plain rewrite");
    let heads = upstream.heads();
    assert!(
        heads.len() == 1 && heads[0].starts_with("GET /users/7/orders HTTP/1.1\r\n"),
        "{heads:?}"
    );
    Ok(())
}
