//! The answer's body on its way to the client: the route's `compression` encoder and the
//! gRPC-Web bridge (`compress.rs`, `grpc_web.rs`), set up in `response_filter`.

use bytes::Bytes;
use pingora_core::{Error, ErrorType};

use super::{Gateway, RequestCtx};

impl Gateway {
    /// Encodes (or base64-encodes, for a gRPC-Web text call) one chunk of the answer.
    pub fn response_body_filter(
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<()> {
        if let Some(bridge) = &mut ctx.grpc_web {
            bridge.response_body(body, end);
        }
        if let Some(encoder) = &mut ctx.encoder {
            let input = body.as_deref().unwrap_or_default();
            if input.is_empty() && !end {
                return Ok(());
            }
            let out = encoder.encode(input, end).map_err(|e| {
                Error::because(ErrorType::InternalError, "compressing the answer", e)
            })?;
            *body = Some(out);
            if end {
                ctx.encoder = None;
            }
        }
        Ok(())
    }

    /// The end of an answer that ends with trailers (HTTP/2 upstreams): a gRPC-Web call's
    /// trailer frame, or the end of an encoded body (the trailers then end with it: they
    /// cannot follow a body that a filter ended). `None`: the trailers pass.
    pub fn response_trailer_filter(
        trailers: &mut http::HeaderMap,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<Option<Bytes>> {
        if let Some(bridge) = &mut ctx.grpc_web {
            if let Some(frame) = bridge.trailers(trailers)? {
                return Ok(Some(frame));
            }
        }
        let Some(mut encoder) = ctx.encoder.take() else {
            return Ok(None);
        };
        encoder
            .encode(b"", true)
            .map(Some)
            .map_err(|e| Error::because(ErrorType::InternalError, "compressing the answer", e))
    }
}
