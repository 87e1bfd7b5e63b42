//! Config follows one control node: two followers of a real control node (real binaries,
//! real upstream) take its config, refuse writes, keep serving while it is killed and
//! across their own restart, and converge when it comes back on the same data and ports.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tests::admin::{route_spec, upstream_spec};
use tests::certs::TestCert;
use tests::gateway::{Gateway, GatewayOptions, ADMIN_TOKEN};
use tests::{http_client, send, wait_until, EchoServer};

const CLUSTER_TOKEN: &str = "e2e-cluster-token";
/// Generous: debug builds on a busy 2-core machine. Propagation itself takes milliseconds.
const CONVERGE: Duration = Duration::from_secs(20);

fn control() -> Result<Gateway> {
    Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), CLUSTER_TOKEN.into())],
        ..GatewayOptions::default()
    })
}

fn follower(control: &Gateway, id: &str, token: &str) -> Result<Gateway> {
    Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), token.into())],
        args: vec![
            "--follow".into(),
            format!("http://{}", control.admin_addr()),
            "--node-id".into(),
            id.into(),
        ],
        ..GatewayOptions::default()
    })
}

/// The status `path` answers on `node`'s proxy, with `key` as `x-api-key` when given.
fn status_of(node: &Gateway, path: &str, key: Option<&str>) -> Result<u16> {
    let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
    Ok(send(&http_client(), "GET", &node.url(path), &headers)?.status)
}

/// Waits until `path` answers `expected` on every node.
fn wait_served(nodes: &[&Gateway], path: &str, key: Option<&str>, expected: u16) -> Result<()> {
    for (i, node) in nodes.iter().enumerate() {
        wait_until(
            &format!("node {i} answering {expected} on {path}"),
            CONVERGE,
            || Ok((status_of(node, path, key)? == expected).then_some(())),
        )?;
    }
    Ok(())
}

fn metric(node: &Gateway, name: &str) -> Result<Option<f64>> {
    Ok(node.metrics_text()?.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    }))
}

