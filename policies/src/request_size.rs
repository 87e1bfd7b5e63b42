//! `request_size`: 413 when `Content-Length` is over the limit. A body without a length
//! (chunked) is counted by the edge against [`crate::Chain::max_body_bytes`].

use crate::problem::Problem;
use crate::request::RequestView;
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::RequestSizeSpec;

/// A compiled `request_size` policy.
#[derive(Debug, Clone, Copy)]
pub struct RequestSize {
    max_bytes: u64,
}

impl RequestSize {
    pub fn compile(spec: &RequestSizeSpec) -> Result<Self, Vec<Problem>> {
        if spec.max_bytes == 0 {
            return Err(vec![Problem::new("max_bytes", "must be > 0")]);
        }
        Ok(Self {
            max_bytes: spec.max_bytes,
        })
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// 413 when the declared length is over the limit. An unparsable length is left to the
    /// HTTP layer, which refuses it.
    pub fn on_request(&self, view: &RequestView<'_>) -> Verdict {
        let declared = view
            .header_str(&http::header::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(len) if len > self.max_bytes => {
                Verdict::Respond(Rejection::payload_too_large("request_size"))
            }
            _ => Verdict::Continue,
        }
    }
}
