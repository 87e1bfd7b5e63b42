//! `cors`: the gateway answers preflights itself (204 with the CORS headers when allowed,
//! 403 when not) and adds `Access-Control-Allow-Origin` to responses of allowed origins.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderValue, Method, StatusCode};

use crate::problem::Problem;
use crate::request::{HeaderSink, RequestState, RequestView};
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::CorsSpec;

const KIND: &str = "cors";

/// A compiled `cors` policy.
#[derive(Debug, Clone)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    /// Empty: any method.
    methods: Vec<Method>,
    methods_value: Option<HeaderValue>,
    /// Lowercase; empty: any header.
    headers: Vec<String>,
    headers_value: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
    expose_value: Option<HeaderValue>,
}

fn join(items: impl Iterator<Item = String>) -> Result<Option<HeaderValue>, Vec<Problem>> {
    let joined = items.collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&joined)
        .map(Some)
        .map_err(|_| vec![Problem::new("", "must be valid header text")])
}

impl Cors {
    pub fn compile(spec: &CorsSpec) -> Result<Self, Vec<Problem>> {
        let problems = crate::spec::PolicySpec::Cors(spec.clone()).validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        let methods: Vec<Method> = spec
            .methods
            .iter()
            .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
            .collect();
        let headers: Vec<String> = spec
            .headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        Ok(Self {
            any_origin: spec.origins.iter().any(|o| o == "*"),
            origins: spec.origins.clone(),
            methods_value: join(methods.iter().map(|m| m.to_string()))?,
            methods,
            headers_value: join(headers.iter().cloned())?,
            headers,
            credentials: spec.credentials,
            max_age: spec.max_age.map(HeaderValue::from),
            expose_value: join(spec.expose_headers.iter().map(|h| h.to_ascii_lowercase()))?,
        })
    }

    fn is_allowed_origin(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o == origin)
    }

    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here:
    /// 204 with the CORS headers, or 403. Other requests from an allowed origin are marked so
    /// that [`Cors::on_response`] decorates the response.
    pub fn on_request(&self, view: &RequestView<'_>, state: &mut RequestState) -> Verdict {
        let Some(origin) = view.headers.get(ORIGIN) else {
            return Verdict::Continue;
        };
        let allowed = origin.to_str().is_ok_and(|o| self.is_allowed_origin(o));
        let requested_method = view.headers.get(ACCESS_CONTROL_REQUEST_METHOD);
        let Some(requested_method) = requested_method.filter(|_| view.method == Method::OPTIONS)
        else {
            if allowed {
                state.cors_origin = Some(self.allow_origin_value(origin));
            }
            return Verdict::Continue;
        };
        if !allowed {
            return Verdict::Respond(Rejection::forbidden(KIND, "cors origin not allowed"));
        }
        let method_ok = self.methods.is_empty()
            || Method::from_bytes(requested_method.as_bytes())
                .is_ok_and(|m| self.methods.contains(&m));
        if !method_ok {
            return Verdict::Respond(Rejection::forbidden(KIND, "cors method not allowed"));
        }
        let requested_headers = view.headers.get(ACCESS_CONTROL_REQUEST_HEADERS);
        let headers_ok = self.headers.is_empty()
            || requested_headers.is_none_or(|v| {
                v.to_str().is_ok_and(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .all(|h| self.headers.iter().any(|a| a.eq_ignore_ascii_case(h)))
                })
            });
        if !headers_ok {
            return Verdict::Respond(Rejection::forbidden(KIND, "cors header not allowed"));
        }
        let mut r = Rejection::new(StatusCode::NO_CONTENT, KIND, "");
        r.headers
            .push((ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin)));
        let methods = self
            .methods_value
            .clone()
            .unwrap_or_else(|| requested_method.clone());
        r.headers.push((ACCESS_CONTROL_ALLOW_METHODS, methods));
        if let Some(h) = self
            .headers_value
            .clone()
            .or_else(|| requested_headers.cloned())
        {
            r.headers.push((ACCESS_CONTROL_ALLOW_HEADERS, h));
        }
        if self.credentials {
            r.headers.push((
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        if let Some(age) = &self.max_age {
            r.headers.push((ACCESS_CONTROL_MAX_AGE, age.clone()));
        }
        r.headers.push((VARY, HeaderValue::from_static("Origin")));
        Verdict::Respond(r)
    }

    /// Adds `Access-Control-Allow-Origin` (and `-Credentials`, `-Expose-Headers`, `Vary:
    /// Origin`) for a request from an allowed origin: to the upstream's answer, and to the
    /// gateway's own refusals (a browser shows a refusal without them as a CORS error).
    pub fn on_response<S: HeaderSink + ?Sized>(&self, state: &RequestState, sink: &mut S) {
        let Some(origin) = &state.cors_origin else {
            return;
        };
        sink.set_header(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials {
            sink.set_header(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(exposed) = &self.expose_value {
            sink.set_header(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
        }
        if origin != "*" {
            sink.append_header(VARY, HeaderValue::from_static("Origin"));
        }
    }
}