#[test]
fn followers_take_the_config_refuse_writes_and_serve_without_the_control_node() -> Result<()> {
    let upstream = EchoServer::start("backend")?;
    let mut control = control()?;
    let admin = control.admin();
    admin.create_upstream(&upstream_spec("backend", &[upstream.addr()]))?;
    admin.create_route(&route_spec("a", &["/a"], "backend"))?;
    admin
        .post("/api/v1/consumers", &json!({"id": "acme"}))?
        .expect_status(201, "consumer")?;
    admin.create_route(
        &json!({"id": "keyed", "paths": ["/keyed"], "upstream": "backend",
        "policies": [{"type": "key_auth"}]}),
    )?;
    let created = admin
        .post("/api/v1/consumers/acme/keys", &json!({}))?
        .expect_status(201, "key")?
        .body;
    let key = created["key"].as_str().context("the key")?.to_owned();
    let key_id = created["id"].as_str().context("the key id")?.to_owned();

    let mut f1 = follower(&control, "f1", CLUSTER_TOKEN)?;
    let f2 = follower(&control, "f2", CLUSTER_TOKEN)?;
    wait_served(&[&f1, &f2], "/a", None, 200)?;
    wait_served(&[&f1, &f2], "/keyed", Some(&key), 200)?;

    // A change on the control node reaches both followers.
    admin.create_route(&route_spec("b", &["/b"], "backend"))?;
    wait_served(&[&f1, &f2], "/b", None, 200)?;
    let revision = admin.get("/api/v1/status")?.body["revision"].clone();
    for f in [&f1, &f2] {
        let status = wait_until("the follower's status in sync", CONVERGE, || {
            let status = f.admin().get("/api/v1/status")?.body;
            Ok(
                (status["follow"]["connected"] == json!(true) && status["revision"] == revision)
                    .then_some(status),
            )
        })?;
        assert_eq!(
            status["follow"]["url"],
            json!(format!("http://{}", control.admin_addr()))
        );
        assert_eq!(status["follow"]["revision"], revision);
        assert!(status["follow"]["last_sync"].as_u64().is_some());
        assert_eq!(metric(f, "tollgate_config_sync_lag_seconds")?, Some(0.0));
    }

    // Writes on a follower are refused, reads work.
    let refusal = json!({
        "error": format!("this node follows http://{}: write to the control node",
            control.admin_addr()),
        "problems": []
    });
    let fa = f1.admin();
    for answer in [
        fa.post("/api/v1/routes", &route_spec("x", &["/x"], "backend"))?,
        fa.put("/api/v1/config", &json!({}))?,
        fa.delete("/api/v1/routes/a")?,
        fa.post("/api/v1/consumers/acme/keys", &json!({}))?,
    ] {
        assert_eq!(answer.status, 409, "{}", answer.text);
        assert_eq!(answer.body, refusal);
    }
    let routes = fa.get("/api/v1/routes")?.expect_status(200, "routes")?.body;
    assert_eq!(routes.as_array().map(Vec::len), Some(3));

    console_is_read_only(&control, &f1)?;

    // The control node lists both followers.
    let nodes = wait_until("both followers listed", CONVERGE, || {
        let nodes = admin.get("/api/v1/cluster/nodes")?.body;
        let ids: Vec<&str> = nodes
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["connected"] == json!(true))
            .filter_map(|n| n["id"].as_str())
            .collect();
        Ok((ids == ["f1", "f2"]).then(|| nodes.clone()))
    })?;
    assert_eq!(nodes[0]["address"], json!(f1.proxy_addr().to_string()));
    assert_eq!(nodes[0]["version"], json!(env!("CARGO_PKG_VERSION")));
    wait_until("tollgate_cluster_followers 2", CONVERGE, || {
        Ok((metric(&control, "tollgate_cluster_followers")? == Some(2.0)).then_some(()))
    })?;

    // A deleted key is refused everywhere.
    admin
        .delete(&format!("/api/v1/consumers/acme/keys/{key_id}"))?
        .expect_status(204, "deleting the key")?;
    wait_served(&[&control, &f1, &f2], "/keyed", Some(&key), 401)?;

    // The control node dies: the followers keep serving, and say they are cut off.
    control.kill9()?;
    wait_served(&[&f1, &f2], "/b", None, 200)?;
    wait_until(
        "the follower seeing the control node gone",
        CONVERGE,
        || {
            let status = f2.admin().get("/api/v1/status")?.body;
            Ok((status["follow"]["connected"] == json!(false)).then_some(()))
        },
    )?;
    wait_until("the sync lag growing", CONVERGE, || {
        Ok(metric(&f2, "tollgate_config_sync_lag_seconds")?
            .filter(|lag| *lag >= 1.0)
            .map(|_| ()))
    })?;

    // A follower restarted while the control node is down serves its last config.
    f1.restart()?;
    wait_served(&[&f1], "/b", None, 200)?;
    wait_served(&[&f1], "/keyed", Some(&key), 401)?;

    // The control node comes back (its history is gone: a full resync), changes resume.
    control.start_again()?;
    let admin = control.admin();
    admin.create_route(&route_spec("c", &["/c"], "backend"))?;
    admin
        .delete("/api/v1/routes/a")?
        .expect_status(204, "route a")?;
    wait_served(&[&f1, &f2], "/c", None, 200)?;
    wait_served(&[&f1, &f2], "/a", None, 404)?;
    let revision = admin.get("/api/v1/status")?.body["revision"].clone();
    for f in [&f1, &f2] {
        wait_until(
            "the follower at the control node's revision",
            CONVERGE,
            || Ok((f.admin().get("/api/v1/status")?.body["revision"] == revision).then_some(())),
        )?;
        let audit: Value = f.admin().get("/api/v1/status")?.body;
        ensure!(audit["follow"]["connected"] == json!(true), "{audit}");
    }
    Ok(())
}

