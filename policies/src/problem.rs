//! A validation problem: what is wrong and where, as a path into the spec.

use serde::{Deserialize, Serialize};

/// One thing wrong with a spec. `path` points at the field (`policies[1].burst`); it is
/// relative to the object being validated and callers prefix it as they nest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same problem seen from one level up: `burst` under `policies[1]` becomes
    /// `policies[1].burst`.
    pub fn under(mut self, prefix: &str) -> Self {
        if prefix.is_empty() {
            return self;
        }
        self.path = if self.path.is_empty() {
            prefix.to_owned()
        } else if self.path.starts_with('[') {
            format!("{prefix}{}", self.path)
        } else {
            format!("{prefix}.{}", self.path)
        };
        self
    }
}

/// Collects problems while walking a spec.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    /// Adds problems found in a nested object, prefixing their paths.
    pub fn extend_under(&mut self, prefix: &str, problems: impl IntoIterator<Item = Problem>) {
        self.0.extend(problems.into_iter().map(|p| p.under(prefix)));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

/// Whether `id` is a valid object id: `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// Pushes a problem for `path` when `id` is not a valid id.
pub fn check_id(problems: &mut Problems, path: &str, id: &str) {
    if !is_valid_id(id) {
        problems.push(path, "must match [a-z0-9][a-z0-9_-]{0,63}");
    }
}
