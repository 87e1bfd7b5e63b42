//! The order policies run in, whatever the order written.

use super::*;

fn limit(requests: u32, key: &str) -> PolicySpec {
    PolicySpec::RateLimit(RateLimitSpec {
        requests,
        per: Per::Minute,
        burst: None,
        key: Some(key.into()),
    })
}

#[test]
fn limits_by_address_count_wrong_credentials_before_they_are_checked() {
    let counters = Counters::new();
    let dir = directory(&counters);
    // Written after the auth policy, as people do.
    let c = chain(
        vec![PolicySpec::KeyAuth(KeyAuthSpec::default()), limit(3, "ip")],
        &counters,
    );
    let guesses: Vec<u16> = (0..6)
        .map(|i| {
            let guess = with_key(&format!("tg_guess_{i}"));
            run(&c, &dir, Method::GET, "/", &guess, "10.0.0.1").0 .0
        })
        .collect();
    assert_eq!(guesses, [401, 401, 401, 429, 429, 429]);
    // The limit holds for the right key too, from that address, and not from another.
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_acme"), "10.0.0.1").0,
        (429, "rate limit exceeded")
    ));
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_acme"), "10.0.0.2").0,
        OK
    ));
}

#[test]
fn route_and_header_limits_run_before_auth_and_consumer_limits_after() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(
        vec![
            limit(1, "consumer"),
            PolicySpec::Acl(AclSpec {
                allow: vec!["partners".into()],
                deny: vec![],
            }),
            PolicySpec::KeyAuth(KeyAuthSpec::default()),
            limit(5, "header:x-tenant"),
            limit(100, "route"),
        ],
        &counters,
    );
    let kinds: Vec<&str> = c.policies().iter().map(Policy::kind).collect();
    assert_eq!(
        kinds,
        ["rate_limit", "rate_limit", "key_auth", "acl", "rate_limit"]
    );
    assert!(c.policies()[..2]
        .iter()
        .all(|p| matches!(p, Policy::RateLimit(r) if !r.needs_consumer())));
    assert!(matches!(&c.policies()[4], Policy::RateLimit(r) if r.needs_consumer()));
    // The consumer limit counts the consumer (it ran after auth), from any address.
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_acme"), "10.0.0.1").0,
        OK
    ));
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_acme"), "10.0.0.2").0,
        (429, "rate limit exceeded")
    ));
    // A refused consumer (ACL) uses none of its limit: ACL runs before it.
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_bob"), "10.0.0.3").0,
        (403, "consumer not allowed")
    ));
}
