//! Helpers shared by the unit tests.

use std::collections::BTreeMap;
use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::request::RequestView;
use crate::spec::{ConsumerSpec, KeyRecord};

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub fn view<'a>(
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    peer: &str,
) -> RequestView<'a> {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    RequestView {
        method,
        path,
        query,
        headers,
        client_ip: ip(peer),
        peer_ip: ip(peer),
    }
}

pub fn consumer(id: &str, plan: Option<&str>, groups: &[&str]) -> ConsumerSpec {
    ConsumerSpec {
        id: id.into(),
        plan: plan.map(Into::into),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        metadata: BTreeMap::new(),
    }
}

pub fn key(id: &str, consumer: &str, raw: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        consumer: consumer.into(),
        hash: crate::KeyHash::of(raw.as_bytes()),
        prefix: raw.chars().take(7).collect(),
        label: None,
        created: 0,
        expires: None,
        revoked: false,
    }
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect("test fixture")
}

/// The message of a `Respond`, or "continue".
pub fn outcome(v: &crate::Verdict) -> (u16, String) {
    match v {
        crate::Verdict::Continue => (0, "continue".to_owned()),
        crate::Verdict::Respond(r) => (r.status.as_u16(), r.message.to_string()),
    }
}
