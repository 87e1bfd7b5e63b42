//! `headers`: edits on the request to the upstream and on the response to the client,
//! applied in the order remove, set, add. `set` replaces whatever the client sent under
//! the name; `add` appends after the client's values (a client's `X-Role: admin` and an
//! added `reader` both reach the upstream): use `set` (or `remove` first) for a header the
//! upstream trusts.
//!
//! On the request, a client header that differs from a name the policy removes, sets or
//! adds only by `_` against `-` (`x_user_id` for `x-user-id`) is dropped too: CGI-style
//! upstreams (PHP, WSGI, CGI) read both as `HTTP_X_USER_ID`, so the client's could stand
//! in for, or shadow, the policy's.

use http::{HeaderName, HeaderValue};

use crate::problem::{Problem, Problems};
use crate::request::HeaderSink;
use crate::spec::HeaderEditsSpec;

pub use crate::spec::HeadersSpec;

/// One direction's compiled header edits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderEdits {
    pub remove: Vec<HeaderName>,
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderEdits {
    pub fn compile(spec: &HeaderEditsSpec) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::new();
        let mut pairs = |field: &str, map: &std::collections::BTreeMap<String, String>| {
            map.iter()
                .filter_map(|(name, value)| {
                    match (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) {
                        (Ok(n), Ok(v)) => Some((n, v)),
                        _ => {
                            p.push(
                                format!("{field}.{name}"),
                                "must be a valid header name and value",
                            );
                            None
                        }
                    }
                })
                .collect::<Vec<_>>()
        };
        let set = pairs("set", &spec.set);
        let add = pairs("add", &spec.add);
        let remove = spec
            .remove
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let parsed = HeaderName::from_bytes(name.as_bytes()).ok();
                if parsed.is_none() {
                    p.push(format!("remove[{i}]"), "must be a valid header name");
                }
                parsed
            })
            .collect();
        if p.is_empty() {
            Ok(Self { remove, set, add })
        } else {
            Err(p.into_vec())
        }
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Applies the edits to a request: drops the client's headers whose names are
    /// underscore aliases of the edited names (see the module doc), then [`Self::apply`].
    pub fn apply_to_request<S: HeaderSink + ?Sized>(&self, sink: &mut S) {
        let edited = || {
            self.remove
                .iter()
                .chain(self.set.iter().map(|(n, _)| n))
                .chain(self.add.iter().map(|(n, _)| n))
        };
        sink.remove_matching(&|client: &HeaderName| {
            edited().any(|name| is_cgi_alias(client.as_str(), name.as_str()))
        });
        self.apply(sink);
    }

    /// Applies the edits: remove, then set (replace), then add (append).
    pub fn apply<S: HeaderSink + ?Sized>(&self, sink: &mut S) {
        for name in &self.remove {
            sink.remove_header(name);
        }
        for (name, value) in &self.set {
            sink.set_header(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            sink.append_header(name.clone(), value.clone());
        }
    }
}

/// Whether `client` is another name than `name` that a CGI-style upstream reads as the
/// same variable (`-` and `_` both become `_`; names here are already lower case).
pub fn is_cgi_alias(client: &str, name: &str) -> bool {
    client.len() == name.len()
        && client != name
        && client
            .bytes()
            .zip(name.bytes())
            .all(|(c, n)| c == n || matches!((c, n), (b'_', b'-') | (b'-', b'_')))
}

/// A compiled `headers` policy.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub request: HeaderEdits,
    pub response: HeaderEdits,
}

impl Headers {
    pub fn compile(spec: &HeadersSpec) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::new();
        let request = HeaderEdits::compile(&spec.request).unwrap_or_else(|e| {
            p.extend_under("request", e);
            HeaderEdits::default()
        });
        let response = HeaderEdits::compile(&spec.response).unwrap_or_else(|e| {
            p.extend_under("response", e);
            HeaderEdits::default()
        });
        if p.is_empty() {
            Ok(Self { request, response })
        } else {
            Err(p.into_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscore_and_dash_spellings_are_cgi_aliases() {
        assert!(is_cgi_alias("x_user_id", "x-user-id"));
        assert!(is_cgi_alias("x-user_id", "x-user-id"));
        assert!(is_cgi_alias("x-user-id", "x_user_id"));
        assert!(!is_cgi_alias("x-user-id", "x-user-id"));
        assert!(!is_cgi_alias("x_user_ids", "x-user-id"));
        assert!(!is_cgi_alias("x_user_ix", "x-user-id"));
    }
}
