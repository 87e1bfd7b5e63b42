//! Paths are made canonical before routing, and the upstream gets that same path: no
//! spelling of `/admin/secret` walks past the `/admin` route's `key_auth` by matching an
//! open route instead. nginx answers every spelling below with the protected location's
//! answer (401 here) or 400; so must the gateway, and the upstream behind the open routes
//! must never be asked for `/admin/...`.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::raw::{send_raw, RawResponse};
use tests::{EchoServer, Gateway};

const QUIET: Duration = Duration::from_secs(2);

/// Routes `/pub` (open, to `pub`), `/admin` (`key_auth`, to `admin`) and, when
/// `catch_all`, `/` (open, to `all`); a consumer with an API key.
struct Setup {
    gateway: Gateway,
    public: EchoServer,
    admin: EchoServer,
    all: EchoServer,
    key: String,
}

impl Setup {
    fn start(catch_all: bool) -> Result<Setup> {
        let gateway = Gateway::start_default()?;
        let api = gateway.admin();
        let public = EchoServer::start("pub")?;
        let admin = EchoServer::start("admin")?;
        let all = EchoServer::start("all")?;
        for server in [&public, &admin, &all] {
            api.create_upstream(&upstream_spec(server.name(), &[server.addr()]))?;
        }
        api.create_route(&json!({"id": "pub", "paths": ["/pub"], "upstream": "pub"}))?;
        api.create_route(
            &json!({"id": "admin", "paths": ["/admin"], "upstream": "admin",
            "policies": [{"type": "key_auth"}]}),
        )?;
        if catch_all {
            api.create_route(&json!({"id": "all", "paths": ["/"], "upstream": "all"}))?;
        }
        api.post("/api/v1/consumers", &json!({"id": "acme"}))?
            .expect_status(201, "creating a consumer")?;
        let created = api
            .post("/api/v1/consumers/acme/keys", &json!({}))?
            .expect_status(201, "creating a key")?
            .body;
        let key = created["key"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(!key.is_empty(), "no key in {created}");
        Ok(Setup {
            gateway,
            public,
            admin,
            all,
            key,
        })
    }

    /// `GET target` on a raw socket, with the API key when `key`.
    fn get(&self, target: &str, key: bool) -> Result<RawResponse> {
        let key = if key {
            format!("x-api-key: {}\r\n", self.key)
        } else {
            String::new()
        };
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{key}Connection: close\r\n\r\n");
        send_raw(self.gateway.proxy_addr(), request.as_bytes(), QUIET)
    }

    /// Every path the open upstreams were asked for.
    fn open_paths(&self) -> Vec<String> {
        let mut seen = self.public.seen();
        seen.extend(self.all.seen());
        seen.into_iter().map(|e| e.path).collect()
    }
}

const CLIMBING: [&str; 2] = ["/pub/../admin/secret", "/pub/%2e%2e/admin/secret"];
const NEXT_TO_CATCH_ALL: [&str; 3] = ["//admin/secret", "/./admin/secret", "/%61dmin/secret"];
const ENCODED_SLASH: [&str; 2] = ["/pub/..%2fadmin/secret", "/admin%2fsecret"];

fn assert_status(answer: &RawResponse, want: u16, what: &str) {
    assert_eq!(
        answer.status,
        Some(want),
        "{what}: {}",
        answer.text.chars().take(400).collect::<String>()
    );
}

#[test]
fn no_spelling_of_a_protected_path_reaches_an_open_route() -> Result<()> {
    for catch_all in [false, true] {
        let setup = Setup::start(catch_all)?;
        let mut spellings = CLIMBING.to_vec();
        if catch_all {
            spellings.extend(NEXT_TO_CATCH_ALL);
        }
        for target in &spellings {
            let what = format!("{target} (catch-all: {catch_all})");
            assert_status(&setup.get(target, false)?, 401, &what);
        }
        for target in ENCODED_SLASH {
            let answer = setup.get(target, false)?;
            assert_status(&answer, 400, target);
            assert!(
                answer.text.contains("slash") && answer.text.contains("request_id"),
                "{target}: a JSON error that says why: {}",
                answer.text
            );
        }
        assert!(
            setup.open_paths().is_empty(),
            "the open upstreams were asked for {:?}",
            setup.open_paths()
        );
        assert_eq!(setup.admin.hits(), 0, "nothing reached admin without a key");

        // With the key, each spelling reaches the protected upstream as the canonical path.
        for target in &spellings {
            assert_status(&setup.get(target, true)?, 200, target);
        }
        let paths: Vec<String> = setup.admin.seen().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, vec!["/admin/secret".to_owned(); spellings.len()]);
    }
    Ok(())
}

