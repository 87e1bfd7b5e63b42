//! What the upstream is told about the original request: `X-Forwarded-For` (appended),
//! `X-Forwarded-Proto`, `X-Forwarded-Host`, `x-request-id` (a client's `Forwarded` is
//! dropped, and so are its `_` spellings of these names).

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_http::RequestHeader;

use crate::request_id::{self, RequestId};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// How many headers [`apply`] may add.
pub const ADDED: usize = 4;

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

/// The names of what the gateway tells the upstream about the client, and `x-real-ip`
/// (which other proxies set and many applications read).
const FORWARDING_NAMES: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "x-real-ip",
    "forwarded",
];

/// Drops a client's header spelled with `_` for `-` of a forwarding name
/// (`x_forwarded_for`): CGI-style upstreams (PHP, WSGI) read it as the same variable
/// (`HTTP_X_FORWARDED_FOR`) as the gateway's own header, so a client could spoof its
/// address or scheme beside it. nginx drops every header with an underscore by default.
/// Costs one look at the names when none has an underscore.
fn drop_cgi_aliases(headers: &mut HeaderMap) {
    use policies::HeaderSink as _;
    headers.remove_matching(&|name: &HeaderName| {
        let name = name.as_str();
        name.contains('_')
            && FORWARDING_NAMES
                .iter()
                .any(|ours| policies::headers::is_cgi_alias(name, ours))
    });
}

