//! Cache keys: which stored answer a request may get. The primary key frames (length
//! prefixed, so no two requests share one by accident) the key version, the route id, the
//! route's upstream id (a route moved to another upstream starts empty), the scheme (an
//! answer to plain HTTP, a redirect to HTTPS say, is never one to HTTPS: RFC 9111 4 keys on
//! the whole target URI), the host (lowercased), the path and the identified consumer (on a
//! route that identifies callers, each gets answers of its own, as Kong's proxy-cache
//! does), then the route's extra parts (`query`, `header:NAME`, `consumer`), each tagged.
//! The route id is also the key's user tag (purges by route), and the path rides along for
//! purges by path. GET and HEAD share their key.

use pingora_cache::CacheKey;
use pingora_http::RequestHeader;
use policies::{Cache, CacheKeyPart, RequestState};

use super::store::EntryPath;

/// Changes when the layout below changes, so that old keys are never read as new ones.
const KEY_VERSION: &[u8] = b"tollgate-cache-2";

/// The cache key of `req` (which came over TLS when `https`) on `route` with the route's
/// cache settings.
pub fn build(
    route: &str,
    upstream: &str,
    cache: &Cache,
    req: &RequestHeader,
    https: bool,
    state: &RequestState,
) -> CacheKey {
    let path = req.uri.path();
    let host = crate::forwarded::request_host(req).unwrap_or("");
    let mut primary =
        Vec::with_capacity(64 + route.len() + upstream.len() + host.len() + path.len());
    frame(&mut primary, KEY_VERSION);
    frame(&mut primary, route.as_bytes());
    frame(&mut primary, upstream.as_bytes());
    frame(&mut primary, if https { b"https" } else { b"http" });
    let start = primary.len();
    frame(&mut primary, host.as_bytes());
    primary[start + 4..].make_ascii_lowercase();
    frame(&mut primary, path.as_bytes());
    frame(&mut primary, state.consumer_id().unwrap_or("").as_bytes());
    for part in &cache.key {
        match part {
            CacheKeyPart::Query => {
                primary.push(b'q');
                frame(&mut primary, req.uri.query().unwrap_or("").as_bytes());
            }
            CacheKeyPart::Consumer => {
                primary.push(b'c');
                frame(&mut primary, state.consumer_id().unwrap_or("").as_bytes());
            }
            CacheKeyPart::Header(name) => {
                primary.push(b'h');
                frame(&mut primary, name.as_str().as_bytes());
                let values = req.headers.get_all(name);
                let count = values.iter().count();
                primary.extend_from_slice(&(count as u32).to_le_bytes());
                for v in values {
                    frame(&mut primary, v.as_bytes());
                }
            }
        }
    }
    // Pingora hashes the primary key (blake2) each time it asks for its hash, three or
    // four times a request: hash it once.
    let hash = pingora_cache::key::hash_key(&primary);
    let mut key = CacheKey::new(primary, route);
    key.set_primary_bin_override(hash);
    key.extensions.insert(EntryPath(path.into()));
    key
}

fn frame(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_cache::key::CacheHashKey;

    fn req(uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", uri.as_bytes(), None).expect("request");
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).expect("header");
        }
        r
    }

    fn cache(key: &[&str]) -> Cache {
        let spec: policies::CacheSpec =
            serde_json::from_value(serde_json::json!({ "key": key })).expect("spec");
        Cache::compile(&spec).expect("cache")
    }

    fn bin(route: &str, c: &Cache, r: &RequestHeader) -> [u8; 16] {
        build(route, "up", c, r, false, &RequestState::default()).primary_bin()
    }

    #[test]
    fn plain_http_and_https_never_share_an_answer() {
        let c = cache(&[]);
        let r = req("/p", &[("host", "a.example")]);
        let state = RequestState::default();
        let plain = build("r", "up", &c, &r, false, &state).primary_bin();
        let tls = build("r", "up", &c, &r, true, &state).primary_bin();
        assert_ne!(plain, tls);
    }

    #[test]
    fn query_is_part_of_the_key_only_when_asked() {
        let plain = cache(&[]);
        let by_query = cache(&["query"]);
        let (a, b) = (req("/p?x=1", &[]), req("/p?x=2", &[]));
        assert_eq!(bin("r", &plain, &a), bin("r", &plain, &b));
        assert_ne!(bin("r", &by_query, &a), bin("r", &by_query, &b));
    }

    #[test]
    fn route_host_and_header_parts_tell_requests_apart() {
        let c = cache(&["header:accept-language"]);
        let a = req("/p", &[("host", "A.example"), ("accept-language", "fr")]);
        let b = req("/p", &[("host", "a.example"), ("accept-language", "de")]);
        let a2 = req("/p", &[("host", "a.example"), ("accept-language", "fr")]);
        assert_ne!(bin("r1", &c, &a), bin("r2", &c, &a));
        assert_ne!(bin("r", &c, &a), bin("r", &c, &b));
        assert_eq!(
            bin("r", &c, &a),
            bin("r", &c, &a2),
            "host case does not matter"
        );
    }

    #[test]
    fn framing_keeps_parts_apart() {
        let c = cache(&[]);
        let a = req("/bc", &[("host", "a")]);
        let b = req("/c", &[("host", "a/b")]);
        assert_ne!(bin("r", &c, &a), bin("r", &c, &b));
    }
}
