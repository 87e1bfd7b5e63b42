//! The browser console, driven in headless Chromium against the real binary: log in, build
//! an upstream, a route and a consumer through the forms, create an API key and prove
//! through the proxy that it works, revoke it and prove it fails; a wrong password, a form
//! post without its CSRF token and a page without a session are all refused. A screenshot
//! of each main page is kept in `tests/artifacts/`.

mod console {
    pub mod webdriver;
}

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use console::webdriver::Browser;
use tests::{http_client, send, wait_until, EchoServer, Gateway, GatewayOptions};

const PASSWORD: &str = "console-e2e-password";
const WAIT: Duration = Duration::from_secs(20);

fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts")
        .join(format!("console-{name}.png"))
}

/// Waits until the browser shows a URL ending in `path` (form posts redirect).
fn wait_for_path(browser: &Browser, base: &str, path: &str) -> Result<()> {
    let wanted = format!("{base}{path}");
    wait_until(&format!("the browser to show {wanted}"), WAIT, || {
        let url = browser.url()?;
        Ok((url == wanted).then_some(()))
    })
}

/// Waits until the page has an element matching `selector`: a form posted to the page it
/// was on leaves the URL as it was, so only the new page's content tells it has loaded.
fn wait_for_element(browser: &Browser, selector: &str) -> Result<()> {
    wait_until(&format!("the page to show {selector}"), WAIT, || {
        browser.find(selector).map(|_| Some(()))
    })
}

fn fill(browser: &Browser, selector: &str, text: &str) -> Result<()> {
    let element = browser.find(selector)?;
    element.clear()?;
    element.type_text(text)
}

fn submit(browser: &Browser, form: &str) -> Result<()> {
    browser
        .find(&format!("{form} button[type=submit].primary"))?
        .click()
}

fn log_in(browser: &Browser, base: &str, password: &str) -> Result<()> {
    browser.goto(&format!("{base}/login"))?;
    fill(browser, "#username", "admin")?;
    fill(browser, "#password", password)?;
    submit(browser, "form[action='/login']")
}

/// Waits until `GET /echo/hello` through the proxy, with `key` in `x-api-key` when given,
/// answers `status`; `Err` names the last answer.
fn wait_for_proxy(gateway: &Gateway, key: Option<&str>, status: u16, what: &str) -> Result<()> {
    let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
    wait_until(what, WAIT, || {
        let answer = send(&http_client(), "GET", &gateway.url("/echo/hello"), &headers)?;
        if answer.status == status {
            Ok(Some(()))
        } else {
            anyhow::bail!("answered {}: {}", answer.status, answer.text)
        }
    })
}

