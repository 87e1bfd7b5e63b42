//! `headers`: edits on the request to the upstream and on the response to the client,
//! applied in the order remove, set, add.

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