#[test]
fn climbing_above_the_root_is_refused_unforwarded() -> Result<()> {
    let setup = Setup::start(true)?;
    for target in [
        "/../etc/passwd",
        "/pub/../../etc/passwd",
        "/%2e%2e/etc",
        "/pub/..;/admin/secret",
        "/pub\\..\\admin/secret",
        "/pub/%00",
    ] {
        assert_status(&setup.get(target, true)?, 400, target);
    }
    assert!(setup.open_paths().is_empty(), "{:?}", setup.open_paths());
    assert_eq!(setup.admin.hits(), 0);
    Ok(())
}

#[test]
fn the_upstream_gets_the_canonical_path_and_the_query_untouched() -> Result<()> {
    let setup = Setup::start(false)?;
    let answer = setup.get("/pub/./a//b/%7e%41?x=%2e%2e/..&y=//&z=%2f", false)?;
    assert_status(&answer, 200, "a non-canonical open path");
    let seen = setup.public.seen();
    let last = seen.last().expect("the upstream saw the request");
    assert_eq!(last.path, "/pub/a/b/~A");
    assert_eq!(last.query, "x=%2e%2e/..&y=//&z=%2f");
    Ok(())
}

#[test]
fn strip_prefix_works_on_the_canonical_path() -> Result<()> {
    let setup = Setup::start(true)?;
    setup.gateway.admin().create_route(
        &json!({"id": "files", "paths": ["/files"], "strip_prefix": "/files",
            "upstream": "pub"}),
    )?;
    // The prefix comes and goes through dot segments; what is stripped is the canonical path.
    assert_status(&setup.get("/files/x/../%2e/report", false)?, 200, "files");
    // Climbing out of `/files` lands on the catch-all, never on `pub` as `/../admin`.
    assert_status(&setup.get("/files/../pub2", false)?, 200, "catch-all");
    let pub_paths: Vec<String> = setup.public.seen().into_iter().map(|e| e.path).collect();
    assert_eq!(pub_paths, vec!["/report".to_owned()]);
    let all_paths: Vec<String> = setup.all.seen().into_iter().map(|e| e.path).collect();
    assert_eq!(all_paths, vec!["/pub2".to_owned()]);
    Ok(())
}

#[test]
fn a_rewritten_path_is_made_canonical_or_refused() -> Result<()> {
    let setup = Setup::start(false)?;
    let api = setup.gateway.admin();
    api.create_route(&json!({"id": "old", "paths": ["/old"], "upstream": "pub",
        "policies": [{"type": "rewrite", "regex": "^/old(/.*)?$", "replacement": "/new/$1"}]}))?;
    api.create_route(&json!({"id": "up", "paths": ["/up"], "upstream": "pub",
        "policies": [{"type": "rewrite", "regex": "^/up/(.*)$", "replacement": "/../$1"}]}))?;
    // `/new/` + `/x/./y` is `/new//x/./y`: the upstream gets it canonical.
    assert_status(&setup.get("/old/x/y", false)?, 200, "rewritten");
    let paths: Vec<String> = setup.public.seen().into_iter().map(|e| e.path).collect();
    assert_eq!(paths, vec!["/new/x/y".to_owned()]);
    // A rewrite that climbs above the root is refused before any upstream is tried.
    let answer = setup.get("/up/admin/secret", false)?;
    assert_status(&answer, 400, "a rewrite above the root");
    assert!(answer.text.contains("rewritten path"), "{}", answer.text);
    assert_eq!(setup.public.hits(), 1, "{:?}", setup.public.seen());
    Ok(())
}