#[test]
fn operator_manages_the_gateway_in_a_browser() -> Result<()> {
    let echo = EchoServer::start("echo")?;
    let gateway = Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_ADMIN_PASSWORD".into(), PASSWORD.into())],
        ..GatewayOptions::default()
    })?;
    let base = format!("http://{}", gateway.admin_addr());
    let browser = Browser::start()?;

    // Without a session every page leads to the login page.
    for path in ["/", "/routes", "/keys"] {
        browser.goto(&format!("{base}{path}"))?;
        wait_for_path(&browser, &base, "/login")
            .with_context(|| format!("{path} without a session"))?;
    }
    browser.screenshot(&artifact("login"))?;

    // A wrong password is refused.
    log_in(&browser, &base, "not-the-password")?;
    let refused = wait_until("the refusal", WAIT, || {
        let source = browser.source()?;
        Ok(source.contains("Wrong user name or password").then_some(()))
    });
    refused.context("a wrong password must be refused")?;
    browser.goto(&format!("{base}/"))?;
    wait_for_path(&browser, &base, "/login")?;

    // The right one opens the dashboard.
    log_in(&browser, &base, PASSWORD)?;
    wait_for_path(&browser, &base, "/")?;
    ensure!(browser.find("h1")?.text()? == "Dashboard");
    browser.screenshot(&artifact("dashboard"))?;

    // An upstream and a route, through the forms.
    browser.goto(&format!("{base}/upstreams/new"))?;
    fill(&browser, "#field-id", "echo")?;
    fill(&browser, "#field-targets", &echo.addr().to_string())?;
    submit(&browser, "form.object")?;
    wait_for_path(&browser, &base, "/upstreams")?;
    ensure!(browser.source()?.contains("Created upstream echo"));
    browser.screenshot(&artifact("upstreams"))?;

    browser.goto(&format!("{base}/routes/new"))?;
    fill(&browser, "#field-id", "echo-route")?;
    fill(&browser, "#field-paths", "/echo")?;
    browser
        .find("#field-upstream option[value='echo']")?
        .click()?;
    fill(&browser, "#field-policies", "- type: key_auth")?;
    submit(&browser, "form.object")?;
    wait_for_path(&browser, &base, "/routes")?;
    ensure!(browser.source()?.contains("Created route echo-route"));
    browser.screenshot(&artifact("routes"))?;

    browser.goto(&format!("{base}/consumers/new"))?;
    fill(&browser, "#field-id", "acme")?;
    submit(&browser, "form.object")?;
    wait_for_path(&browser, &base, "/consumers")?;
    browser.screenshot(&artifact("consumers"))?;

    // A key, shown once, that the proxy accepts.
    let route = gateway.admin().get("/api/v1/routes/echo-route")?;
    ensure!(
        route.body["policies"][0]["type"] == "key_auth",
        "the route was saved with key_auth: {}",
        route.text
    );
    wait_for_proxy(
        &gateway,
        None,
        401,
        "the route to refuse a request without a key",
    )?;
    browser.goto(&format!("{base}/keys?consumer=acme"))?;
    fill(&browser, "#field-label", "browser test")?;
    submit(&browser, "form[action='/keys']")?;
    wait_for_path(&browser, &base, "/keys?consumer=acme")?;
    wait_for_element(&browser, "#secret")?;
    let key = browser.find("#secret")?.text()?;
    ensure!(key.starts_with("tg_"), "the new key is shown: {key:?}");
    browser.find("button[data-copy]")?;
    browser.screenshot(&artifact("keys"))?;
    let row = browser.find("tr[data-key]")?.text()?;
    ensure!(
        row.contains('—'),
        "an unused key shows no last use: {row:?}"
    );
    wait_for_proxy(&gateway, Some(&key), 200, "the proxy to accept the new key")?;
    ensure!(echo.hits() >= 1, "the upstream saw the request");
    browser.goto(&format!("{base}/keys?consumer=acme"))?;
    let row = browser.find("tr[data-key]")?.text()?;
    ensure!(
        !row.contains('—'),
        "the key's row shows when it was last used: {row:?}"
    );

    // Revoked, it fails.
    browser.execute("window.confirm = function () { return true; };")?;
    browser
        .find("form[action$='/revoke'] button")
        .context("a revoke button")?
        .click()?;
    wait_until("the key to show as revoked", WAIT, || {
        Ok(browser.source()?.contains(">revoked<").then_some(()))
    })?;
    wait_for_proxy(
        &gateway,
        Some(&key),
        401,
        "the proxy to refuse the revoked key",
    )?;

    // A form posted without its CSRF token is refused, and changes nothing.
    browser.goto(&format!("{base}/consumers/new"))?;
    fill(&browser, "#field-id", "mallory")?;
    browser.execute("document.querySelector('form.object input[name=csrf]').remove();")?;
    submit(&browser, "form.object")?;
    wait_until("the CSRF refusal", WAIT, || {
        Ok(browser.source()?.contains("security token").then_some(()))
    })?;
    let consumers = gateway.admin().get("/api/v1/consumers/mallory")?;
    ensure!(
        consumers.status == 404,
        "mallory was not created: {}",
        consumers.text
    );

    // The other main pages render.
    for (path, name) in [
        ("/plans", "plans"),
        ("/jwt-issuers", "jwt-issuers"),
        ("/certificates", "certificates"),
        ("/usage", "usage"),
        ("/audit", "audit"),
        ("/config", "config"),
        ("/upstreams/echo", "upstream-detail"),
        ("/", "dashboard-with-traffic"),
    ] {
        browser.goto(&format!("{base}{path}"))?;
        ensure!(
            browser.find("header.topbar").is_ok(),
            "{path} shows the console"
        );
        browser.screenshot(&artifact(name))?;
    }
    ensure!(
        browser.source()?.contains("echo-route"),
        "the dashboard lists the route"
    );

    // Logging out ends the session.
    browser.find("form[action='/logout'] button")?.click()?;
    wait_for_path(&browser, &base, "/login")?;
    browser.goto(&format!("{base}/audit"))?;
    wait_for_path(&browser, &base, "/login")?;
    Ok(())
}
