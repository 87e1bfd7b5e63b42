//! Checks of one route, including its references to upstreams and JWT issuers.

use std::collections::BTreeSet;

use policies::problem::check_id;
use policies::{is_header_name, PolicySpec, Problem, Problems};

use super::{syntax, Names};
use crate::spec::RouteSpec;

pub(crate) fn validate(r: &RouteSpec, names: &Names<'_>) -> Vec<Problem> {
    let mut p = Problems::new();
    check_id(&mut p, "id", &r.id);
    for (i, host) in r.hosts.iter().enumerate() {
        if !syntax::is_host(host, true) {
            p.push(
                format!("hosts[{i}]"),
                "must be a lowercase host name, or *.domain",
            );
        }
    }
    let mut methods = BTreeSet::new();
    for (i, m) in r.methods.iter().enumerate() {
        if !syntax::is_method(m) {
            p.push(format!("methods[{i}]"), "must be an uppercase HTTP method");
        } else if !methods.insert(m) {
            p.push(format!("methods[{i}]"), "duplicate method");
        }
    }
    if r.paths.is_empty() {
        p.push("paths", "must hold at least one path");
    }
    let mut paths = BTreeSet::new();
    for (i, path) in r.paths.iter().enumerate() {
        if let Err(why) = syntax::check_route_path(path) {
            p.push(format!("paths[{i}]"), why);
        } else if !paths.insert(path) {
            p.push(format!("paths[{i}]"), "duplicate path");
        }
    }
    for (name, value) in &r.headers {
        if !is_header_name(name) {
            p.push(format!("headers.{name}"), "must be a valid header name");
        } else if !syntax::is_header_value(value) {
            p.push(format!("headers.{name}"), "must be a valid header value");
        }
    }
    if let Some(prefix) = &r.strip_prefix {
        if !prefix.starts_with('/') {
            p.push("strip_prefix", "must start with /");
        }
    }
    if !names.upstreams.contains(r.upstream.as_str()) {
        p.push("upstream", format!("unknown upstream {}", r.upstream));
    }
    for (i, policy) in r.policies.iter().enumerate() {
        let at = format!("policies[{i}]");
        p.extend_under(&at, policy.validate());
        if let PolicySpec::Jwt(jwt) = policy {
            if jwt.issuers.is_empty() && names.jwt_issuers.is_empty() {
                p.push(at.clone(), "no jwt issuers are configured");
            }
            for (j, issuer) in jwt.issuers.iter().enumerate() {
                if !names.jwt_issuers.contains(issuer.as_str()) {
                    p.push(
                        format!("{at}.issuers[{j}]"),
                        format!("unknown jwt issuer {issuer}"),
                    );
                }
            }
        }
    }
    p.into_vec()
}
