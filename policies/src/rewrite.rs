//! `rewrite`: a regex substitution on the request path before it goes upstream.

use regex::Regex;

use crate::problem::Problem;

pub use crate::spec::RewriteSpec;

/// A compiled `rewrite` policy.
#[derive(Debug, Clone)]
pub struct Rewrite {
    regex: Regex,
    replacement: String,
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

    /// The rewritten path (first match replaced; `$1`, `${name}` expand), or `None` when the
    /// regex does not match.
    pub fn apply(&self, path: &str) -> Option<String> {
        self.regex.is_match(path).then(|| {
            self.regex
                .replacen(path, 1, self.replacement.as_str())
                .into_owned()
        })
    }
}
