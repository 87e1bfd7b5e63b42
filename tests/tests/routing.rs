//! Route matching precedence: host exact vs wildcard, method, exact vs prefix vs params,
//! header match, priority, longest prefix, strip_prefix. Each route leads to its own
//! named echo upstream, so the answering server's name says which route matched.

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::{http_client, send, EchoServer, Gateway};

/// A gateway with one upstream (and echo server) per name, ids equal to the names.
fn setup(names: &[&str]) -> Result<(Gateway, Vec<EchoServer>)> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    let mut servers = Vec::new();
    for name in names {
        let server = EchoServer::start(name)?;
        admin.create_upstream(&upstream_spec(name, &[server.addr()]))?;
        servers.push(server);
    }
    Ok((gateway, servers))
}

/// The name of the server that answered `method path` with `headers`, or `status N`.
fn who(gateway: &Gateway, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<String> {
    let answer = send(&http_client(), method, &gateway.url(path), headers)?;
    if answer.status == 200 {
        Ok(answer.echo()?.server)
    } else {
        Ok(format!("status {}", answer.status))
    }
}

#[test]
fn exact_host_beats_wildcard_and_unknown_host_is_404() -> Result<()> {
    let (gateway, _servers) = setup(&["exact", "wild"])?;
    let admin = gateway.admin();
    admin.create_route(
        &json!({"id": "wild", "hosts": ["*.example.com"], "paths": ["/"], "upstream": "wild"}),
    )?;
    admin.create_route(
        &json!({"id": "exact", "hosts": ["api.example.com"], "paths": ["/"], "upstream": "exact"}),
    )?;

    assert_eq!(
        who(&gateway, "GET", "/x", &[("host", "api.example.com")])?,
        "exact"
    );
    assert_eq!(
        who(&gateway, "GET", "/x", &[("host", "api.example.com:8080")])?,
        "exact",
        "a port in Host is not part of the host"
    );
    assert_eq!(
        who(&gateway, "GET", "/x", &[("host", "other.example.com")])?,
        "wild"
    );
    assert_eq!(
        who(&gateway, "GET", "/x", &[("host", "a.b.example.com")])?,
        "wild"
    );
    assert_eq!(
        who(&gateway, "GET", "/x", &[("host", "example.org")])?,
        "status 404"
    );
    Ok(())
}

#[test]
fn method_selects_between_routes_on_the_same_path() -> Result<()> {
    let (gateway, _servers) = setup(&["reader", "writer"])?;
    let admin = gateway.admin();
    admin.create_route(
        &json!({"id": "reads", "methods": ["GET"], "paths": ["/items"], "upstream": "reader"}),
    )?;
    admin.create_route(&json!({"id": "writes", "methods": ["POST", "PUT"], "paths": ["/items"], "upstream": "writer"}))?;

    assert_eq!(who(&gateway, "GET", "/items/1", &[])?, "reader");
    assert_eq!(who(&gateway, "POST", "/items", &[])?, "writer");
    assert_eq!(who(&gateway, "PUT", "/items/1", &[])?, "writer");
    assert_eq!(who(&gateway, "DELETE", "/items/1", &[])?, "status 404");
    Ok(())
}

#[test]
fn exact_path_beats_params_beats_prefix() -> Result<()> {
    let (gateway, _servers) = setup(&["exact", "prefix", "params"])?;
    let admin = gateway.admin();
    admin.create_route(&json!({"id": "prefix", "paths": ["/v1"], "upstream": "prefix"}))?;
    admin.create_route(
        &json!({"id": "params", "paths": ["/v1/users/{id}/orders"], "upstream": "params"}),
    )?;
    admin.create_route(&json!({"id": "exact", "paths": ["=/v1/ping"], "upstream": "exact"}))?;

    assert_eq!(who(&gateway, "GET", "/v1/ping", &[])?, "exact");
    assert_eq!(
        who(&gateway, "GET", "/v1/ping/more", &[])?,
        "prefix",
        "an exact path matches only itself"
    );
    assert_eq!(who(&gateway, "GET", "/v1/users/42/orders", &[])?, "params");
    assert_eq!(
        who(&gateway, "GET", "/v1/users/42/invoices", &[])?,
        "prefix"
    );
    assert_eq!(
        who(&gateway, "GET", "/v1/users/a/b/orders", &[])?,
        "prefix",
        "a param matches one segment"
    );
    assert_eq!(who(&gateway, "GET", "/v2/ping", &[])?, "status 404");
    Ok(())
}

#[test]
fn longest_prefix_wins_within_a_priority() -> Result<()> {
    let (gateway, _servers) = setup(&["short", "long"])?;
    let admin = gateway.admin();
    admin.create_route(&json!({"id": "long", "paths": ["/a/b"], "upstream": "long"}))?;
    admin.create_route(&json!({"id": "short", "paths": ["/a"], "upstream": "short"}))?;

    assert_eq!(who(&gateway, "GET", "/a/b/c", &[])?, "long");
    assert_eq!(who(&gateway, "GET", "/a/b", &[])?, "long");
    assert_eq!(who(&gateway, "GET", "/a/c", &[])?, "short");
    Ok(())
}

#[test]
fn higher_priority_wins_over_a_more_specific_route() -> Result<()> {
    let (gateway, _servers) = setup(&["specific", "preferred"])?;
    let admin = gateway.admin();
    admin.create_route(
        &json!({"id": "specific", "paths": ["/p/deep"], "priority": 0, "upstream": "specific"}),
    )?;
    admin.create_route(
        &json!({"id": "preferred", "paths": ["/p"], "priority": 10, "upstream": "preferred"}),
    )?;

    assert_eq!(who(&gateway, "GET", "/p/deep", &[])?, "preferred");
    assert_eq!(who(&gateway, "GET", "/p/other", &[])?, "preferred");

    // Lowering the priority below the specific route's hands /p/deep back to it.
    admin.update_route(
        "preferred",
        &json!({"id": "preferred", "paths": ["/p"], "priority": -1, "upstream": "preferred"}),
    )?;
    assert_eq!(who(&gateway, "GET", "/p/deep", &[])?, "specific");
    assert_eq!(who(&gateway, "GET", "/p/other", &[])?, "preferred");
    Ok(())
}

#[test]
fn header_match_selects_a_route_and_falls_back_without_it() -> Result<()> {
    let (gateway, _servers) = setup(&["v2", "v1"])?;
    let admin = gateway.admin();
    admin.create_route(&json!({"id": "v1", "paths": ["/api"], "upstream": "v1"}))?;
    admin.create_route(
        &json!({"id": "v2", "paths": ["/api"], "headers": {"x-version": "2"}, "upstream": "v2"}),
    )?;

    assert_eq!(who(&gateway, "GET", "/api/x", &[("x-version", "2")])?, "v2");
    assert_eq!(who(&gateway, "GET", "/api/x", &[("x-version", "3")])?, "v1");
    assert_eq!(who(&gateway, "GET", "/api/x", &[])?, "v1");
    Ok(())
}

#[test]
fn strip_prefix_removes_the_prefix_and_keeps_the_query() -> Result<()> {
    let (gateway, _servers) = setup(&["svc"])?;
    gateway.admin().create_route(
        &json!({"id": "svc", "paths": ["/api"], "strip_prefix": "/api", "upstream": "svc"}),
    )?;
    let client = http_client();

    let echoed = send(&client, "GET", &gateway.url("/api/x/y?q=1&r=two"), &[])?.echo()?;
    assert_eq!(echoed.path, "/x/y");
    assert_eq!(echoed.query, "q=1&r=two");

    let echoed = send(&client, "GET", &gateway.url("/api"), &[])?.echo()?;
    assert_eq!(echoed.path, "/", "stripping the whole path leaves /");
    Ok(())
}

#[test]
fn route_without_strip_prefix_forwards_the_path_unchanged() -> Result<()> {
    let (gateway, _servers) = setup(&["svc"])?;
    gateway
        .admin()
        .create_route(&json!({"id": "svc", "paths": ["/api"], "upstream": "svc"}))?;
    let echoed = send(&http_client(), "POST", &gateway.url("/api/x%20y?z=1"), &[])?.echo()?;
    assert_eq!(echoed.method, "POST");
    assert_eq!(echoed.path, "/api/x%20y");
    assert_eq!(echoed.query, "z=1");
    Ok(())
}

#[test]
fn deleted_route_stops_matching_on_the_next_request() -> Result<()> {
    let (gateway, _servers) = setup(&["svc"])?;
    let admin = gateway.admin();
    admin.create_route(&json!({"id": "svc", "paths": ["/gone"], "upstream": "svc"}))?;
    assert_eq!(who(&gateway, "GET", "/gone", &[])?, "svc");
    admin
        .delete("/api/v1/routes/svc")?
        .expect_status(204, "deleting a route")?;
    assert_eq!(who(&gateway, "GET", "/gone", &[])?, "status 404");
    Ok(())
}