#[test]
fn the_feed_wants_the_cluster_token() -> Result<()> {
    let control = control()?;
    let feed = format!(
        "http://{}/api/v1/cluster/feed?after=0&wait=0&node=probe",
        control.admin_addr()
    );
    let client = http_client();
    for auth in [None, Some("wrong"), Some(ADMIN_TOKEN)] {
        let headers: Vec<(&str, String)> = auth
            .map(|t| ("authorization", format!("Bearer {t}")))
            .into_iter()
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = send(&client, "GET", &feed, &headers)?;
        assert_eq!(answer.status, 401, "{auth:?}: {}", answer.text);
        assert!(!answer.text.contains("config"), "{}", answer.text);
    }
    let bearer = format!("Bearer {CLUSTER_TOKEN}");
    let answer = send(&client, "GET", &feed, &[("authorization", &bearer)])?;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // A follower with the wrong token stays on its own copy and says it is not connected.
    let stray = follower(&control, "stray", "not-the-token")?;
    let status = wait_until("the stray follower's status", CONVERGE, || {
        let status = stray.admin().get("/api/v1/status")?.body;
        Ok(status.get("follow").cloned())
    })?;
    assert_eq!(status["connected"], json!(false));
    ensure!(
        stray.stderr().contains("wrong cluster token"),
        "{}",
        stray.stderr()
    );
    let listed = control.admin().get("/api/v1/cluster/nodes")?.body;
    let ids: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(ids, ["probe"], "a refused node is not listed: {listed}");

    // Without a token, a node serves no feed.
    let alone = Gateway::start_default()?;
    let answer = send(
        &client,
        "GET",
        &format!(
            "http://{}/api/v1/cluster/feed?after=0&wait=0&node=probe",
            alone.admin_addr()
        ),
        &[("authorization", &bearer)],
    )?;
    assert_eq!(answer.status, 404);
    assert!(
        answer.text.contains("TOLLGATE_CLUSTER_TOKEN"),
        "{}",
        answer.text
    );
    Ok(())
}

#[test]
fn a_follower_without_a_token_does_not_start() -> Result<()> {
    let control = control()?;
    let started = Gateway::start(GatewayOptions {
        args: vec![
            "--follow".into(),
            format!("http://{}", control.admin_addr()),
        ],
        ..GatewayOptions::default()
    });
    let Err(e) = started else {
        anyhow::bail!("a follower without TOLLGATE_CLUSTER_TOKEN started");
    };
    ensure!(format!("{e:#}").contains("TOLLGATE_CLUSTER_TOKEN"), "{e:#}");
    Ok(())
}

/// A token read from a file with its newline can never be presented in a header: neither
/// a control node nor a follower starts with one.
#[test]
fn a_cluster_token_a_header_cannot_carry_stops_the_start() -> Result<()> {
    let control = control()?;
    let follow = vec![
        "--follow".into(),
        format!("http://{}", control.admin_addr()),
    ];
    for args in [vec![], follow] {
        let started = Gateway::start(GatewayOptions {
            env: vec![(
                "TOLLGATE_CLUSTER_TOKEN".into(),
                format!("{CLUSTER_TOKEN}\n"),
            )],
            args: args.clone(),
            ..GatewayOptions::default()
        });
        let Err(e) = started else {
            anyhow::bail!("started with a token ending in a newline ({args:?})");
        };
        ensure!(format!("{e:#}").contains("white space"), "{e:#}");
    }
    Ok(())
}

/// A self-signed certificate for `name`: `(cert PEM, key PEM)`.
fn certificate(dir: &std::path::Path, name: &str, tag: &str) -> Result<(String, String)> {
    let cert = TestCert::generate(dir, name, tag)?;
    Ok((cert.cert_pem, cert.key_pem))
}

/// The status of `GET https://a.test:PORT/a` on `tls`, trusting only `root` (`Err` when
/// the handshake fails: the listener shows another certificate).
fn https_status(tls: std::net::SocketAddr, root: &str) -> Result<u16> {
    let client = reqwest::blocking::Client::builder()
        .use_native_tls()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes())?)
        .resolve("a.test", tls)
        .timeout(Duration::from_secs(10))
        .build()?;
    Ok(client
        .get(format!("https://a.test:{}/a", tls.port()))
        .send()?
        .status()
        .as_u16())
}

