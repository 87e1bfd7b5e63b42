//! Security headers on every console answer: no framing (clickjacking), no content
//! sniffing, a Content Security Policy that allows the console's own stylesheet and
//! script only, and `Cache-Control: no-store` unless the answer chose its own caching
//! (the assets): pages carry CSRF tokens and config.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// Only the console's own files; no inline script. `style-src-attr 'unsafe-inline'` lets
/// the usage page size its meters with a `style` attribute (no script can run from one).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `axum::middleware::map_response` over the console's routes.
pub(crate) async fn add_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
