//! `compression`: which answers a route encodes, for which clients, and the header edits
//! that go with it; the encoding itself is `compress/encoder.rs`, the choice of coding
//! `compress/negotiate.rs`.
//!
//! An answer is encoded when all hold: the client speaks HTTP/1.1 or HTTP/2 (as nginx's
//! `gzip_http_version 1.1`: an HTTP/1.0 client gets no chunked coding), the request is no
//! gRPC call or upgrade, the status is final and has a body (not 1xx, 204, 206, 304), the
//! upstream set no `Content-Encoding` (never twice) and no `Cache-Control: no-transform`,
//! the type is one worth compressing ([`is_compressible`]), the length, when known, is at
//! least `min_bytes` (an answer without a length is streamed, and usually big), and the
//! client accepts one of the route's codings. Then `Content-Encoding` is set,
//! `Content-Length` removed (the body is chunked), a strong `ETag` made weak (the bytes
//! differ from the identity ones) and `Accept-Ranges` removed (ranges of the encoded body
//! are not served).
//!
//! `Vary: Accept-Encoding` is added (merged into an existing `Vary`) to every answer whose
//! coding depended on `Accept-Encoding`: the encoded ones and those left identity because
//! the client accepted no coding. A `304` gets the `Vary` (and the weak `ETag` when the
//! client accepts a coding) its `200` would have had. A `HEAD` gets the headers its `GET`
//! would get.

use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, TRANSFER_ENCODING, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use policies::{Coding, Compression};

mod budget;
mod encoder;
mod negotiate;

pub use budget::{Reservation, BUDGET_BYTES};
pub use encoder::Encoder;
pub use negotiate::choose;

/// At most how many headers [`apply`] adds.
pub const HEADERS_ADDED: usize = 3;

/// What the request tells about compressing its answer, read before the response header
/// is edited.
pub struct Request<'a> {
    pub method: &'a Method,
    pub version: Version,
    pub headers: &'a HeaderMap,
    /// A gRPC (or gRPC-Web) call or a protocol upgrade: never encoded.
    pub is_grpc_or_upgrade: bool,
}

/// Decides for the answer with `status` and headers `h` and edits `h` accordingly.
/// Returns the coding the body must be encoded with and its share of the encoders' memory
/// budget (`None` also for a `HEAD`, whose headers are edited as its `GET`'s would be, for
/// any answer without a body, and when the budget is spent: the answer goes identity).
pub fn apply(
    settings: &Compression,
    req: &Request<'_>,
    status: StatusCode,
    h: &mut HeaderMap,
) -> Option<(Coding, Option<Reservation>)> {
    if req.is_grpc_or_upgrade
        || !matches!(req.version, Version::HTTP_11 | Version::HTTP_2)
        || status.is_informational()
        || matches!(status.as_u16(), 204 | 206)
        || is_encoded(h)
        || has_no_transform(h)
    {
        return None;
    }
    if status == StatusCode::NOT_MODIFIED {
        // A 304 carries no type or length: whether its 200 was encoded shows only in the
        // validator the client sends back. One that names the weak form of this strong
        // ETag came from an encoded 200, whose ETag and Vary the 304 must repeat (RFC 9110
        // 15.4.5); any other 304 is left as the upstream sent it (weakening it there made
        // a cache's stored strong validator weak for good).
        if names_weak_form_of_etag(req.headers, h) {
            merge_vary(h);
            weaken_etag(h);
        }
        return None;
    }
    if h.contains_key(CONTENT_RANGE) || !h.get(CONTENT_TYPE).is_some_and(is_compressible) {
        return None;
    }
    let too_small = h
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        // An empty body is never encoded (Pingora may not run the body filter that would
        // write the coding's framing), whatever `min_bytes` says.
        .is_some_and(|len| len == 0 || len < settings.min_bytes());
    if too_small {
        return None;
    }
    merge_vary(h);
    let coding = choose(req.headers, settings.algorithms())?;
    // A HEAD has no body to encode, so takes nothing from the budget.
    let reservation = if req.method == Method::HEAD {
        None
    } else {
        Some(Reservation::take(coding)?)
    };
    h.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.as_str()));
    h.remove(CONTENT_LENGTH);
    h.remove(ACCEPT_RANGES);
    if req.version == Version::HTTP_11 {
        // Pingora chunks an answer without a length only when it sees none before the
        // response filters (`proxy_h1.rs`); HTTP/2 framing drops this field itself.
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
    weaken_etag(h);
    Some((coding, reservation))
}

