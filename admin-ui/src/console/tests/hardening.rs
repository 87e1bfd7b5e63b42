//! Security headers, `Secure` cookies and secrets on the console's pages.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use storage::{Change, Object};

use super::{Console, Page};

const SECRET: &str = "hmac-secret-0123456789";
const PRIVATE_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEsecretbits\n-----END PRIVATE KEY-----\n";

fn assert_security_headers(page: &Page, what: &str) {
    let header = |name: header::HeaderName| {
        page.headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(header::X_FRAME_OPTIONS), "DENY", "{what}");
    assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
    let csp = header(header::CONTENT_SECURITY_POLICY);
    for part in [
        "frame-ancestors 'none'",
        "script-src 'self'",
        "style-src 'self'",
    ] {
        assert!(csp.contains(part), "{what}: {csp}");
    }
    let script = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap_or_default();
    assert!(!script.contains("unsafe"), "{what}: {csp}");
}

#[tokio::test]
async fn every_console_answer_forbids_framing_and_sniffing() {
    let console = Console::new();
    let login = console.get("/login", None).await;
    assert_security_headers(&login, "login page");
    let session = console.login().await;
    let home = session.get(&console, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_security_headers(&home, "dashboard");
    assert_eq!(
        home.headers[header::CACHE_CONTROL],
        "no-store",
        "authenticated pages are not stored"
    );
    let redirect = console.get("/routes", None).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_security_headers(&redirect, "redirect to the login page");
    let css = console.get("/assets/console.css", None).await;
    assert_security_headers(&css, "stylesheet");
    assert_eq!(css.headers[header::CACHE_CONTROL], "no-cache", "kept");
}

#[tokio::test]
async fn the_pages_need_no_inline_script() {
    let console = Console::new();
    let session = console.login().await;
    for path in ["/", "/routes", "/config", "/usage", "/keys"] {
        let page = session.get(&console, path).await;
        assert!(!page.body.contains("<script>"), "{path}: inline script");
        assert!(!page.body.contains(" onclick="), "{path}: inline handler");
    }
}

#[tokio::test]
async fn cookies_are_secure_only_when_the_browser_came_over_https() {
    let console = Console::new();
    let plain = console.get("/login", None).await;
    assert!(
        plain.set_cookies().iter().all(|c| !c.contains("Secure")),
        "{:?}",
        plain.set_cookies()
    );
    for (name, value) in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.1;proto=https"),
    ] {
        let req = Request::get("/login")
            .header(name, value)
            .body(Body::empty())
            .expect("request");
        let tls = console.send(req).await;
        let cookies = tls.set_cookies();
        assert!(
            !cookies.is_empty() && cookies.iter().all(|c| c.ends_with("; Secure")),
            "{name}: {cookies:?}"
        );
    }
}

fn store_secrets(console: &Console) {
    let issuer = serde_json::from_value(serde_json::json!({
        "id": "idp", "issuer": "https://idp.example", "algorithms": ["HS256"],
        "keys": [{"kid": "k1", "secret": SECRET}],
    }))
    .expect("issuer spec");
    let cert = serde_json::from_value(serde_json::json!({
        "id": "main", "snis": ["api.example.com"],
        "cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "key": PRIVATE_KEY,
    }))
    .expect("certificate spec");
    for object in [Object::JwtIssuer(issuer), Object::Certificate(cert)] {
        console
            .store()
            .apply(Change::Create(object), "test")
            .expect("stored");
    }
}

#[tokio::test]
async fn config_page_and_plain_export_hide_secrets_the_full_export_is_a_download() {
    let console = Console::new();
    store_secrets(&console);
    let session = console.login().await;
    for path in [
        "/config",
        "/config/export.yaml",
        "/jwt-issuers",
        "/jwt-issuers/idp",
        "/certificates/main",
    ] {
        let page = session.get(&console, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains(SECRET), "{path} shows the HMAC secret");
        assert!(
            !page.body.contains("MIIEsecretbits"),
            "{path} shows the key"
        );
    }
    let full = session
        .get(&console, "/config/export-with-secrets.yaml")
        .await;
    assert_eq!(full.status, StatusCode::OK);
    assert!(full.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .is_ok_and(|v| v.starts_with("attachment")));
    let parsed = storage::parse_config(&full.body).expect("the export parses");
    assert_eq!(parsed.certificates[0].key, PRIVATE_KEY);
    assert_eq!(
        parsed.jwt_issuers[0].keys[0].secret.as_deref(),
        Some(SECRET)
    );
    let anonymous = console.get("/config/export-with-secrets.yaml", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "needs a session");
}

#[tokio::test]
async fn importing_the_shown_config_keeps_the_stored_secrets() {
    let console = Console::new();
    store_secrets(&console);
    let session = console.login().await;
    let before = console.store().config();
    let shown = session.get(&console, "/config/export.yaml").await;
    let imported = session
        .post(
            &console,
            "/config/import",
            &[("yaml", &shown.body), ("replace", "on")],
        )
        .await;
    assert_eq!(imported.status, StatusCode::SEE_OTHER, "{}", imported.body);
    assert_eq!(*console.store().config(), *before);
}
