//! The object schemas of the OpenAPI document (`components.schemas`), after the specs in
//! `storage` and `policies`.

use serde_json::{json, Map, Value};

use super::schema_ref;

fn id() -> Value {
    json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn uint() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn nullable_uint() -> Value {
    json!({"type": "integer", "minimum": 0, "nullable": true})
}

/// Every schema, by name.
pub(crate) fn all() -> Value {
    let schemas: Map<String, Value> = [
        ("Problem", json!({"type": "object", "required": ["path", "message"], "properties": {
            "path": {"type": "string", "example": "routes[orders].policies[1].burst"},
            "message": {"type": "string", "example": "must be > 0"}}})),
        ("Error", json!({"type": "object", "required": ["error", "problems"], "properties": {
            "error": {"type": "string"},
            "problems": {"type": "array", "items": schema_ref("Problem")}}})),
        ("Target", json!({"type": "object", "required": ["addr"], "additionalProperties": false,
            "properties": {"addr": {"type": "string", "example": "127.0.0.1:9001"},
                           "weight": {"type": "integer", "minimum": 0, "default": 1}}})),
        ("HealthCheck", json!({"type": "object", "additionalProperties": false, "properties": {
            "kind": {"type": "string", "enum": ["http", "tcp"], "default": "http"},
            "path": {"type": "string", "default": "/"},
            "interval_ms": uint(), "timeout_ms": uint(),
            "healthy_threshold": uint(), "unhealthy_threshold": uint(),
            "expected_statuses": {"type": "array", "items": {"type": "integer"}},
            "when_all_unhealthy": {"type": "string", "enum": ["send_to_all", "refuse"],
                "default": "send_to_all",
                "description": "send_to_all: while no target passes its checks, balance over all of them (panic mode); refuse: answer 503"}}})),
        ("Upstream", json!({"type": "object", "required": ["id", "targets"], "additionalProperties": false,
            "properties": {
                "id": id(),
                "targets": {"type": "array", "items": schema_ref("Target")},
                "balancing": {"type": "string", "default": "round_robin",
                    "enum": ["round_robin", "random", "consistent_hash", "least_connections"]},
                "hash_on": {"type": "string", "description": "client_ip | path | header:NAME"},
                "health_check": schema_ref("HealthCheck"),
                "connect_timeout_ms": uint(), "read_timeout_ms": uint(), "retries": uint(),
                "dns_refresh_secs": uint(),
                "tls": {"type": "boolean"}, "sni": {"type": "string"},
                "protocol": {"type": "string", "default": "http1", "enum": ["http1", "h2", "h2c"],
                    "description": "h2 needs tls; h2c is HTTP/2 without TLS (gRPC)"}}})),
        ("Policy", json!({"type": "object", "required": ["type"], "additionalProperties": true,
            "description": "a policy: `type` and that type's fields (see ADMIN_API.md, Policies)",
            "properties": {"type": {"type": "string", "enum": [
                "key_auth", "jwt", "basic_auth", "acl", "rate_limit", "ip_filter", "cors",
                "request_size", "headers", "rewrite", "compression", "grpc_web", "cache"]}}})),
        ("Route", json!({"type": "object", "required": ["id", "paths", "upstream"],
            "additionalProperties": false, "properties": {
                "id": id(), "hosts": strings(), "methods": strings(), "paths": strings(),
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "strip_prefix": {"type": "string"},
                "priority": {"type": "integer", "default": 0},
                "upstream": id(),
                "policies": {"type": "array", "items": schema_ref("Policy")},
                "enabled": {"type": "boolean", "default": true}}})),
        ("Consumer", json!({"type": "object", "required": ["id"], "additionalProperties": false,
            "properties": {"id": id(), "plan": id(), "groups": strings(),
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}})),
        ("Plan", json!({"type": "object", "required": ["id"], "additionalProperties": false,
            "properties": {
                "id": id(),
                "rate_limit": {"type": "object", "required": ["requests", "per"], "properties": {
                    "requests": uint(),
                    "per": {"type": "string", "enum": ["second", "minute", "hour"]},
                    "burst": uint()}},
                "quota": {"type": "object", "required": ["requests", "per"], "properties": {
                    "requests": uint(), "per": {"type": "string", "enum": ["day", "month"]}}}}})),
        ("JwtKey", json!({"type": "object", "additionalProperties": false, "properties": {
            "kid": {"type": "string"}, "pem": {"type": "string"}, "secret": {"type": "string"},
            "jwks": {"type": "object"}}})),
        ("JwtIssuer", json!({"type": "object", "required": ["id", "issuer", "algorithms", "keys"],
            "additionalProperties": false, "properties": {
                "id": id(), "issuer": {"type": "string"}, "audiences": strings(),
                "algorithms": {"type": "array", "items": {"type": "string", "enum": [
                    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
                    "PS512", "ES256", "ES384", "EdDSA"]}},
                "keys": {"type": "array", "items": schema_ref("JwtKey")},
                "consumer_claim": {"type": "string", "default": "sub"},
                "leeway_secs": uint()}})),
        ("Certificate", json!({"type": "object", "required": ["id", "snis", "cert"],
            "additionalProperties": false, "properties": {
                "id": id(), "snis": strings(),
                "cert": {"type": "string", "description": "PEM chain, leaf first"},
                "key": {"type": "string", "writeOnly": true,
                        "description": "PEM private key; required on create, never shown"}}})),
        ("Key", json!({"type": "object", "description": "an API key as listed: never the key or its hash",
            "properties": {"id": id(), "consumer": id(),
                "prefix": {"type": "string", "example": "tg_ab12"},
                "label": {"type": "string", "nullable": true},
                "created": uint(), "expires": nullable_uint(), "revoked": {"type": "boolean"}}})),
        ("NewKey", json!({"type": "object", "additionalProperties": false, "properties": {
            "label": {"type": "string"},
            "expires_at": {"type": "integer", "minimum": 0, "description": "unix seconds"}}})),
        ("CreatedKey", json!({"type": "object", "required": ["id", "key", "prefix", "created"],
            "properties": {"id": id(),
                "key": {"type": "string", "example": "tg_...", "description": "shown this once"},
                "prefix": {"type": "string"}, "label": {"type": "string", "nullable": true},
                "created": uint(), "expires": nullable_uint()}})),
        ("NewCredential", json!({"type": "object", "required": ["username", "password"],
            "additionalProperties": false, "properties": {
                "username": {"type": "string"}, "password": {"type": "string", "writeOnly": true}}})),
        ("Credential", json!({"type": "object", "required": ["username", "consumer"], "properties": {
            "username": {"type": "string"}, "consumer": id()}})),
        ("Config", json!({"type": "object", "additionalProperties": false, "properties": {
            "upstreams": {"type": "array", "items": schema_ref("Upstream")},
            "routes": {"type": "array", "items": schema_ref("Route")},
            "consumers": {"type": "array", "items": schema_ref("Consumer")},
            "plans": {"type": "array", "items": schema_ref("Plan")},
            "jwt_issuers": {"type": "array", "items": schema_ref("JwtIssuer")},
            "certificates": {"type": "array", "items": schema_ref("Certificate")},
            "keys": {"type": "array", "items": {"type": "object"},
                     "description": "stored key records (hashes only)"},
            "credentials": {"type": "array", "items": {"type": "object"},
                            "description": "stored credentials (argon2 hashes only)"}}})),
        ("Status", json!({"type": "object", "properties": {
            "revision": uint(), "version": {"type": "string"}, "uptime_seconds": uint(),
            "upstreams": {"type": "array", "items": {"type": "object", "properties": {
                "id": id(),
                "targets": {"type": "array", "items": {"type": "object", "properties": {
                    "addr": {"type": "string"},
                    "healthy": {"type": "boolean", "nullable": true}}}}}}},
            "last_reload_error": {"type": "string", "nullable": true},
            "store": {"type": "object", "properties": {
                "ok": {"type": "boolean", "description": "false while the store cannot write"},
                "last_error": {"type": "string", "nullable": true},
                "last_error_at": {"type": "integer", "nullable": true,
                                  "description": "unix seconds"},
                "errors": uint()}},
            "follow": {"type": "object", "description": "on a follower only", "properties": {
                "url": {"type": "string"}, "connected": {"type": "boolean"},
                "revision": uint(),
                "last_sync": {"type": "integer", "nullable": true, "description": "unix seconds"}}},
            "cache": {"type": "object", "description": "the response cache of this node", "properties": {
                "bytes": uint(), "capacity_bytes": uint(), "entries": uint(),
                "hits": uint(), "misses": uint(), "stale": uint(), "bypass": uint()}}}})),
        ("Node", json!({"type": "object", "properties": {
            "id": {"type": "string"}, "address": {"type": "string"}, "revision": uint(),
            "version": {"type": "string"},
            "last_seen": {"type": "integer", "description": "unix seconds"},
            "connected": {"type": "boolean"}}})),
        ("Feed", json!({"type": "object", "required": ["mode", "revision", "nodes"], "properties": {
            "mode": {"type": "string", "enum": ["current", "changes", "whole"]},
            "revision": uint(),
            "nodes": {"type": "integer", "description": "gateway nodes serving traffic: connected followers and the control node"},
            "config": {"allOf": [schema_ref("Config")], "description": "mode whole: the whole config, secrets included"},
            "changes": {"type": "array", "description": "mode changes: every revision after `after`, in order",
                "items": {"type": "object", "properties": {
                    "revision": uint(), "action": {"type": "string"},
                    "upserts": {"type": "array", "items": {"type": "object", "properties": {
                        "kind": {"type": "string"}, "object": {"type": "object"}}}},
                    "deletes": {"type": "array", "items": {"type": "object", "properties": {
                        "kind": {"type": "string"}, "id": {"type": "string"}}}}}}}}})),
        ("Usage", json!({"type": "object", "properties": {
            "period": {"type": "string", "enum": ["day", "month"], "nullable": true},
            "used": uint(), "limit": nullable_uint(), "remaining": nullable_uint(),
            "resets_at": {"type": "integer", "nullable": true, "description": "unix seconds"}}})),
    ]
    .into_iter()
    .map(|(name, schema)| (name.to_owned(), schema))
    .collect();
    Value::Object(schemas)
}
