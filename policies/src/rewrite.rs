//! `rewrite`: a regex substitution on the request path before it goes upstream. A result
//! that is not an origin-form path (it does not start with `/`: `*`, a host name) is an
//! error, and the edge refuses the request (400) rather than send it.

use regex::Regex;

use crate::problem::Problem;

pub use crate::spec::RewriteSpec;

/// A compiled `rewrite` policy.
#[derive(Debug, Clone)]
pub struct Rewrite {
    regex: Regex,
    replacement: String,
}

/// Why a rewrite's result cannot be sent upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The result does not start with `/`.
    #[error("rewritten path {result:?} does not start with /")]
    NotAPath { result: String },
}

impl Rewrite {
    pub fn compile(spec: &RewriteSpec) -> Result<Self, Vec<Problem>> {
        let regex = Regex::new(&spec.regex)
            .map_err(|e| vec![Problem::new("regex", format!("invalid regex: {e}"))])?;
        Ok(Self {
            regex,
            replacement: spec.replacement.clone(),
        })
    }

    /// The rewritten path (first match replaced; `$1`, `${name}` expand), `Ok(None)` when
    /// the regex does not match, `Err` when the result does not start with `/`.
    pub fn apply(&self, path: &str) -> Result<Option<String>, RewriteError> {
        if !self.regex.is_match(path) {
            return Ok(None);
        }
        let result = self
            .regex
            .replacen(path, 1, self.replacement.as_str())
            .into_owned();
        if result.is_empty() {
            // `^/svc(/.*)?$` to `$1` on `/svc`: the root, as the edge sends an empty path.
            Ok(Some("/".to_owned()))
        } else if result.starts_with('/') {
            Ok(Some(result))
        } else {
            Err(RewriteError::NotAPath { result })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(regex: &str, replacement: &str) -> Rewrite {
        Rewrite::compile(&RewriteSpec {
            regex: regex.into(),
            replacement: replacement.into(),
        })
        .expect("valid rewrite")
    }

    #[test]
    fn refuses_a_result_that_is_not_a_path() {
        let r = rewrite("^/to/(.*)$", "$1");
        assert_eq!(
            r.apply("/to/*"),
            Err(RewriteError::NotAPath { result: "*".into() })
        );
        assert_eq!(
            r.apply("/to/evil.example"),
            Err(RewriteError::NotAPath {
                result: "evil.example".into()
            })
        );
        assert_eq!(r.apply("/to//x"), Ok(Some("/x".into())));
        assert_eq!(r.apply("/to/"), Ok(Some("/".into())));
        assert_eq!(r.apply("/elsewhere"), Ok(None));
    }
}
