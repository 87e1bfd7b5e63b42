use axum::http::StatusCode;

use super::{Console, FakeLive};
use crate::console::layout::{format_time, NAV};
use crate::UsageReport;

#[tokio::test]
async fn every_page_renders_with_the_navigation_bar() {
    let console = Console::new();
    let session = console.login().await;
    for (path, label) in NAV {
        let page = session.get(&console, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(
            page.body.contains(&format!("<h1>{label}</h1>")),
            "{path}: title"
        );
        assert!(
            page.body
                .contains(&format!("href=\"{path}\" class=\"active\"")),
            "{path}: the active entry"
        );
        for (other, _) in NAV {
            assert!(
                page.body.contains(&format!("href=\"{other}\"")),
                "{path} links {other}"
            );
        }
        assert!(page.body.contains("action=\"/logout\""), "{path}");
    }
}

#[tokio::test]
async fn usage_shows_quota_used_and_left() {
    let live = FakeLive {
        usage: Some(UsageReport {
            period: "day".into(),
            used: 250,
            limit: Some(1000),
            remaining: Some(750),
            resets_at: 1_800_000_000,
        }),
        ..FakeLive::default()
    };
    let console = Console::with(
        live,
        prometheus::Registry::new(),
        std::time::Duration::from_secs(60),
    );
    let session = console.login().await;
    assert!(session
        .get(&console, "/usage")
        .await
        .body
        .contains("No consumers yet."));
    session
        .post(&console, "/consumers/new", &[("id", "acme")])
        .await;
    let page = session.get(&console, "/usage").await;
    assert!(page.body.contains(">250<"), "{}", page.body);
    assert!(page.body.contains(">750<"));
    assert!(page.body.contains("25% of 1000"));
    assert!(page.body.contains(&format_time(1_800_000_000)));
}

#[tokio::test]
async fn audit_log_says_who_changed_what() {
    let console = Console::new();
    let session = console.login().await;
    assert!(session
        .get(&console, "/audit")
        .await
        .body
        .contains("No changes yet."));
    session
        .post(&console, "/consumers/new", &[("id", "acme")])
        .await;
    session.post(&console, "/consumers/acme/delete", &[]).await;
    let page = session.get(&console, "/audit").await;
    let create = page
        .body
        .find("create consumer acme")
        .expect("create listed");
    let delete = page
        .body
        .find("delete consumer acme")
        .expect("delete listed");
    assert!(delete < create, "newest first");
    assert!(page.body.contains("<td>admin</td>"));
}

#[test]
fn formats_unix_time_as_utc() {
    assert_eq!(format_time(0), "—");
    assert_eq!(format_time(86_400 + 3661), "1970-01-02 01:01:01 UTC");
    assert_eq!(format_time(1_709_210_096), "2024-02-29 12:34:56 UTC");
}
