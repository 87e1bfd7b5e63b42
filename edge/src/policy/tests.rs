use super::*;
use http::HeaderName;
use pingora_http::ResponseHeader;
use policies::{HeaderEditsSpec, HeadersSpec, KeyAuthSpec, RequestSizeSpec};
use prometheus::Opts;

fn request(uri: &str) -> RequestHeader {
    let mut req = RequestHeader::build("POST", uri.as_bytes(), None).expect("request");
    req.insert_header("X-Api-Key", "tg_secret").expect("header");
    req
}

#[test]
fn view_borrows_method_path_query_and_headers_from_the_request() {
    let req = request("/v1/orders?apikey=abc&x=1");
    let peer: IpAddr = "192.0.2.7".parse().expect("ip");
    let v = view(&req, Some(peer));
    assert_eq!(v.method, &http::Method::POST);
    assert_eq!(v.path, "/v1/orders");
    assert_eq!(v.query, Some("apikey=abc&x=1"));
    assert_eq!(v.query_param("apikey"), Some("abc"));
    assert_eq!(
        v.header_str(&HeaderName::from_static("x-api-key")),
        Some("tg_secret")
    );
    assert_eq!((v.client_ip, v.peer_ip), (peer, peer));
    // Nothing was copied: the view points into the request.
    assert!(std::ptr::eq(v.headers, &req.headers));
    assert!(std::ptr::eq(v.path.as_ptr(), req.uri.path().as_ptr()));
}

#[test]
fn view_without_a_query_or_peer() {
    let req = request("/plain");
    let v = view(&req, None);
    assert_eq!(v.query, None);
    assert_eq!(v.client_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
}

#[test]
fn the_chain_edits_the_response_headers() {
    let counters = Counters::new();
    let spec = PolicySpec::Headers(HeadersSpec {
        request: HeaderEditsSpec::default(),
        response: HeaderEditsSpec {
            set: [("x-frame-options".to_owned(), "DENY".to_owned())].into(),
            add: Default::default(),
            remove: vec!["server".to_owned()],
        },
    });
    let chain = Chain::compile("r", &[spec], &counters).expect("chain");
    let mut resp = ResponseHeader::build(200, None).expect("response");
    resp.insert_header("Server", "upstream/1.0")
        .expect("header");
    crate::headers::edit_response(&mut resp, chain.response_headers_added(), |h| {
        chain.on_response(&policies::RequestState::default(), h)
    });
    assert!(!resp.headers.contains_key("server"));
    assert_eq!(
        resp.headers.get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
}

#[test]
fn counts_streamed_bodies_until_over_the_limit() {
    let mut seen = 0;
    assert!(!body_over_limit(&mut seen, 6, 10));
    assert!(!body_over_limit(&mut seen, 4, 10));
    assert!(body_over_limit(&mut seen, 1, 10));
    assert_eq!(seen, 11);
}

fn rejections() -> IntCounterVec {
    IntCounterVec::new(Opts::new("rej", "rej"), &["route", "policy", "status"]).expect("vec")
}

#[test]
fn routes_without_policies_compile_to_nothing() {
    let compiled = RoutePolicies::compile("r", &[], &Counters::new(), &rejections());
    assert!(compiled.expect("no problems").is_none());
}

#[test]
fn counts_rejections_by_route_policy_and_status_but_not_preflights() {
    let vec = rejections();
    let specs = [
        PolicySpec::KeyAuth(KeyAuthSpec::default()),
        PolicySpec::RequestSize(RequestSizeSpec { max_bytes: 5 }),
    ];
    let p = RoutePolicies::compile("orders", &specs, &Counters::new(), &vec)
        .expect("valid")
        .expect("a chain");
    assert_eq!(p.max_body, Some(5));
    p.count_rejection("key_auth", StatusCode::UNAUTHORIZED);
    p.count_rejection("key_auth", StatusCode::UNAUTHORIZED);
    p.count_rejection("quota", StatusCode::TOO_MANY_REQUESTS);
    p.count_rejection("cors", StatusCode::NO_CONTENT);
    let get = |policy: &str, status: &str| vec.with_label_values(&["orders", policy, status]).get();
    assert_eq!(get("key_auth", "401"), 2);
    assert_eq!(get("quota", "429"), 1);
    assert_eq!(get("cors", "204"), 0);
}
