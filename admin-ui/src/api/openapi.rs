//! `GET /openapi.json` (no auth): the OpenAPI 3.0 document of the admin API, hand-written.
//! The tests check that it names every route of [`super::table`] and every method each serves.

mod schemas;

use std::sync::OnceLock;

use axum::Json;
use serde_json::{json, Map, Value};

/// `GET /openapi.json`. The document is built once and shared.
pub(crate) async fn serve() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document).clone())
}

/// The whole document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    let mut add = |path: &str, item: Value| {
        paths.insert(path.to_owned(), item);
    };
    add(
        "/healthz",
        json!({"get": {
            "summary": "Readiness of the proxy listener", "security": [], "tags": ["status"],
            "responses": {
                "200": {"description": "the proxy listener accepts connections"},
                "503": {"description": "not ready yet"}
            }
        }}),
    );
    add(
        "/openapi.json",
        json!({"get": {
            "summary": "This document", "security": [], "tags": ["status"],
            "responses": {"200": {"description": "OpenAPI 3.0 document", "content": {"application/json": {}}}}
        }}),
    );
    for (name, schema, tag, has_put) in [
        ("upstreams", "Upstream", "upstreams", true),
        ("routes", "Route", "routes", true),
        ("consumers", "Consumer", "consumers", true),
        ("plans", "Plan", "plans", true),
        ("jwt-issuers", "JwtIssuer", "jwt-issuers", true),
        ("certificates", "Certificate", "certificates", false),
    ] {
        let (collection, item) = crud(schema, tag, has_put);
        add(&format!("/api/v1/{name}"), collection);
        add(&format!("/api/v1/{name}/{{id}}"), item);
    }
    add(
        "/api/v1/consumers/{id}/keys",
        json!({
            "parameters": [id_param("id", "consumer id")],
            "get": op("List the consumer's API keys (never the key or its hash)", "keys",
                None, ok("200", json!({"type": "array", "items": schema_ref("Key")}))),
            "post": op("Create an API key: the answer is the only time the key is shown", "keys",
                Some((schema_ref("NewKey"), false)), ok("201", schema_ref("CreatedKey")))
        }),
    );
    add(
        "/api/v1/consumers/{id}/keys/{key_id}",
        json!({
            "parameters": [id_param("id", "consumer id"), id_param("key_id", "key id")],
            "delete": op("Delete (revoke) an API key", "keys", None, no_content())
        }),
    );
    add(
        "/api/v1/consumers/{id}/basic-auth",
        json!({
            "parameters": [id_param("id", "consumer id")],
            "get": op("List the consumer's basic-auth usernames", "basic-auth", None,
                ok("200", json!({"type": "array", "items": schema_ref("Credential")}))),
            "post": op("Create a basic-auth credential (the password is stored as an argon2 hash)",
                "basic-auth", Some((schema_ref("NewCredential"), true)), ok("201", schema_ref("Credential")))
        }),
    );
    add(
        "/api/v1/consumers/{id}/basic-auth/{username}",
        json!({
            "parameters": [id_param("id", "consumer id"), id_param("username", "username")],
            "delete": op("Delete a basic-auth credential", "basic-auth", None, no_content())
        }),
    );
    add(
        "/api/v1/consumers/{id}/usage",
        json!({
            "parameters": [id_param("id", "consumer id")],
            "get": op("Quota used and left in the current period", "status", None,
                ok("200", schema_ref("Usage")))
        }),
    );
    add(
        "/api/v1/config",
        json!({
            "get": {
                "summary": "Export the whole config (YAML with Accept: application/yaml or ?format=yaml)",
                "tags": ["config"],
                "parameters": [{"name": "format", "in": "query", "required": false,
                                "schema": {"type": "string", "enum": ["json", "yaml"]}}],
                "responses": with_errors(json!({"200": {"description": "the config",
                    "content": {"application/json": {"schema": schema_ref("Config")},
                                "application/yaml": {"schema": schema_ref("Config")}}}}))
            },
            "put": {
                "summary": "Replace the whole config atomically (JSON or YAML by Content-Type)",
                "tags": ["config"],
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": schema_ref("Config")},
                    "application/yaml": {"schema": schema_ref("Config")}}},
                "responses": with_errors(ok("200", schema_ref("Config")))
            }
        }),
    );
    add(
        "/api/v1/status",
        json!({
            "get": op("Revision, version, uptime and upstream target health", "status", None,
                ok("200", schema_ref("Status")))
        }),
    );
    add(
        "/api/v1/cache/purge",
        json!({
            "post": op("Drop the cached answers of a route (or of one path of it) on this node",
                "cache", Some((json!({"type": "object", "required": ["route"],
                    "additionalProperties": false,
                    "properties": {"route": {"type": "string"}, "path": {"type": "string"}}}), true)),
                ok("200", json!({"type": "object", "properties": {"purged": {"type": "integer"}}})))
        }),
    );
    let query = |name: &str, schema: Value, description: &str| {
        json!({"name": name, "in": "query", "required": name == "node",
               "description": description, "schema": schema})
    };
    add(
        "/api/v1/cluster/feed",
        json!({"get": {
            "summary": "The config feed followers long-poll: the changes after a revision, the whole config, or nothing new within `wait` seconds",
            "tags": ["cluster"], "security": [{"cluster": []}],
            "parameters": [
                query("after", json!({"type": "integer", "minimum": 0}), "the follower's revision (default 0)"),
                query("wait", json!({"type": "integer", "minimum": 0, "maximum": 60}), "seconds to wait for a change (default 25)"),
                query("node", json!({"type": "string"}), "the follower's node id"),
                query("address", json!({"type": "string"}), "the follower's proxy address"),
                query("version", json!({"type": "string"}), "the follower's version")
            ],
            "responses": {
                "200": {"description": "success", "content": {"application/json": {"schema": schema_ref("Feed")}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "404": error_response("this node serves no feed (no TOLLGATE_CLUSTER_TOKEN)")
            }
        }}),
    );
    add(
        "/api/v1/cluster/nodes",
        json!({"get": op("The followers of this control node", "cluster", None,
            ok("200", json!({"type": "array", "items": schema_ref("Node")})))}),
    );

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tollgate admin API",
            "version": "1",
            "description": "Manage the gateway's config. A 2xx answer means the change is durable and the proxy uses it from its next request."
        },
        "paths": paths,
        "security": [{"bearer": []}, {"basic": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "TOLLGATE_ADMIN_TOKEN"},
                "basic": {"type": "http", "scheme": "basic", "description": "a console admin's username and password"},
                "cluster": {"type": "http", "scheme": "bearer", "description": "TOLLGATE_CLUSTER_TOKEN (the config feed only)"}
            },
            "responses": {
                "BadRequest": error_response("invalid input: every problem, with its path"),
                "Unauthorized": error_response("no or wrong credentials"),
                "NotFound": error_response("no such object"),
                "Conflict": error_response("the id exists, or the object is still in use"),
                "TooLarge": error_response("request body over 8 MiB"),
                "UnsupportedMediaType": error_response(
                    "a body that is not application/json (or application/yaml)"),
                "TooManyRequests": error_response(
                    "Basic auth: too many wrong passwords for the user name; see Retry-After"),
                "Busy": error_response(
                    "Basic auth: too many password checks at once; see Retry-After")
            },
            "schemas": schemas::all()
        }
    })
}

