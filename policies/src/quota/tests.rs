use super::*;
use crate::calendar::days_from_civil;
use http::StatusCode;

fn at(y: i64, m: u32, d: u32, secs: u64) -> Duration {
    Duration::from_secs(days_from_civil(y, m, d) as u64 * 86_400 + secs)
}

fn spec(requests: u64, per: QuotaPeriod) -> QuotaSpec {
    QuotaSpec { requests, per }
}

#[test]
fn allows_exactly_n_then_429_until_next_utc_day() {
    let quotas = Quotas::new();
    let quota = quotas.compile("acme", &spec(3, QuotaPeriod::Day));
    let noon = at(2026, 11, 27, 12 * 3600);
    for left in [2, 1, 0] {
        assert_eq!(quota.check(noon).map(|s| s.remaining), Ok(left));
    }
    let r = quota.check(noon).expect_err("4th request is over quota");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.policy, "quota");
    assert_eq!(
        r.header("retry-after"),
        Some(&http::HeaderValue::from(12 * 3600u64))
    );
    assert!(quota.check(at(2026, 11, 27, 86_399)).is_err());
    assert_eq!(quota.check(at(2026, 11, 28, 0)).map(|s| s.remaining), Ok(2));
}

#[test]
fn monthly_quota_resets_on_the_first() {
    let quotas = Quotas::new();
    let quota = quotas.compile("acme", &spec(1, QuotaPeriod::Month));
    assert!(quota.check(at(2026, 2, 1, 0)).is_ok());
    assert!(quota.check(at(2026, 2, 28, 86_399)).is_err());
    assert!(quota.check(at(2026, 3, 1, 0)).is_ok());
}

#[test]
fn concurrent_requests_never_exceed_quota() {
    let quotas = Quotas::new();
    let quota = quotas.compile("acme", &spec(1000, QuotaPeriod::Day));
    let now = at(2026, 1, 1, 0);
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..600).filter(|_| quota.check(now).is_ok()).count()))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(allowed, 1000);
}

#[test]
fn counts_survive_recompile_and_snapshot_only_dirty() {
    let quotas = Quotas::new();
    let now = at(2026, 11, 27, 0);
    let q1 = quotas.compile("acme", &spec(10, QuotaPeriod::Day));
    q1.check(now).expect("first");
    q1.check(now).expect("second");
    let q2 = quotas.compile("acme", &spec(10, QuotaPeriod::Day));
    assert_eq!(q2.check(now).map(|s| s.remaining), Ok(7));
    assert_eq!(
        quotas.snapshot_dirty(),
        vec![("acme".to_owned(), "day:2026-11-27".to_owned(), 3)]
    );
    assert!(quotas.snapshot_dirty().is_empty());
    q2.check(now).expect("fourth");
    assert_eq!(quotas.snapshot_dirty().len(), 1);
}

#[test]
fn snapshot_reports_final_count_of_rolled_period() {
    let quotas = Quotas::new();
    let q = quotas.compile("acme", &spec(10, QuotaPeriod::Day));
    q.check(at(2026, 11, 27, 0)).expect("day one");
    q.check(at(2026, 11, 27, 1)).expect("day one");
    q.check(at(2026, 11, 28, 0)).expect("day two");
    let mut snap = quotas.snapshot_dirty();
    snap.sort();
    assert_eq!(
        snap,
        vec![
            ("acme".to_owned(), "day:2026-11-27".to_owned(), 2),
            ("acme".to_owned(), "day:2026-11-28".to_owned(), 1),
        ]
    );
}

#[test]
fn restore_keeps_latest_period_and_usage_reports_it() {
    let quotas = Quotas::new();
    quotas.restore(vec![
        ("acme".to_owned(), "day:2026-11-26".to_owned(), 9),
        ("acme".to_owned(), "day:2026-11-27".to_owned(), 4),
        ("acme".to_owned(), "garbage".to_owned(), 1),
    ]);
    assert!(quotas.snapshot_dirty().is_empty());
    let quota = spec(5, QuotaPeriod::Day);
    let now = at(2026, 11, 27, 60);
    let usage = quotas.usage("acme", &quota, now);
    assert_eq!(
        usage,
        Usage {
            used: 4,
            limit: 5,
            remaining: 1,
            period: "day:2026-11-27".to_owned(),
            resets_at: days_from_civil(2026, 11, 28) as u64 * 86_400,
        }
    );
    let q = quotas.compile("acme", &quota);
    assert!(q.check(now).is_ok());
    assert!(q.check(now).is_err());
    assert_eq!(quotas.usage("acme", &quota, at(2026, 11, 28, 0)).used, 0);
    assert_eq!(quotas.usage("nobody", &quota, now).used, 0);
}

#[test]
fn a_late_request_of_the_previous_day_never_moves_the_period_back() {
    let quotas = Quotas::new();
    let q = quotas.compile("acme", &spec(10, QuotaPeriod::Day));
    let before_midnight = at(2026, 11, 27, 86_399);
    let after_midnight = at(2026, 11, 28, 0);
    q.check(before_midnight).expect("day one");
    q.check(after_midnight).expect("day two, first");
    q.check(after_midnight).expect("day two, second");
    // Read the clock before midnight, counted after the roll-over: it counts in day two.
    assert_eq!(q.check(before_midnight).map(|s| s.remaining), Ok(7));
    // A clock stepped back a whole day changes nothing either.
    assert_eq!(q.check(at(2026, 11, 27, 3600)).map(|s| s.remaining), Ok(6));
    let usage = quotas.usage("acme", &spec(10, QuotaPeriod::Day), after_midnight);
    assert_eq!((usage.period.as_str(), usage.used), ("day:2026-11-28", 4));
    let mut snap = quotas.snapshot_dirty();
    snap.sort();
    assert_eq!(
        snap,
        vec![
            ("acme".to_owned(), "day:2026-11-27".to_owned(), 1),
            ("acme".to_owned(), "day:2026-11-28".to_owned(), 4),
        ]
    );
}

#[test]
fn the_newer_period_limit_holds_for_late_requests() {
    let quotas = Quotas::new();
    let q = quotas.compile("acme", &spec(2, QuotaPeriod::Month));
    q.check(at(2026, 12, 1, 0)).expect("december");
    q.check(at(2026, 12, 1, 1)).expect("december");
    let late = q
        .check(at(2026, 11, 30, 86_399))
        .expect_err("november's last second, counted in december's full quota");
    assert_eq!(late.status, StatusCode::TOO_MANY_REQUESTS);
}
