use axum::http::StatusCode;

use super::{Console, FakeLive};
use crate::TargetHealth;

#[tokio::test]
async fn lists_show_an_empty_state_with_the_next_step() {
    let console = Console::new();
    let session = console.login().await;
    for (path, what) in [
        ("/routes", "No routes yet."),
        ("/upstreams", "No upstreams yet."),
        ("/consumers", "No consumers yet."),
        ("/plans", "No plans yet."),
        ("/jwt-issuers", "No jwt issuers yet."),
        ("/certificates", "No certificates yet."),
    ] {
        let page = session.get(&console, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains(what), "{path}: {}", page.body);
        assert!(
            page.body.contains(&format!("href=\"{path}/new\"")),
            "{path}"
        );
        let new = session.get(&console, &format!("{path}/new")).await;
        assert_eq!(new.status, StatusCode::OK, "{path}/new");
        assert!(new.body.contains("data-field=\"id\""), "{path}/new");
    }
}

#[tokio::test]
async fn creates_an_upstream_and_a_route_and_lists_them() {
    let console = Console::new();
    let session = console.login().await;
    let created = session
        .post(
            &console,
            "/upstreams/new",
            &[
                ("id", "orders"),
                ("targets", "127.0.0.1:9001\n127.0.0.1:9002 3"),
                ("balancing", "round_robin"),
                ("retries", "2"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), Some("/upstreams"));
    let config = console.store().config();
    let upstream = &config.upstreams[0];
    assert_eq!(upstream.id, "orders");
    assert_eq!(upstream.targets.len(), 2);
    assert_eq!(upstream.targets[1].weight, 3);
    assert_eq!(upstream.retries, 2);

    let list = session.get(&console, "/upstreams").await;
    assert!(list.body.contains("Created upstream orders"), "flash shown");
    assert!(list.body.contains("127.0.0.1:9001, 127.0.0.1:9002"));
    let again = session.get(&console, "/upstreams").await;
    assert!(
        !again.body.contains("Created upstream orders"),
        "flash shown once"
    );

    let route = session
        .post(
            &console,
            "/routes/new",
            &[
                ("id", "orders-v1"),
                ("paths", "/v1/orders\n=/v1/ping"),
                ("upstream", "orders"),
                ("methods", "GET, POST"),
                ("headers", "x-version: 2"),
                ("policies", "- type: key_auth\n"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(route.status, StatusCode::SEE_OTHER, "{}", route.body);
    let config = console.store().config();
    let route = &config.routes[0];
    assert_eq!(route.paths, ["/v1/orders", "=/v1/ping"]);
    assert_eq!(route.methods, ["GET", "POST"]);
    assert_eq!(
        route.headers.get("x-version").map(String::as_str),
        Some("2")
    );
    assert_eq!(route.policies.len(), 1);
    assert!(route.enabled);
    let audit = console.store().audit_log(10).expect("audit");
    assert_eq!(audit[0].actor, "admin");
    assert_eq!(audit[0].action, "create route orders-v1");
}

#[tokio::test]
async fn edit_form_shows_the_stored_values_and_saves_changes() {
    let console = Console::new();
    let session = console.login().await;
    session
        .post(
            &console,
            "/upstreams/new",
            &[("id", "orders"), ("targets", "127.0.0.1:9001")],
        )
        .await;
    session
        .post(
            &console,
            "/routes/new",
            &[
                ("id", "r1"),
                ("paths", "/a"),
                ("upstream", "orders"),
                ("enabled", "on"),
            ],
        )
        .await;
    let edit = session.get(&console, "/routes/r1").await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.field("paths").contains("/a"));
    assert!(edit.field("id").contains("readonly"));
    assert!(edit.field("upstream").contains("selected"));
    // Unticking `enabled` (absent from the post) disables the route; the id stays the URL's.
    let saved = session
        .post(
            &console,
            "/routes/r1",
            &[("id", "other"), ("paths", "/b"), ("upstream", "orders")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let config = console.store().config();
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.routes[0].id, "r1");
    assert_eq!(config.routes[0].paths, ["/b"]);
    assert!(!config.routes[0].enabled);
    assert_eq!(
        session.get(&console, "/routes/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn shows_each_problem_next_to_the_field_at_fault() {
    let console = Console::new();
    let session = console.login().await;
    let refused = session
        .post(
            &console,
            "/routes/new",
            &[
                ("id", "r1"),
                ("paths", "/a"),
                ("upstream", "missing"),
                ("priority", "high"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.field("priority").contains("must be a whole number"));
    assert!(!refused.field("paths").contains("class=\"problem\""));

    let refused = session
        .post(
            &console,
            "/routes/new",
            &[("id", "r1"), ("paths", "/a"), ("upstream", "missing")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let upstream = refused.field("upstream");
    assert!(upstream.contains("class=\"problem\""), "{upstream}");
    assert!(upstream.contains("missing"), "{upstream}");
    assert!(
        refused.field("paths").contains("/a"),
        "what was typed is kept"
    );

    let refused = session
        .post(
            &console,
            "/upstreams/new",
            &[("id", "u1"), ("targets", "127.0.0.1:9001 0")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let targets = refused.field("targets");
    assert!(
        targets.contains("weight: must be &gt; 0") || targets.contains("weight: must be > 0"),
        "{targets}"
    );

    let refused = session
        .post(
            &console,
            "/plans/new",
            &[("id", "gold"), ("quota", "requests: [")],
        )
        .await;
    assert!(refused.field("quota").contains("invalid YAML"));
    assert!(console.store().config().routes.is_empty());
    assert!(console.store().config().plans.is_empty());
}

#[tokio::test]
async fn a_taken_id_is_reported_at_the_id_field() {
    let console = Console::new();
    let session = console.login().await;
    let form = [("id", "acme")];
    assert_eq!(
        session.post(&console, "/consumers/new", &form).await.status,
        StatusCode::SEE_OTHER
    );
    let again = session.post(&console, "/consumers/new", &form).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.field("id").contains("already exists"));
}

#[tokio::test]
async fn deleting_an_upstream_in_use_is_refused_with_the_reason() {
    let console = Console::new();
    let session = console.login().await;
    session
        .post(
            &console,
            "/upstreams/new",
            &[("id", "orders"), ("targets", "127.0.0.1:9001")],
        )
        .await;
    session
        .post(
            &console,
            "/routes/new",
            &[("id", "r1"), ("paths", "/a"), ("upstream", "orders")],
        )
        .await;
    let refused = session
        .post(&console, "/upstreams/orders/delete", &[])
        .await;
    assert_eq!(refused.location(), Some("/upstreams"));
    let list = session.get(&console, "/upstreams").await;
    assert!(
        list.body
            .contains("Not deleted: upstream orders is used by route r1"),
        "{}",
        list.body
    );
    assert_eq!(console.store().config().upstreams.len(), 1);

    session.post(&console, "/routes/r1/delete", &[]).await;
    session
        .post(&console, "/upstreams/orders/delete", &[])
        .await;
    assert!(console.store().config().upstreams.is_empty());
    let list = session.get(&console, "/upstreams").await;
    assert!(list.body.contains("Deleted upstream orders"));
}

#[tokio::test]
async fn upstream_pages_show_each_targets_health() {
    let live = FakeLive {
        health: vec![
            TargetHealth {
                upstream: "orders".into(),
                target: "127.0.0.1:9001".into(),
                healthy: true,
            },
            TargetHealth {
                upstream: "orders".into(),
                target: "127.0.0.1:9002".into(),
                healthy: false,
            },
        ],
        ..FakeLive::default()
    };
    let console = Console::with(
        live,
        prometheus::Registry::new(),
        std::time::Duration::from_secs(60),
    );
    let session = console.login().await;
    session
        .post(
            &console,
            "/upstreams/new",
            &[
                ("id", "orders"),
                ("targets", "127.0.0.1:9001\n127.0.0.1:9002"),
            ],
        )
        .await;
    let list = session.get(&console, "/upstreams").await;
    assert!(list.body.contains("1/2 healthy"), "{}", list.body);
    let detail = session.get(&console, "/upstreams/orders").await;
    assert!(detail.body.contains("id=\"target-health\""));
    assert!(detail.body.contains("data-live"));
    let health = &detail.body[detail.body.find("target-health").expect("section")..];
    let row = &health[health.find("127.0.0.1:9002").expect("second target")..];
    assert!(row[..row.find("</tr>").expect("row end")].contains("unhealthy"));
}

#[tokio::test]
async fn certificate_key_is_never_shown_and_kept_when_left_blank() {
    let console = Console::new();
    let session = console.login().await;
    let (cert, key) = (
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nsecretkeymaterial\n-----END PRIVATE KEY-----\n",
    );
    let created = session
        .post(
            &console,
            "/certificates/new",
            &[
                ("id", "site"),
                ("snis", "example.com"),
                ("cert", cert),
                ("key", key),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let edit = session.get(&console, "/certificates/site").await;
    assert!(!edit.body.contains("secretkeymaterial"));
    session
        .post(
            &console,
            "/certificates/site",
            &[
                ("snis", "example.com\nwww.example.com"),
                ("cert", cert),
                ("key", ""),
            ],
        )
        .await;
    let config = console.store().config();
    assert_eq!(config.certificates[0].snis.len(), 2);
    assert!(config.certificates[0].key.contains("secretkeymaterial"));
    let bad = session
        .post(
            &console,
            "/certificates/new",
            &[("id", "bad"), ("snis", "example.org"), ("cert", "not pem")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.field("cert").contains("must be PEM"));
    assert!(bad.field("key").contains("must be a PEM private key"));
}

#[tokio::test]
async fn stored_text_is_escaped_in_pages() {
    let console = Console::new();
    let session = console.login().await;
    let created = session
        .post(
            &console,
            "/consumers/new",
            &[
                ("id", "acme"),
                ("metadata", "note: </textarea><script>alert(1)</script>"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    for path in ["/consumers/acme", "/config"] {
        let page = session.get(&console, path).await;
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: {}",
            page.field("metadata")
        );
        assert!(
            page.body
                .contains("&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
    }
}
