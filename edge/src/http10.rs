//! HTTP/1.0 clients never get chunked coding (RFC 9112 6.1). An answer from an HTTP/2
//! upstream has no length, and Pingora's `proxy_h2` marks it chunked after the proxy's
//! own response filter has run; this downstream module, the last step before an answer is
//! written, takes the coding off for an HTTP/1.0 client, whose answer then ends with its
//! connection (the gateway's response filter has said the connection closes).

use std::any::Any;

use async_trait::async_trait;
use http::header::TRANSFER_ENCODING;
use http::Version;
use pingora_core::modules::http::{HttpModule, HttpModuleBuilder, Module};
use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// Registers [`Http10`] for every request.
pub struct Http10Builder;

impl HttpModuleBuilder for Http10Builder {
    fn init(&self) -> Module {
        Box::new(Http10 { old_client: false })
    }
}

/// One request's state: whether its client speaks HTTP/1.0 (or 0.9).
struct Http10 {
    old_client: bool,
}

#[async_trait]
impl HttpModule for Http10 {
    async fn request_header_filter(&mut self, req: &mut RequestHeader) -> Result<()> {
        self.old_client = matches!(req.version, Version::HTTP_10 | Version::HTTP_09);
        Ok(())
    }

    async fn response_header_filter(
        &mut self,
        resp: &mut ResponseHeader,
        _end_of_stream: bool,
    ) -> Result<()> {
        if self.old_client {
            resp.remove_header(&TRANSFER_ENCODING);
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
