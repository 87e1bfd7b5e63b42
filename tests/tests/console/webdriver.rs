//! A minimal W3C WebDriver client over blocking reqwest (JSON), driving Debian's headless
//! Chromium through chromedriver. Only what the console test needs: navigate, find, type,
//! click, read, run a script, take screenshots.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tests::{free_port, wait_until};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver on a free loopback port with one headless Chromium session; both end on
/// drop.
pub struct Browser {
    driver: Child,
    base: String,
    client: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile and a laptop-sized
    /// window. `Err` names the missing package when Chromium or chromedriver is absent.
    pub fn start() -> Result<Self> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(path).is_file() {
                bail!("{path} is missing: `apt-get install {package}` (.ci/run installs it)");
            }
        }
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()?;
        let profile = tempfile::Builder::new()
            .prefix("tollgate-chromium-")
            .tempdir()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut browser = Browser {
            driver,
            base: format!("http://{addr}"),
            client,
            _profile: profile,
        };
        wait_until("chromedriver to be ready", Duration::from_secs(30), || {
            let status: Value = browser
                .client
                .get(format!("{}/status", browser.base))
                .send()?
                .json()?;
            Ok(status["value"]["ready"].as_bool().filter(|r| *r))
        })?;
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1366,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                "unhandledPromptBehavior": "accept"
            }}
        });
        let session = browser.call("POST", "/session", Some(capabilities))?;
        let id = session["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id in {session}"))?;
        browser.base = format!("{}/session/{id}", browser.base);
        Ok(browser)
    }

    /// Sends one WebDriver command; `Err` on a WebDriver error (with its message).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.client.get(&url),
            "DELETE" => self.client.delete(&url),
            _ => self
                .client
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .with_context(|| format!("{method} {path}: body"))?;
        if !status.is_success() {
            bail!("webdriver {method} {path}: {status}: {}", value["value"]);
        }
        Ok(value.get("value").cloned().unwrap_or(value))
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    /// The URL the browser shows now.
    pub fn url(&self) -> Result<String> {
        let value = self.call("GET", "/url", None)?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("url is not text: {value}"))
    }

    /// The current page's HTML as the browser holds it.
    pub fn source(&self) -> Result<String> {
        let value = self.call("GET", "/source", None)?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<Element<'_>> {
        let value = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .with_context(|| format!("finding {selector}"))?;
        let id = value[ELEMENT]
            .as_str()
            .ok_or_else(|| anyhow!("no element in {value}"))?;
        Ok(Element {
            browser: self,
            id: id.to_owned(),
        })
    }

    /// Runs `script` in the page (the body of a function) and returns its result.
    pub fn execute(&self, script: &str) -> Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let value = self.call("GET", "/screenshot", None)?;
        let encoded = value
            .as_str()
            .ok_or_else(|| anyhow!("screenshot is not text"))?;
        let png = base64_decode(encoded)?;
        if !png.starts_with(b"\x89PNG") {
            bail!("the screenshot is not a PNG");
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }
}

impl Element<'_> {
    fn path(&self, action: &str) -> String {
        format!("/element/{}/{action}", self.id)
    }

    /// Types `text` into the element (after what it holds).
    pub fn type_text(&self, text: &str) -> Result<()> {
        self.browser
            .call("POST", &self.path("value"), Some(json!({ "text": text })))
            .map(drop)
    }

    /// Empties an input or textarea.
    pub fn clear(&self) -> Result<()> {
        self.browser
            .call("POST", &self.path("clear"), None)
            .map(drop)
    }

    pub fn click(&self) -> Result<()> {
        self.browser
            .call("POST", &self.path("click"), None)
            .map(drop)
    }

    /// The rendered text of the element.
    pub fn text(&self) -> Result<String> {
        let value = self.browser.call("GET", &self.path("text"), None)?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then chromedriver itself goes.
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            other => bail!("not base64: byte {other}"),
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[test]
fn decodes_base64() {
    assert_eq!(base64_decode("iVBORw==").expect("valid"), b"\x89PNG");
    assert_eq!(
        base64_decode("aGVsbG8gd29ybGQ=").expect("valid"),
        b"hello world"
    );
    assert!(base64_decode("a*b").is_err());
}
