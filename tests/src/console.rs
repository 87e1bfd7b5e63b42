//! A blocking client for the browser console without a browser: the login form's
//! double-submit CSRF pair, login posts, and pages fetched with the session cookie.

use std::net::SocketAddr;

use anyhow::{anyhow, Context, Result};

use crate::{http_client, Answer};

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "tollgate_session";
/// The login form's CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "tollgate_login_csrf";

/// One login form as served: its CSRF cookie and the matching hidden field.
#[derive(Debug, Clone)]
pub struct LoginForm {
    pub cookie: String,
    pub csrf: String,
}

/// A console at `addr` (the admin listener).
#[derive(Clone)]
pub struct Console {
    base: String,
    client: reqwest::blocking::Client,
}

impl Console {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            client: http_client(),
        }
    }

    /// `GET /login`: the CSRF pair every login post needs.
    pub fn login_form(&self) -> Result<LoginForm> {
        let page = self.get("/login", None, &[])?;
        let cookie = cookie_value(&page, LOGIN_CSRF_COOKIE)
            .ok_or_else(|| anyhow!("no {LOGIN_CSRF_COOKIE} cookie: {:?}", page.headers))?;
        let csrf = hidden_field(&page.text, "csrf")
            .ok_or_else(|| anyhow!("no csrf field in the login page"))?;
        Ok(LoginForm { cookie, csrf })
    }

    /// `POST /login` with `form`'s CSRF pair.
    pub fn post_login(&self, form: &LoginForm, user: &str, password: &str) -> Result<Answer> {
        let response = self
            .client
            .post(format!("{}/login", self.base))
            .header("cookie", format!("{LOGIN_CSRF_COOKIE}={}", form.cookie))
            .form(&[
                ("username", user),
                ("password", password),
                ("csrf", &form.csrf),
            ])
            .send()
            .context("POST /login")?;
        answer(response)
    }

    /// Logs in; `Ok` carries the session cookie's value (the answer must be 303).
    pub fn log_in(&self, user: &str, password: &str) -> Result<String> {
        let answer = self.post_login(&self.login_form()?, user, password)?;
        if answer.status != 303 {
            anyhow::bail!("login answered {}: {}", answer.status, answer.text);
        }
        cookie_value(&answer, SESSION_COOKIE).ok_or_else(|| anyhow!("no session cookie"))
    }

    /// `POST path` as a browser's plain form post (`Accept: text/html`) with the session
    /// cookie `session` and the page's CSRF field `csrf`, plus `fields`.
    pub fn post_form(
        &self,
        path: &str,
        session: &str,
        csrf: &str,
        fields: &[(&str, &str)],
    ) -> Result<Answer> {
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf)];
        form.extend_from_slice(fields);
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("{SESSION_COOKIE}={session}"))
            .header("accept", "text/html")
            .form(&form)
            .send()
            .with_context(|| format!("POST {path}"))?;
        answer(response)
    }

    /// `GET path` with the session cookie `session` (if any) and extra `headers`.
    pub fn get(
        &self,
        path: &str,
        session: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Answer> {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(session) = session {
            request = request.header("cookie", format!("{SESSION_COOKIE}={session}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().with_context(|| format!("GET {path}"))?)
    }
}

fn answer(response: reqwest::blocking::Response) -> Result<Answer> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().context("reading a console answer")?;
    Ok(Answer {
        status,
        headers,
        text,
    })
}

/// The value `Set-Cookie` gives cookie `name` in `answer`, if any.
pub fn cookie_value(answer: &Answer, name: &str) -> Option<String> {
    set_cookie(answer, name)
        .and_then(|line| line.split(';').next().map(str::to_owned))
        .and_then(|pair| pair.split_once('=').map(|(_, v)| v.to_owned()))
}

/// The whole `Set-Cookie` line of cookie `name` in `answer`, attributes included.
pub fn set_cookie(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|line| line.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the first hidden input named `name` in `html`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value = tag.split("value=\"").nth(1)?;
    value.split('"').next().map(str::to_owned)
}
