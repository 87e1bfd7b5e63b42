//! What the upstream is told about the original request: `X-Forwarded-For` (appended),
//! `X-Forwarded-Proto`, `X-Forwarded-Host`, `x-request-id`, and the path after
//! `strip_prefix`.

use std::io::Write;
use std::net::IpAddr;

use http::{HeaderValue, Uri};
use pingora_http::RequestHeader;

use crate::request_id::{self, RequestId};

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// What the gateway knows of the client side of a request.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub client_ip: Option<IpAddr>,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The `Host` the client asked for.
    pub host: Option<HeaderValue>,
    pub request_id: &'a RequestId,
}

/// Sets the forwarding headers on the request to the upstream. `X-Forwarded-For` keeps
/// what earlier proxies wrote and appends the client address; the other headers are
/// replaced (this gateway is the edge: a client's own values are not trusted). Values the
/// client sent (host, request id) are shared, not copied.
pub fn apply(req: &mut RequestHeader, origin: &Origin<'_>) -> pingora_core::Result<()> {
    if let Some(ip) = origin.client_ip {
        let mut buf = [0u8; 128];
        let mut out = &mut buf[..];
        if let Some(prev) = req
            .headers
            .get(X_FORWARDED_FOR)
            .map(HeaderValue::as_bytes)
            .filter(|p| !p.trim_ascii().is_empty())
        {
            let mut value = Vec::with_capacity(prev.len() + 48);
            value.extend_from_slice(prev);
            let _ = write!(value, ", {ip}");
            req.insert_header(X_FORWARDED_FOR, value)?;
        } else {
            // An address is at most 45 bytes: it always fits.
            let _ = write!(out, "{ip}");
            let len = 128 - out.len();
            req.insert_header(X_FORWARDED_FOR, &buf[..len])?;
        }
    }
    req.insert_header(X_FORWARDED_PROTO, HeaderValue::from_static(origin.proto))?;
    match &origin.host {
        Some(host) => req.insert_header(X_FORWARDED_HOST, host.clone())?,
        None => {
            req.remove_header(X_FORWARDED_HOST);
        }
    }
    req.insert_header(request_id::HEADER, origin.request_id.header_value().clone())?;
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

/// The host the client asked for as a header value: the `Host` header shared (no copy),
/// else the URI's authority (HTTP/2's `:authority`).
pub fn request_host_value(req: &RequestHeader) -> Option<HeaderValue> {
    match req.headers.get(http::header::HOST) {
        Some(host) => Some(host.clone()),
        None => req
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    }
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

    static HOST: HeaderValue = HeaderValue::from_static("api.example.com");

    fn request_id() -> RequestId {
        crate::request_id::RequestIds::new()
            .keep_or_generate(Some(&HeaderValue::from_static("rid-1")))
    }

    fn origin<'a>(ip: &str, id: &'a RequestId) -> Origin<'a> {
        Origin {
            client_ip: Some(ip.parse().expect("ip")),
            proto: "http",
            host: Some(HOST.clone()),
            request_id: id,
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
        apply(&mut req, &origin("192.0.2.7", &request_id())).expect("apply");
        assert_eq!(get(X_FORWARDED_FOR, &req), "10.0.0.1, 192.0.2.7");
    }

    #[test]
    fn sets_proto_host_and_request_id() {
        let mut req = RequestHeader::build("GET", b"/a", None).expect("req");
        req.insert_header(X_FORWARDED_PROTO, "https").expect("hdr");
        apply(&mut req, &origin("192.0.2.7", &request_id())).expect("apply");
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
