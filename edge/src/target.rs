//! The request target as the gateway reads it: brought to one canonical form before
//! routing (`routing::canonical` for the path), absolute-form turned into origin-form with
//! its host in `Host`, and anything that is not a path refused.

use pingora_core::protocols::http::authority::{raw_target_authority, RawTargetAuthority};
use pingora_proxy::Session;

use crate::framing::is_plain_host;
use crate::respond::Rejection;
use crate::routing;

/// Replaces the request's path by its canonical form (`routing::canonical`), so that the
/// router, the policies, the access log and the upstream all see the same path; the query
/// is kept byte for byte. A path with no canonical form is refused (400), and so is a
/// target that is not a path. An absolute-form target (`http://host/p`) goes on in
/// origin-form with its host in `Host`: RFC 9112 3.2.2 makes that host the request's
/// (Pingora has already refused a `Host` that differs from it), so the router matches the
/// host the upstream will serve, also when an HTTP/1.0 request has no `Host`. nginx picks
/// its `server` by that host too.
pub fn canonicalize(session: &mut Session) -> Result<(), Rejection> {
    let raw = session.req_header().raw_path();
    let (path, query, host) = if raw.first() == Some(&b'/') {
        let (path, query) = split_query(raw);
        (path, query, None)
    } else if raw == b"*" {
        // Asterisk-form (`OPTIONS *`) matches no route.
        return Ok(());
    } else if let RawTargetAuthority::Absolute {
        authority,
        path_and_query,
        ..
    } = raw_target_authority(raw)
    {
        if !is_plain_host(authority) {
            return Err(Rejection::bad_request(
                "the request target's host is not valid",
            ));
        }
        let (path, query) = split_query(path_and_query);
        let path: &[u8] = if path.is_empty() { b"/" } else { path };
        (path, query, Some(authority))
    } else {
        // Neither origin-form, absolute-form nor `*` (`admin/x`, `foo:/x`, `?x`): there is
        // no path to judge, and Pingora would route it as `/` and send the bytes as they
        // came. nginx answers 400.
        return Err(Rejection::bad_request("the request target is not a path"));
    };
    let canonical =
        routing::canonical_path(path).map_err(|e| Rejection::bad_request(e.to_string()))?;
    if canonical.is_none() && host.is_none() {
        return Ok(());
    }
    let mut target = canonical.map_or_else(|| path.to_vec(), String::into_bytes);
    target.extend_from_slice(query);
    let host = host
        .map(http::HeaderValue::from_bytes)
        .transpose()
        .map_err(|_| Rejection::bad_request("the request target's host is not valid"))?;
    let req = session.req_header_mut();
    req.set_raw_path(&target)
        .map_err(|_| Rejection::bad_request("the request target is not valid"))?;
    if let Some(host) = host {
        req.insert_header(http::header::HOST, host)
            .map_err(|_| Rejection::bad_request("the request target's host is not valid"))?;
    }
    Ok(())
}

/// `target` split before its `?` (the query keeps it).
fn split_query(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|b| *b == b'?') {
        Some(q) => target.split_at(q),
        None => (target, b""),
    }
}
