use super::*;

fn upgrade_req(headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/ws", None).expect("req");
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).expect("hdr");
    }
    r
}

fn get<'a>(r: &'a RequestHeader, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[test]
fn keeps_a_websocket_upgrade_and_drops_hop_by_hop_fields() {
    let mut r = upgrade_req(&[
        ("connection", "keep-alive, Upgrade, x-secret"),
        ("upgrade", "WebSocket"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("sec-websocket-key", "k"),
        ("proxy-authorization", "Basic x"),
    ]);
    sanitize(&mut r, HttpUpstreamRequestPolicy::standard()).expect("sanitized");
    assert_eq!(get(&r, "connection"), Some("Upgrade"));
    assert_eq!(get(&r, "upgrade"), Some("websocket"));
    assert_eq!(get(&r, "sec-websocket-key"), Some("k"));
    for gone in ["keep-alive", "x-secret", "proxy-authorization"] {
        assert!(!r.headers.contains_key(gone), "{gone} is forwarded");
    }
}

#[test]
fn does_not_forward_upgrades_to_other_protocols() {
    let mut r = upgrade_req(&[
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"),
    ]);
    sanitize(&mut r, HttpUpstreamRequestPolicy::standard()).expect("sanitized");
    for gone in ["connection", "upgrade", "http2-settings"] {
        assert!(!r.headers.contains_key(gone), "{gone} is forwarded");
    }
}

#[test]
fn refuses_connection_options_naming_protected_or_malformed_fields() {
    for value in [
        "Upgrade, X-Forwarded-For",
        "host",
        "\"x-secret\"",
        "a,b,c,d,e,f,g,h,i,j",
    ] {
        let mut r = upgrade_req(&[("connection", value), ("upgrade", "websocket")]);
        let e = sanitize(&mut r, HttpUpstreamRequestPolicy::standard())
            .expect_err(&format!("{value} is refused"));
        assert_eq!(*e.etype(), ErrorType::InvalidHTTPHeader, "{value}");
    }
}

#[test]
fn preserve_policy_leaves_the_request_alone() {
    let mut r = upgrade_req(&[
        ("connection", "Upgrade, x-a"),
        ("upgrade", "h2c"),
        ("x-a", "1"),
    ]);
    sanitize(&mut r, HttpUpstreamRequestPolicy::preserve()).expect("sanitized");
    assert_eq!(get(&r, "connection"), Some("Upgrade, x-a"));
    assert_eq!(get(&r, "upgrade"), Some("h2c"));
    assert_eq!(get(&r, "x-a"), Some("1"));
}
