//! `key_auth`: the caller presents an API key in a header (default `x-api-key`) or a query
//! parameter; it is looked up by its sha256 digest. The key is never logged nor kept. A
//! repeated key header or parameter is refused (400): which one counts would be a guess,
//! and the upstream might read another one than the gateway checked. With
//! `hide_credentials` the edge removes the key before the upstream ([`KeyAuth::hidden_header`],
//! [`KeyAuth::hidden_query`]).

use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::directory::{Consumer, Directory, KeyHash};
use crate::headers::is_cgi_alias;
use crate::problem::Problem;
use crate::request::{Repeated, RequestState, RequestView};
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::{KeyAuthSpec, DEFAULT_HIDE_KEY, DEFAULT_KEY_HEADER};

const KIND: &str = "key_auth";

/// A compiled `key_auth` policy.
#[derive(Debug, Clone)]
pub struct KeyAuth {
    header: HeaderName,
    query: Option<String>,
    hide: bool,
}

impl KeyAuth {
    pub fn compile(spec: &KeyAuthSpec) -> Result<Self, Vec<Problem>> {
        let header = spec.header.as_deref().unwrap_or(DEFAULT_KEY_HEADER);
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| vec![Problem::new("header", "must be a valid header name")])?;
        Ok(Self {
            header,
            query: spec.query.clone().filter(|q| !q.is_empty()),
            hide: spec.hide_credentials.unwrap_or(DEFAULT_HIDE_KEY),
        })
    }

    /// The header to remove before the upstream (`hide_credentials`), if any.
    pub fn hidden_header(&self) -> Option<&HeaderName> {
        self.hide.then_some(&self.header)
    }

    /// The query parameter to remove before the upstream (`hide_credentials`), if any.
    pub fn hidden_query(&self) -> Option<&str> {
        self.query.as_deref().filter(|_| self.hide)
    }

    /// Whether the request has a header that differs from the key header only by `_` for
    /// `-` (`x_api_key`): CGI-style upstreams (PHP, WSGI) read both as `HTTP_X_API_KEY`, so
    /// it is a second key the gateway would not check (nor hide).
    fn has_cgi_alias(&self, view: &RequestView<'_>) -> bool {
        let name = self.header.as_str();
        name.contains(['-', '_'])
            && view
                .headers
                .keys()
                .any(|client| is_cgi_alias(client.as_str(), name))
    }

    /// Identifies the consumer by the key (in the header or the query parameter, taken raw).
    /// 400 when the header (under any `_`/`-` spelling) or the parameter comes twice, or
    /// both come with different values; 401 when the key is missing, unknown, revoked, or
    /// expired (`expires` <= now: a key expires at that second).
    pub fn on_request(
        &self,
        view: &RequestView<'_>,
        state: &mut RequestState,
        directory: &Directory,
        now_secs: u64,
    ) -> Verdict {
        let header = view.single_header(&self.header).and_then(|h| {
            if self.has_cgi_alias(view) {
                Err(Repeated)
            } else {
                Ok(h)
            }
        });
        let Ok(header) = header.and_then(|h| match self.query.as_deref() {
            Some(q) if view.is_query_param_repeated(q) => Err(Repeated),
            _ => Ok(h),
        }) else {
            return Verdict::Respond(Rejection::bad_request(KIND, "repeated api key"));
        };
        let from_query = self
            .query
            .as_deref()
            .and_then(|q| view.query_param(q))
            .map(str::as_bytes);
        // A key in the header and another in the query (even after a `;`, see
        // `query_param_values`): the gateway would check the header, and an upstream reading
        // the parameter take the other for the caller's key.
        let header = header.map(HeaderValue::as_bytes);
        if let (Some(h), Some(q)) = (header, self.query.as_deref()) {
            if view.query_param_values(q).any(|v| v.as_bytes() != h) {
                return Verdict::Respond(Rejection::bad_request(KIND, "repeated api key"));
            }
        }
        let presented = header.or(from_query).filter(|k| !k.is_empty());
        let Some(presented) = presented else {
            return Verdict::Respond(Rejection::unauthorized(KIND, "missing api key"));
        };
        let Some(entry) = directory.key(&KeyHash::of(presented)) else {
            return Verdict::Respond(Rejection::unauthorized(KIND, "invalid api key"));
        };
        if entry.revoked {
            return Verdict::Respond(Rejection::unauthorized(KIND, "api key revoked"));
        }
        if entry.expires.is_some_and(|e| e <= now_secs) {
            return Verdict::Respond(Rejection::unauthorized(KIND, "api key expired"));
        }
        crate::key_usage::touch(&entry.last_used, now_secs);
        identify(state, &entry.consumer, KIND)
    }
}

/// Records `consumer` as the caller. Two auth policies of one route naming different
/// consumers is a 401: one request speaks for one consumer.
pub(crate) fn identify(
    state: &mut RequestState,
    consumer: &Arc<Consumer>,
    kind: &'static str,
) -> Verdict {
    match &state.consumer {
        Some(known) if known.id() != consumer.id() => Verdict::Respond(Rejection::unauthorized(
            kind,
            "credentials name different consumers",
        )),
        Some(_) => Verdict::Continue,
        None => {
            state.consumer = Some(Arc::clone(consumer));
            Verdict::Continue
        }
    }
}