#[test]
fn a_certificate_replaced_on_the_control_node_is_served_by_the_followers_tls_listener() -> Result<()>
{
    let upstream = EchoServer::start("backend")?;
    let control = control()?;
    let admin = control.admin();
    admin.create_upstream(&upstream_spec("backend", &[upstream.addr()]))?;
    admin.create_route(&route_spec("a", &["/a"], "backend"))?;
    let dir = tempfile::tempdir()?;
    let (first, first_key) = certificate(dir.path(), "a.test", "first")?;
    let (second, second_key) = certificate(dir.path(), "a.test", "second")?;
    admin
        .post(
            "/api/v1/certificates",
            &json!({"id": "a", "snis": ["a.test"], "cert": first, "key": first_key}),
        )?
        .expect_status(201, "first certificate")?;

    let tls: std::net::SocketAddr = format!("127.0.0.1:{}", tests::free_port()?).parse()?;
    let f = Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), CLUSTER_TOKEN.into())],
        args: vec![
            "--follow".into(),
            format!("http://{}", control.admin_addr()),
            "--tls-listen".into(),
            tls.to_string(),
        ],
        ..GatewayOptions::default()
    })?;
    wait_until("the first certificate served", CONVERGE, || {
        Ok((https_status(tls, &first).ok() == Some(200)).then_some(()))
    })?;
    ensure!(https_status(tls, &second).is_err(), "not the second yet");

    admin
        .delete("/api/v1/certificates/a")?
        .expect_status(204, "removing the first certificate")?;
    admin
        .post(
            "/api/v1/certificates",
            &json!({"id": "a", "snis": ["a.test"], "cert": second, "key": second_key}),
        )?
        .expect_status(201, "second certificate")?;
    wait_until("the second certificate served", CONVERGE, || {
        Ok((https_status(tls, &second).ok() == Some(200)).then_some(()))
    })?;
    ensure!(https_status(tls, &first).is_err(), "the first is gone");
    drop(f);
    Ok(())
}

/// The real binary's console on `follower`: a banner naming the control node on every page,
/// a form post refused with 409 and the same message; the control node's Nodes page lists
/// the follower.
fn console_is_read_only(control: &Gateway, follower: &Gateway) -> Result<()> {
    let url = format!("http://{}", control.admin_addr());
    let console = tests::console::Console::new(follower.admin_addr());
    let session = console.log_in("admin", "e2e-admin-password")?;
    let page = console.get("/routes", Some(&session), &[])?;
    ensure!(page.status == 200, "{}", page.text);
    ensure!(
        page.text.contains("follower-banner") && page.text.contains(&url),
        "no banner: {}",
        page.text
    );
    let csrf = page
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("a csrf field")?
        .to_owned();
    let refused = http_client()
        .post(format!("http://{}/upstreams", follower.admin_addr()))
        .header("cookie", format!("tollgate_session={session}"))
        .header("accept", "text/html")
        .form(&[
            ("csrf", csrf.as_str()),
            ("id", "u"),
            ("targets", "127.0.0.1:9"),
        ])
        .send()?;
    ensure!(refused.status().as_u16() == 409, "{}", refused.status());
    let body = refused.text()?;
    ensure!(
        body.contains(&format!(
            "this node follows {url}: write to the control node"
        )),
        "{body}"
    );

    let control_console = tests::console::Console::new(control.admin_addr());
    let session = control_console.log_in("admin", "e2e-admin-password")?;
    let nodes = control_console.get("/nodes", Some(&session), &[])?;
    ensure!(
        nodes.status == 200 && nodes.text.contains("f1"),
        "{}",
        nodes.text
    );
    Ok(())
}

