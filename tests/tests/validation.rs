//! Invalid input is refused with 400 and every problem, each with its path; nothing is
//! stored. Authentication of the REST API.

use anyhow::Result;
use serde_json::{json, Value};
use tests::admin::upstream_spec;
use tests::{EchoServer, Gateway};

/// The `path` of every problem in a 400 body, with a check of the body's shape.
fn problem_paths(body: &Value) -> Vec<String> {
    assert!(
        body["error"].is_string(),
        "a 400 carries an error message: {body}"
    );
    let problems = body["problems"].as_array().cloned().unwrap_or_default();
    for problem in &problems {
        assert!(
            problem["message"].as_str().is_some_and(|m| !m.is_empty()),
            "every problem has a message: {problem}"
        );
    }
    problems
        .iter()
        .filter_map(|p| p["path"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn invalid_route_answers_400_with_every_problem() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;

    let bad = json!({
        "id": "bad",
        "paths": ["no-leading-slash"],
        "upstream": "svc",
        "policies": [{"type": "rate_limit", "requests": 0, "per": "second"}],
    });
    let answer = admin
        .post("/api/v1/routes", &bad)?
        .expect_status(400, "posting a route with two problems")?;
    let paths = problem_paths(&answer.body);
    assert!(
        paths.iter().any(|p| p.contains("paths[0]")),
        "the bad path is reported: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("policies[0].requests")),
        "the zero rate is reported: {paths:?}"
    );
    admin
        .get("/api/v1/routes/bad")?
        .expect_status(404, "nothing stored")?;
    Ok(())
}

#[test]
fn invalid_whole_config_answers_400_with_problems_in_each_object() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    let config = json!({
        "upstreams": [{"id": "u", "targets": [{"addr": "not an address"}]}],
        "routes": [{"id": "r", "paths": ["/r"], "upstream": "missing"}],
    });
    let answer = admin
        .put("/api/v1/config", &config)?
        .expect_status(400, "putting a config with two problems")?;
    let paths = problem_paths(&answer.body);
    assert!(
        paths
            .iter()
            .any(|p| p.contains("upstreams") && p.contains("addr")),
        "the bad address is reported: {paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.contains("routes") && p.contains("upstream")),
        "the unknown upstream is reported: {paths:?}"
    );
    admin
        .get("/api/v1/upstreams/u")?
        .expect_status(404, "nothing stored")?;
    Ok(())
}

#[test]
fn route_to_unknown_upstream_is_refused_and_used_upstream_cannot_be_deleted() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin
        .post(
            "/api/v1/routes",
            &json!({"id": "r", "paths": ["/"], "upstream": "nope"}),
        )?
        .expect_status(400, "route to a missing upstream")?;
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&json!({"id": "r", "paths": ["/"], "upstream": "svc"}))?;
    admin
        .post(
            "/api/v1/routes",
            &json!({"id": "r", "paths": ["/"], "upstream": "svc"}),
        )?
        .expect_status(409, "duplicate id")?;
    admin
        .delete("/api/v1/upstreams/svc")?
        .expect_status(409, "deleting a used upstream")?;
    admin
        .get("/api/v1/routes/missing")?
        .expect_status(404, "missing route")?;
    Ok(())
}

#[test]
fn rest_api_refuses_missing_or_wrong_token() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    admin
        .with_token(None)
        .get("/api/v1/routes")?
        .expect_status(401, "no token")?;
    admin
        .with_token(Some("wrong"))
        .get("/api/v1/routes")?
        .expect_status(401, "wrong token")?;
    admin
        .get("/api/v1/routes")?
        .expect_status(200, "right token")?;
    Ok(())
}