/// Whether the upstream encoded the body already (any `Content-Encoding` but `identity`).
fn is_encoded(h: &HeaderMap) -> bool {
    h.get_all(CONTENT_ENCODING).iter().any(|v| {
        v.to_str().map_or(true, |v| {
            v.split(',')
                .any(|c| !c.trim().is_empty() && !c.trim().eq_ignore_ascii_case("identity"))
        })
    })
}

/// `Cache-Control: no-transform` (RFC 9111 5.2.2.6): no intermediary may change the body.
fn has_no_transform(h: &HeaderMap) -> bool {
    h.get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

/// Media types worth compressing: text, and the structured or script types that are text
/// underneath (JSON, XML, JavaScript, SVG, WebAssembly, fonts without their own
/// compression). Images, video, archives and `application/octet-stream` are already
/// compressed or unknown.
pub fn is_compressible(content_type: &HeaderValue) -> bool {
    const TYPES: [&str; 16] = [
        "application/json",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/xml",
        "application/wasm",
        "application/x-ndjson",
        "application/yaml",
        "application/x-yaml",
        "application/graphql",
        "application/x-www-form-urlencoded",
        "image/svg+xml",
        "image/x-icon",
        "font/ttf",
        "font/otf",
        "application/vnd.ms-fontobject",
    ];
    let Ok(value) = content_type.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("text")
        || (kind.eq_ignore_ascii_case("application")
            && (ends_with_ignore_case(subtype, "+json") || ends_with_ignore_case(subtype, "+xml")))
        || TYPES.iter().any(|t| t.eq_ignore_ascii_case(essence))
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len() && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// Adds `Accept-Encoding` to `Vary` unless it is there already (or `Vary: *`); an existing
/// `Vary` becomes one field with both.
fn merge_vary(h: &mut HeaderMap) {
    let mut existing = String::new();
    for value in h.get_all(VARY) {
        let Ok(value) = value.to_str() else {
            // Not text: kept as it is, beside a field of ours.
            h.append(VARY, HeaderValue::from_static("Accept-Encoding"));
            return;
        };
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" || name.eq_ignore_ascii_case("accept-encoding") {
                return;
            }
            if !existing.is_empty() {
                existing.push_str(", ");
            }
            existing.push_str(name);
        }
    }
    if existing.is_empty() {
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        return;
    }
    existing.push_str(", Accept-Encoding");
    if let Ok(value) = HeaderValue::from_str(&existing) {
        h.insert(VARY, value);
    }
}

/// A strong `ETag` `"x"` becomes `W/"x"`: the encoded bytes are not the identity ones.
/// Whether the request's `If-None-Match` lists `W/` + the answer's strong `ETag`.
fn names_weak_form_of_etag(request: &HeaderMap, h: &HeaderMap) -> bool {
    let Some(etag) = h.get(ETAG).map(HeaderValue::as_bytes) else {
        return false;
    };
    if etag.starts_with(b"W/") {
        return false;
    }
    request
        .get_all(http::header::IF_NONE_MATCH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag.strip_prefix(b"W/") == Some(etag))
}

fn weaken_etag(h: &mut HeaderMap) {
    let Some(etag) = h.get(ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"W/") {
        return;
    }
    let mut weak = Vec::with_capacity(etag.len() + 2);
    weak.extend_from_slice(b"W/");
    weak.extend_from_slice(etag.as_bytes());
    if let Ok(value) = HeaderValue::from_bytes(&weak) {
        h.insert(ETAG, value);
    }
}

#[cfg(test)]
#[path = "compress/tests.rs"]
mod tests;
