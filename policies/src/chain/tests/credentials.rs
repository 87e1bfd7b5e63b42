//! Credentials: `hide_credentials` of key_auth, jwt and basic_auth, and repeated credentials.

use std::collections::BTreeMap;

use super::*;
use crate::spec::{HeaderEditsSpec, HeadersSpec, JwtSpec};

fn key_auth(query: Option<&str>, hide: Option<bool>) -> PolicySpec {
    PolicySpec::KeyAuth(KeyAuthSpec {
        header: None,
        query: query.map(Into::into),
        hide_credentials: hide,
    })
}

fn upstream_headers(c: &Chain, client: &[(&str, &str)]) -> HeaderMap {
    let mut h = headers(client);
    c.apply_request_headers(&mut h);
    h
}

#[test]
fn key_auth_hides_the_key_header_and_parameter_only_when_told() {
    let counters = Counters::new();
    let shown = chain(vec![key_auth(Some("apikey"), None)], &counters);
    let sent = [("x-api-key", "tg_acme"), ("accept", "*/*")];
    assert_eq!(
        upstream_headers(&shown, &sent).get("x-api-key"),
        Some(&HeaderValue::from_static("tg_acme"))
    );
    assert_eq!(shown.upstream_query("a=1&apikey=tg_acme"), None);

    let hidden = chain(vec![key_auth(Some("apikey"), Some(true))], &counters);
    let h = upstream_headers(&hidden, &sent);
    assert!(h.get("x-api-key").is_none());
    assert_eq!(h.get("accept"), Some(&HeaderValue::from_static("*/*")));
    assert_eq!(
        hidden
            .upstream_query("a=%2f1&apikey=tg_acme&apikey2=x&&b")
            .as_deref(),
        Some("a=%2f1&apikey2=x&&b")
    );
    assert_eq!(hidden.upstream_query("a=1&b=2"), None);
    assert_eq!(hidden.upstream_query("apikey=tg_acme").as_deref(), Some(""));
}

#[test]
fn basic_auth_hides_authorization_by_default_and_jwt_only_when_told() {
    let counters = Counters::new();
    let sent = [("authorization", "Basic YWxpY2U6czNjcmV0")];
    let basic = |hide| {
        chain(
            vec![PolicySpec::BasicAuth(BasicAuthSpec {
                hide_credentials: hide,
            })],
            &counters,
        )
    };
    assert!(upstream_headers(&basic(None), &sent)
        .get("authorization")
        .is_none());
    assert!(upstream_headers(&basic(Some(false)), &sent)
        .get("authorization")
        .is_some());
    let jwt = |hide| {
        chain(
            vec![PolicySpec::Jwt(JwtSpec {
                issuers: vec![],
                hide_credentials: hide,
            })],
            &counters,
        )
    };
    let bearer = [("authorization", "Bearer a.b.c")];
    assert!(upstream_headers(&jwt(None), &bearer)
        .get("authorization")
        .is_some());
    assert!(upstream_headers(&jwt(Some(true)), &bearer)
        .get("authorization")
        .is_none());
}

#[test]
fn a_header_policy_may_set_the_upstreams_own_authorization_after_hiding() {
    let counters = Counters::new();
    let c = chain(
        vec![
            PolicySpec::Headers(HeadersSpec {
                request: HeaderEditsSpec {
                    set: BTreeMap::from([(
                        "authorization".to_owned(),
                        "Bearer upstream-secret".to_owned(),
                    )]),
                    ..Default::default()
                },
                response: HeaderEditsSpec::default(),
            }),
            PolicySpec::BasicAuth(BasicAuthSpec::default()),
        ],
        &counters,
    );
    let h = upstream_headers(&c, &[("authorization", "Basic YWxpY2U6czNjcmV0")]);
    let values: Vec<_> = h.get_all("authorization").iter().collect();
    assert_eq!(
        values,
        [&HeaderValue::from_static("Bearer upstream-secret")]
    );
}

#[test]
fn repeated_credentials_are_refused_with_400() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let keyed = chain(vec![key_auth(Some("apikey"), None)], &counters);
    let two_keys = headers(&[("x-api-key", "tg_acme"), ("x-api-key", "tg_eve")]);
    assert!(is(
        &run(&keyed, &dir, Method::GET, "/", &two_keys, "10.0.0.1").0,
        (400, "repeated api key")
    ));
    let no_header = HeaderMap::new();
    assert!(is(
        &run(
            &keyed,
            &dir,
            Method::GET,
            "/?apikey=tg_acme&apikey=tg_eve",
            &no_header,
            "10.0.0.1"
        )
        .0,
        (400, "repeated api key")
    ));
    // Even with a valid header: the upstream might read the parameters.
    assert!(is(
        &run(
            &keyed,
            &dir,
            Method::GET,
            "/?apikey=a&apikey=b",
            &with_key("tg_acme"),
            "10.0.0.1"
        )
        .0,
        (400, "repeated api key")
    ));
    let two_auth = headers(&[
        ("authorization", "Basic YWxpY2U6czNjcmV0"),
        ("authorization", "Basic bWFsbG9yeTp4"),
    ]);
    let basic = chain(
        vec![PolicySpec::BasicAuth(BasicAuthSpec::default())],
        &counters,
    );
    assert!(is(
        &run(&basic, &dir, Method::GET, "/", &two_auth, "10.0.0.1").0,
        (400, "repeated authorization header")
    ));
    let jwt = chain(vec![PolicySpec::Jwt(JwtSpec::default())], &counters);
    let two_bearers = headers(&[
        ("authorization", "Bearer a.b.c"),
        ("authorization", "Bearer d.e.f"),
    ]);
    let (o, state, _) = run(&jwt, &dir, Method::GET, "/", &two_bearers, "10.0.0.1");
    assert!(is(&o, (400, "repeated authorization header")), "{o:?}");
    assert_eq!(state.consumer_id(), None);
}