#[test]
fn a_follower_follows_an_https_control_node_it_can_verify() -> Result<()> {
    // The feed carries secrets: over HTTPS, the follower verifies the control node's
    // certificate, here against --follow-ca (a self-signed one no system trusts).
    let dir = tempfile::tempdir()?;
    let cert = TestCert::loopback(dir.path(), "control")?;
    let upstream = EchoServer::start("backend")?;
    let control = Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), CLUSTER_TOKEN.into())],
        admin_tls: Some(cert.clone()),
        ..GatewayOptions::default()
    })?;
    let admin = control.admin();
    admin.create_upstream(&upstream_spec("backend", &[upstream.addr()]))?;
    admin.create_route(&route_spec("a", &["/a"], "backend"))?;
    let follow = |ca: Option<&std::path::Path>| {
        let mut args = vec!["--follow".into(), control.admin_url()];
        if let Some(ca) = ca {
            args.extend(["--follow-ca".into(), ca.display().to_string()]);
        }
        Gateway::start(GatewayOptions {
            env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), CLUSTER_TOKEN.into())],
            args,
            ..GatewayOptions::default()
        })
    };
    let trusting = follow(Some(&cert.cert_file))?;
    wait_served(&[&trusting], "/a/x", None, 200)?;
    admin.create_route(&route_spec("b", &["/b"], "backend"))?;
    wait_served(&[&trusting], "/b/x", None, 200)?;

    // Without the CA the certificate is refused: nothing is taken from that control node.
    let untrusting = follow(None)?;
    let status = untrusting.admin().get("/api/v1/status")?.body;
    ensure!(
        status["follow"]["connected"] == json!(false),
        "a follower that cannot verify the control node is not connected: {status}"
    );
    ensure!(
        status_of(&untrusting, "/a/x", None)? == 404,
        "it serves no config it could not verify"
    );
    Ok(())
}

#[test]
fn a_control_node_on_another_store_is_never_mixed_into_a_followers_config() -> Result<()> {
    // Revisions count within one store. A control node started again on another data
    // directory counts from 0: its revisions must not be applied on top of the config a
    // follower took from the old store, and an empty store must not wipe the follower.
    let upstream = EchoServer::start("backend")?;
    let mut control = control()?;
    let admin = control.admin();
    admin.create_upstream(&upstream_spec("backend", &[upstream.addr()]))?;
    for id in ["a1", "a2", "a3"] {
        admin.create_route(&route_spec(id, &[&format!("/{id}")], "backend"))?;
    }
    let follower = follower(&control, "edge-1", CLUSTER_TOKEN)?;
    wait_served(&[&follower], "/a3/x", None, 200)?;

    // The control node's data directory is replaced by an empty one: same address.
    control.kill9()?;
    std::fs::remove_dir_all(control.data_dir())?;
    std::fs::create_dir_all(control.data_dir())?;
    control.start_again()?;
    wait_until("the follower refusing the empty store", CONVERGE, || {
        Ok(follower
            .stderr()
            .contains("is empty (a new data directory?)")
            .then_some(()))
    })?;
    ensure!(
        status_of(&follower, "/a1/x", None)? == 200,
        "the follower keeps serving its own copy"
    );

    // The new store gets its own objects (revisions 1..=5, as many as the old one had and
    // more): the follower takes its whole config, none of the old one.
    let admin = control.admin();
    admin.create_upstream(&upstream_spec("backend", &[upstream.addr()]))?;
    for id in ["b1", "b2", "b3", "b4"] {
        admin.create_route(&route_spec(id, &[&format!("/{id}")], "backend"))?;
    }
    wait_served(&[&follower], "/b4/x", None, 200)?;
    for gone in ["/a1/x", "/a2/x", "/a3/x"] {
        ensure!(
            status_of(&follower, gone, None)? == 404,
            "{gone} of the old store"
        );
    }
    let config = follower.admin().get("/api/v1/routes")?.body;
    let ids: Vec<&str> = config
        .as_array()
        .context("routes")?
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    ensure!(ids == ["b1", "b2", "b3", "b4"], "{ids:?}");
    Ok(())
}
