//! What the upstream is told about the original request: `X-Forwarded-For` (appended),
//! `X-Forwarded-Proto`, `X-Forwarded-Host`, `x-request-id`, and the path after
//! `strip_prefix`.

use std::net::IpAddr;

use http::Uri;
use pingora_http::RequestHeader;

use crate::request_id;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// What the gateway knows of the client side of a request.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub client_ip: Option<IpAddr>,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The `Host` the client asked for.
    pub host: Option<&'a str>,
    pub request_id: &'a str,
}

/// Sets the forwarding headers on the request to the upstream. `X-Forwarded-For` keeps
/// what earlier proxies wrote and appends the client address; the other headers are
/// replaced (this gateway is the edge: a client's own values are not trusted).
pub fn apply(req: &mut RequestHeader, origin: &Origin<'_>) -> pingora_core::Result<()> {
    if let Some(ip) = origin.client_ip {
        let ip = ip.to_string();
        let value = match req.headers.get(X_FORWARDED_FOR).map(|v| v.to_str()) {
            Some(Ok(prev)) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
            _ => ip,
        };
        req.insert_header(X_FORWARDED_FOR, value)?;
    }
    req.insert_header(X_FORWARDED_PROTO, origin.proto)?;
    match origin.host {
        Some(host) => req.insert_header(X_FORWARDED_HOST, host)?,
        None => {
            req.remove_header(X_FORWARDED_HOST);
        }
    }
    req.insert_header(request_id::HEADER, origin.request_id)?;
    Ok(())
}

/// Replaces the path of `req` by `path`, keeping the query string.
pub fn set_path(req: &mut RequestHeader, path: &str) -> pingora_core::Result<()> {
    let uri = &req.uri;
    let path = if path.is_empty() { "/" } else { path };
    let new = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let uri: Uri = new.parse().map_err(|e| {
        pingora_core::Error::because(
            pingora_core::ErrorType::InvalidHTTPHeader,
            "rewritten path",
            e,
        )
    })?;
    req.set_uri(uri);
    Ok(())
}

/// The host the client asked for: the `Host` header, else the authority of the URI.
pub fn request_host(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(ip: &str) -> Origin<'static> {
        Origin {
            client_ip: Some(ip.parse().expect("ip")),
            proto: "http",
            host: Some("api.example.com"),
            request_id: "rid-1",
        }
    }

    fn get(name: &str, req: &RequestHeader) -> String {
        req.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn appends_client_ip_to_forwarded_for() {
        let mut req = RequestHeader::build("GET", b"/a", None).expect("req");
        req.insert_header(X_FORWARDED_FOR, "10.0.0.1").expect("hdr");
        apply(&mut req, &origin("192.0.2.7")).expect("apply");
        assert_eq!(get(X_FORWARDED_FOR, &req), "10.0.0.1, 192.0.2.7");
    }

    #[test]
    fn sets_proto_host_and_request_id() {
        let mut req = RequestHeader::build("GET", b"/a", None).expect("req");
        req.insert_header(X_FORWARDED_PROTO, "https").expect("hdr");
        apply(&mut req, &origin("192.0.2.7")).expect("apply");
        assert_eq!(get(X_FORWARDED_FOR, &req), "192.0.2.7");
        assert_eq!(get(X_FORWARDED_PROTO, &req), "http");
        assert_eq!(get(X_FORWARDED_HOST, &req), "api.example.com");
        assert_eq!(get("x-request-id", &req), "rid-1");
    }

    #[test]
    fn set_path_keeps_the_query() {
        let mut req = RequestHeader::build("GET", b"/v1/orders/7?x=1&y=2", None).expect("req");
        set_path(&mut req, "/orders/7").expect("set");
        assert_eq!(req.uri.to_string(), "/orders/7?x=1&y=2");
        set_path(&mut req, "").expect("set");
        assert_eq!(req.uri.to_string(), "/?x=1&y=2");
    }
}