/// The collection and item path items of a uniform resource.
fn crud(schema: &str, tag: &str, has_put: bool) -> (Value, Value) {
    let one = schema_ref(schema);
    let collection = json!({
        "get": op(&format!("List every {schema}, sorted by id"), tag, None,
            ok("200", json!({"type": "array", "items": one}))),
        "post": op(&format!("Create a {schema} (409 when the id exists)"), tag,
            Some((one.clone(), true)), ok("201", one.clone()))
    });
    let mut item = json!({
        "parameters": [id_param("id", "object id")],
        "get": op(&format!("Read a {schema}"), tag, None, ok("200", one.clone())),
        "delete": op(&format!("Delete a {schema} (409 while something uses it)"), tag, None,
            no_content())
    });
    if has_put {
        item["put"] = op(
            &format!("Replace a {schema}; a body without id takes the path's"),
            tag,
            Some((one.clone(), true)),
            ok("200", one),
        );
    }
    (collection, item)
}

/// An operation: summary, tag, optional JSON body `(schema, required)`, responses (the
/// shared error answers are added).
fn op(summary: &str, tag: &str, body: Option<(Value, bool)>, responses: Value) -> Value {
    let mut op = json!({"summary": summary, "tags": [tag], "responses": with_errors(responses)});
    if let Some((schema, required)) = body {
        op["requestBody"] = json!({"required": required,
            "content": {"application/json": {"schema": schema}}});
    }
    op
}

fn with_errors(mut responses: Value) -> Value {
    for (code, name) in [
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("404", "NotFound"),
        ("409", "Conflict"),
        ("413", "TooLarge"),
        ("415", "UnsupportedMediaType"),
        ("429", "TooManyRequests"),
        ("503", "Busy"),
    ] {
        responses[code] = json!({"$ref": format!("#/components/responses/{name}")});
    }
    responses
}

fn ok(code: &str, schema: Value) -> Value {
    json!({code: {"description": "success", "content": {"application/json": {"schema": schema}}}})
}

fn no_content() -> Value {
    json!({"204": {"description": "deleted"}})
}

fn id_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn error_response(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": schema_ref("Error")}}})
}

pub(crate) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
