//! gRPC beside plain HTTP: which requests are gRPC calls, the gRPC status a refusal of the
//! gateway's own maps to (ADMIN_API.md "HTTP/2, gRPC, compression, cache"), and the
//! `grpc-status` an upstream answered, for the access log.
//!
//! A gRPC client reads its call's outcome from `grpc-status`, not from the HTTP status: an
//! HTTP 401 with a JSON body is to it a broken stream (`UNKNOWN` or `INTERNAL`, the
//! gateway's message lost). So the gateway answers a gRPC call it refuses with HTTP 200 and
//! the status in a trailers-only response, as gRPC servers do.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, StatusCode};
use pingora_http::RequestHeader;

pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The gRPC flavour of a request, from its `content-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `application/grpc`, `application/grpc+proto`, ...
    Grpc,
    /// `application/grpc-web`, `application/grpc-web+proto`
    Web,
    /// `application/grpc-web-text` (base64 frames)
    WebText,
}

impl Flavour {
    /// The `content-type` of an answer to a call of this flavour.
    pub fn content_type(self) -> &'static str {
        match self {
            Flavour::Grpc => "application/grpc",
            Flavour::Web => "application/grpc-web",
            Flavour::WebText => "application/grpc-web-text",
        }
    }
}

/// The request's gRPC flavour; `None` for every other request. One prefix compare on the
/// `content-type`, if there is one.
pub fn flavour(req: &RequestHeader) -> Option<Flavour> {
    let value = req.headers.get(CONTENT_TYPE)?.as_bytes();
    const PREFIX: &[u8] = b"application/grpc";
    if value.len() < PREFIX.len() || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let rest = &value[PREFIX.len()..];
    // A subtype ends there, or goes on with `+codec` or `;parameters`: `grpc-webx` is none.
    let is = |p: &[u8]| {
        rest.len() >= p.len()
            && rest[..p.len()].eq_ignore_ascii_case(p)
            && matches!(rest.get(p.len()), None | Some(b'+' | b';'))
    };
    if is(b"-web-text") {
        Some(Flavour::WebText)
    } else if is(b"-web") {
        Some(Flavour::Web)
    } else if is(b"") {
        Some(Flavour::Grpc)
    } else {
        None
    }
}

/// The gRPC status code for a refusal or failure of the gateway with HTTP `status`: the
/// contract's table (and 431, metadata too large, as gRPC itself answers it), then gRPC's
/// own HTTP mapping (`http-grpc-status-mapping.md`) for the rest: 400 INTERNAL, anything
/// else UNKNOWN.
pub fn code(status: StatusCode) -> u16 {
    match status.as_u16() {
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 12,            // UNIMPLEMENTED
        413 | 429 | 431 => 8, // RESOURCE_EXHAUSTED
        502 | 503 => 14,      // UNAVAILABLE
        504 => 4,             // DEADLINE_EXCEEDED
        400 => 13,            // INTERNAL
        _ => 2,               // UNKNOWN
    }
}

/// `grpc-message` as gRPC writes it: percent-encoded outside printable ASCII and `%`.
pub fn encode_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `grpc-status` in `headers` (an answer's header, or its trailers).
pub fn status(headers: &HeaderMap) -> Option<u16> {
    std::str::from_utf8(headers.get(GRPC_STATUS)?.as_bytes())
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(value: &str) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/pkg.Svc/Call", None).expect("request");
        req.insert_header(CONTENT_TYPE, value).expect("header");
        req
    }

    #[test]
    fn knows_grpc_requests_by_content_type() {
        for (value, expected) in [
            ("application/grpc", Some(Flavour::Grpc)),
            ("application/grpc+proto", Some(Flavour::Grpc)),
            ("Application/GRPC; charset=x", Some(Flavour::Grpc)),
            ("application/grpc-web", Some(Flavour::Web)),
            ("application/grpc-web+proto", Some(Flavour::Web)),
            ("application/grpc-web-text", Some(Flavour::WebText)),
            ("application/grpc-web-text+proto", Some(Flavour::WebText)),
            ("application/grpc-web;charset=x", Some(Flavour::Web)),
            ("application/grpcx", None),
            ("application/grpc-webx", None),
            ("application/grpc-web-textfoo", None),
            ("application/json", None),
            ("application/grp", None),
        ] {
            assert_eq!(flavour(&with_type(value)), expected, "{value}");
        }
        let plain = RequestHeader::build("GET", b"/", None).expect("request");
        assert_eq!(flavour(&plain), None);
    }

    #[test]
    fn maps_refusals_as_the_contract_says() {
        for (http, grpc) in [
            (401, 16),
            (403, 7),
            (404, 12),
            (413, 8),
            (429, 8),
            (431, 8),
            (502, 14),
            (503, 14),
            (504, 4),
            (400, 13),
            (500, 2),
        ] {
            assert_eq!(code(StatusCode::from_u16(http).expect("status")), grpc);
        }
    }

    #[test]
    fn percent_encodes_messages() {
        assert_eq!(encode_message("no route 100%"), "no route 100%25");
        assert_eq!(encode_message("clé\n"), "cl%C3%A9%0A");
    }

    #[test]
    fn reads_the_status_of_an_answer() {
        let mut headers = HeaderMap::new();
        assert_eq!(status(&headers), None);
        headers.insert(GRPC_STATUS, "14".parse().expect("value"));
        assert_eq!(status(&headers), Some(14));
        headers.insert(GRPC_STATUS, "x".parse().expect("value"));
        assert_eq!(status(&headers), None);
    }
}