/// Sets the forwarding headers on the request to the upstream. `X-Forwarded-For` keeps
/// what earlier proxies wrote, every line of it in order, and appends the client address
/// (as nginx's `$proxy_add_x_forwarded_for` does); the other headers are replaced (this
/// gateway is the edge: a client's own values are not trusted). A client's `Forwarded`
/// (RFC 7239) is dropped: the gateway has no notion of a trusted proxy on the forwarding
/// path (`ip_filter`'s `trusted_proxies` only tells that policy whom to believe), and it
/// does not write `Forwarded` itself. nginx passes `Forwarded` through untouched. Values
/// the client sent (host, request id) are shared, not copied.
pub fn apply(headers: &mut HeaderMap, origin: &Origin<'_>) {
    headers.remove(http::header::FORWARDED);
    drop_cgi_aliases(headers);
    if let Some(ip) = origin.client_ip {
        let mut addr = [0u8; MAX_IP_LEN];
        let addr = write_ip(ip, &mut addr);
        let mut earlier = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .map(HeaderValue::as_bytes)
            .filter(|p| !p.trim_ascii().is_empty());
        let value = match earlier.next() {
            // One allocation for one earlier line: the joined bytes become the value's
            // buffer.
            Some(first) => {
                let mut joined = Vec::with_capacity(first.len() + 2 + addr.len());
                joined.extend_from_slice(first);
                for line in earlier {
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(line);
                }
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(addr);
                HeaderValue::from_maybe_shared(bytes::Bytes::from(joined))
            }
            None => HeaderValue::from_bytes(addr),
        };
        // An address and a value that was a valid header value are a valid value.
        if let Ok(value) = value {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(origin.proto));
    match &origin.host {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
    headers.insert(request_id::NAME, origin.request_id.header_value().clone());
}

/// The longest textual IP address (IPv6 with an embedded IPv4 address).
pub(crate) const MAX_IP_LEN: usize = 45;

/// Writes `ip` as text into `buf`; IPv4 from a table of the 256 octets (it is on every
/// request, twice: the upstream header and the access log).
pub(crate) fn write_ip(ip: IpAddr, buf: &mut [u8; MAX_IP_LEN]) -> &[u8] {
    match ip {
        IpAddr::V4(v4) => {
            let mut len = 0;
            for octet in v4.octets() {
                let (digits, count) = OCTETS[usize::from(octet)];
                buf[len..len + 3].copy_from_slice(&digits);
                len += usize::from(count);
                buf[len] = b'.';
                len += 1;
            }
            &buf[..len - 1]
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let mut out = &mut buf[..];
            // An IPv6 address is at most MAX_IP_LEN characters: it always fits.
            let _ = write!(out, "{v6}");
            let len = MAX_IP_LEN - out.len();
            &buf[..len]
        }
    }
}

/// Each octet's decimal digits, left-aligned, and how many there are.
const OCTETS: [([u8; 3], u8); 256] = octet_table();

const fn octet_table() -> [([u8; 3], u8); 256] {
    let mut table = [([0u8; 3], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let digits = [
            b'0' + (n / 100) as u8,
            b'0' + (n / 10 % 10) as u8,
            b'0' + (n % 10) as u8,
        ];
        let count = if n >= 100 {
            3
        } else if n >= 10 {
            2
        } else {
            1
        };
        let mut text = [0u8; 3];
        let mut i = 0;
        while i < count {
            text[i] = digits[3 - count + i];
            i += 1;
        }
        table[n] = (text, count as u8);
        n += 1;
    }
    table
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

    fn get(name: &HeaderName, headers: &HeaderMap) -> String {
        headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn drops_underscore_spellings_of_the_forwarding_headers() {
        let id = request_id();
        let mut h = HeaderMap::new();
        for name in [
            "x_forwarded_for",
            "x_forwarded_proto",
            "x_real_ip",
            "x_request_id",
        ] {
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_static("6.6.6.6"),
            );
        }
        h.insert("x_other_thing", HeaderValue::from_static("kept"));
        apply(&mut h, &origin("192.0.2.7", &id));
        assert!(
            h.keys()
                .all(|n| !n.as_str().starts_with("x_") || n.as_str() == "x_other_thing"),
            "{h:?}"
        );
        assert_eq!(get(&X_FORWARDED_FOR, &h), "192.0.2.7");
    }

    #[test]
    fn appends_client_ip_to_forwarded_for() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        apply(&mut h, &origin("192.0.2.7", &request_id()));
        assert_eq!(get(&X_FORWARDED_FOR, &h), "10.0.0.1, 192.0.2.7");
        // A blank value from the client is replaced, not extended.
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("  "));
        apply(&mut h, &origin("2001:db8::1", &request_id()));
        assert_eq!(get(&X_FORWARDED_FOR, &h), "2001:db8::1");
    }

    #[test]
    fn keeps_every_forwarded_for_line_in_order() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static(" "));
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("10.0.0.2, 10.0.0.3"),
        );
        apply(&mut h, &origin("192.0.2.7", &request_id()));
        assert_eq!(
            get(&X_FORWARDED_FOR, &h),
            "10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7"
        );
        assert_eq!(h.get_all(X_FORWARDED_FOR).iter().count(), 1);
    }

    #[test]
    fn drops_a_clients_forwarded_header() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::FORWARDED,
            HeaderValue::from_static("for=198.51.100.1"),
        );
        apply(&mut h, &origin("192.0.2.7", &request_id()));
        assert!(!h.contains_key(http::header::FORWARDED));
    }

    #[test]
    fn sets_proto_host_and_request_id() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        h.insert(X_FORWARDED_HOST, HeaderValue::from_static("evil.example"));
        apply(&mut h, &origin("192.0.2.7", &request_id()));
        assert_eq!(get(&X_FORWARDED_FOR, &h), "192.0.2.7");
        assert_eq!(get(&X_FORWARDED_PROTO, &h), "http");
        assert_eq!(get(&X_FORWARDED_HOST, &h), "api.example.com");
        assert_eq!(get(&request_id::NAME, &h), "rid-1");
        let id = request_id();
        let mut no_host = origin("192.0.2.7", &id);
        no_host.host = None;
        apply(&mut h, &no_host);
        assert!(!h.contains_key(X_FORWARDED_HOST));
    }

    #[test]
    fn writes_every_ip_as_display_does() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "192.0.2.7",
            "::1",
            "2001:db8::ff00:42:8329",
            "::ffff:192.0.2.128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            let mut buf = [0u8; MAX_IP_LEN];
            assert_eq!(write_ip(ip, &mut buf), ip.to_string().as_bytes());
        }
        for n in 0..=255u8 {
            let ip = IpAddr::from([n, 0, n, 255 - n]);
            let mut buf = [0u8; MAX_IP_LEN];
            assert_eq!(write_ip(ip, &mut buf), ip.to_string().as_bytes());
        }
    }
}
