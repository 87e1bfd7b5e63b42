use std::time::Duration;

use axum::http::StatusCode;

use super::{Console, FakeLive, Session, PASSWORD};
use crate::console::layout::NAV;

#[tokio::test]
async fn redirects_every_page_to_login_without_a_session() {
    let console = Console::new();
    let mut paths: Vec<&str> = NAV.iter().map(|(path, _)| *path).collect();
    paths.extend(["/routes/new", "/upstreams/orders", "/config/export.yaml"]);
    for path in paths {
        let page = console.get(path, None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), Some("/login"), "{path}");
    }
    let post = console
        .post("/upstreams/new", None, &[("id", "orders")])
        .await;
    assert_eq!(post.location(), Some("/login"));
    let forged = console
        .get("/", Some("tollgate_session=not-a-session"))
        .await;
    assert_eq!(forged.location(), Some("/login"));
}

#[tokio::test]
async fn login_page_is_reachable_and_sets_a_strict_form_cookie() {
    let console = Console::new();
    let page = console.get("/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.starts_with("<!DOCTYPE html>"));
    assert!(page.body.contains("name=\"password\""));
    assert!(page.csrf().is_some_and(|t| t.len() >= 32));
    let cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tollgate_login_csrf="))
        .expect("login csrf cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let css = console.get("/assets/console.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains(".topbar"));
    assert_eq!(
        console.get("/assets/other.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn logs_in_with_an_httponly_samesite_strict_session_cookie() {
    let console = Console::new();
    let form = console.get("/login", None).await;
    let login_cookie = form.cookie("tollgate_login_csrf").expect("cookie");
    let csrf = form.csrf().expect("csrf");
    let done = console
        .post(
            "/login",
            Some(&format!("tollgate_login_csrf={login_cookie}")),
            &[
                ("username", "admin"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), Some("/"));
    let session = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tollgate_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/"), "{session}");
    let token = done.cookie("tollgate_session").expect("token");
    let home = console
        .get("/", Some(&format!("tollgate_session={token}")))
        .await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Dashboard"));
    assert!(home.body.contains(">admin<"), "the user is shown");
    // A logged-in visit to /login goes home.
    let again = console
        .get("/login", Some(&format!("tollgate_session={token}")))
        .await;
    assert_eq!(again.location(), Some("/"));
}

#[tokio::test]
async fn refuses_a_wrong_password() {
    let console = Console::new();
    let form = console.get("/login", None).await;
    let login_cookie = form.cookie("tollgate_login_csrf").expect("cookie");
    let csrf = form.csrf().expect("csrf");
    for (user, password) in [("admin", "wrong"), ("nobody", PASSWORD)] {
        let refused = console
            .post(
                "/login",
                Some(&format!("tollgate_login_csrf={login_cookie}")),
                &[("username", user), ("password", password), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.body.contains("Wrong user name or password"));
        assert!(refused.cookie("tollgate_session").is_none());
    }
}

#[tokio::test]
async fn refuses_a_login_without_the_form_token() {
    let console = Console::new();
    let form = console.get("/login", None).await;
    let login_cookie = form.cookie("tollgate_login_csrf").expect("cookie");
    let without = console
        .post(
            "/login",
            Some(&format!("tollgate_login_csrf={login_cookie}")),
            &[("username", "admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let no_cookie = console
        .post(
            "/login",
            None,
            &[
                ("username", "admin"),
                ("password", PASSWORD),
                ("csrf", &login_cookie),
            ],
        )
        .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(no_cookie.cookie("tollgate_session").is_none());
}

#[tokio::test]
async fn refuses_a_form_post_without_the_csrf_token() {
    let console = Console::new();
    let session = console.login().await;
    let fields = [("id", "orders"), ("targets", "127.0.0.1:9001")];
    let without = console
        .post("/upstreams/new", Some(&session.cookie), &fields)
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert!(without.body.contains("security token"));
    let mut wrong = vec![("csrf", "forged")];
    wrong.extend_from_slice(&fields);
    let forged = console
        .post("/upstreams/new", Some(&session.cookie), &wrong)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(console.store().config().upstreams.is_empty());
    let with = session.post(&console, "/upstreams/new", &fields).await;
    assert_eq!(with.status, StatusCode::SEE_OTHER, "{}", with.body);
    assert_eq!(console.store().config().upstreams.len(), 1);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let console = Console::new();
    let session = console.login().await;
    let out = session.post(&console, "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/login"));
    assert!(out
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("tollgate_session=;") && c.contains("Max-Age=0")));
    assert_eq!(session.get(&console, "/").await.location(), Some("/login"));
}

#[tokio::test]
async fn a_session_outlives_a_restart_until_logout() {
    let console = Console::new();
    let session = console.login().await;
    let console = console.restarted();
    let home = session.get(&console, "/").await;
    assert_eq!(
        home.status,
        StatusCode::OK,
        "still logged in: {}",
        home.body
    );
    let csrf = home.csrf().expect("pages carry the csrf token");
    assert_ne!(csrf, session.csrf, "a new CSRF token after the restart");
    let old_form = session
        .post(&console, "/upstreams/new", &[("id", "a")])
        .await;
    assert_eq!(old_form.status, StatusCode::FORBIDDEN, "a form from before");
    let session = Session {
        cookie: session.cookie,
        csrf,
    };
    assert_eq!(
        session.post(&console, "/logout", &[]).await.location(),
        Some("/login")
    );
    let console = console.restarted();
    assert_eq!(
        session.get(&console, "/").await.location(),
        Some("/login"),
        "logged out for good"
    );
}

#[tokio::test]
async fn sessions_expire() {
    let console = Console::with(
        FakeLive::default(),
        prometheus::Registry::new(),
        Duration::ZERO,
    );
    let form = console.get("/login", None).await;
    let login_cookie = form.cookie("tollgate_login_csrf").expect("cookie");
    let csrf = form.csrf().expect("csrf");
    let done = console
        .post(
            "/login",
            Some(&format!("tollgate_login_csrf={login_cookie}")),
            &[
                ("username", "admin"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    let token = done.cookie("tollgate_session").expect("a session was made");
    let page = console
        .get("/routes", Some(&format!("tollgate_session={token}")))
        .await;
    assert_eq!(page.location(), Some("/login"));
}

#[tokio::test]
async fn wrong_passwords_in_a_row_make_further_attempts_wait() {
    let console = Console::new();
    let attempt = |password: &'static str| {
        let console = &console;
        async move {
            let form = console.get("/login", None).await;
            let cookie = form
                .cookie("tollgate_login_csrf")
                .expect("login csrf cookie");
            let csrf = form.csrf().expect("csrf field");
            console
                .post(
                    "/login",
                    Some(&format!("tollgate_login_csrf={cookie}")),
                    &[
                        ("username", "admin"),
                        ("password", password),
                        ("csrf", &csrf),
                    ],
                )
                .await
        }
    };
    for _ in 0..crate::guard::throttle::FREE_FAILURES {
        assert_eq!(attempt("guess").await.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits: it is not checked until the delay has passed.
    let held = attempt(PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{}", held.body);
    assert_eq!(
        held.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(
        held.body.contains("Too many wrong passwords"),
        "{}",
        held.body
    );
    assert!(held.cookie("tollgate_session").is_none());
}
