//! `acl`: allow or deny the identified consumer by id or group name. Deny wins; a non-empty
//! allow list admits only those it names.

use crate::problem::Problem;
use crate::request::RequestState;
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::AclSpec;

const KIND: &str = "acl";

/// A compiled `acl` policy.
#[derive(Debug, Clone)]
pub struct Acl {
    allow: Vec<String>,
    deny: Vec<String>,
}

impl Acl {
    pub fn compile(spec: &AclSpec) -> Result<Self, Vec<Problem>> {
        if spec.allow.is_empty() && spec.deny.is_empty() {
            return Err(vec![Problem::new(
                "allow",
                "allow or deny must name at least one consumer or group",
            )]);
        }
        Ok(Self {
            allow: spec.allow.clone(),
            deny: spec.deny.clone(),
        })
    }

    /// 403 when no consumer was identified, when it is denied, or when an allow list exists
    /// and does not name it.
    pub fn on_request(&self, state: &RequestState) -> Verdict {
        let Some(consumer) = state.consumer() else {
            return Verdict::Respond(Rejection::forbidden(KIND, "no consumer identified"));
        };
        if self.deny.iter().any(|n| consumer.is_named(n)) {
            return Verdict::Respond(Rejection::forbidden(KIND, "consumer not allowed"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|n| consumer.is_named(n)) {
            return Verdict::Respond(Rejection::forbidden(KIND, "consumer not allowed"));
        }
        Verdict::Continue
    }
}
