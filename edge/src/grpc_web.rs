//! `grpc_web`: a browser's gRPC-Web call over HTTP/1.1 (or HTTP/2) bridged to the route's
//! gRPC upstream (`h2`/`h2c`). The protocol is gRPC's PROTOCOL-WEB.md.
//!
//! Pingora's bridge (`pingora_core::protocols::http::bridge::grpc_web::GrpcWebCtx`) does
//! the binary flavour's answer: the header (`application/grpc` -> `application/grpc-web`,
//! chunked) and the trailers turned into a trailer frame (`0x80`, length, `name:value\r\n`
//! lines) at the end of the body. Its request side is done here instead, on the request
//! to the upstream (it would turn `application/grpc-web-text` into `application/grpc-text`),
//! and the text flavour (`application/grpc-web-text`: the body in base64 both ways, its
//! request possibly in separately padded pieces) is done here too. The bridge runs in the
//! gateway's phases (not as a downstream module), so it is enabled only on a route with
//! `grpc_web`, and only after the route's policies let the call through; refusals are
//! answered by `respond.rs` as gRPC-Web (status in the header).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;
use pingora_core::protocols::http::bridge::grpc_web::GrpcWebCtx;
use pingora_core::{Error, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};

use crate::grpc::Flavour;

const GRPC: &str = "application/grpc";
const GRPC_WEB: &str = "application/grpc-web";
const GRPC_WEB_TEXT: &str = "application/grpc-web-text";

/// One call's bridge.
#[derive(Debug)]
pub struct Bridge {
    ctx: GrpcWebCtx,
    /// The text flavour's base64 state; `None` for binary gRPC-Web.
    text: Option<Text>,
}

#[derive(Debug, Default)]
struct Text {
    /// Request bytes of an incomplete base64 quantum (fewer than 4).
    request_rest: Vec<u8>,
    /// Answer bytes not yet encoded (fewer than 3), so that the base64 stream has no
    /// padding but at its end.
    response_rest: Vec<u8>,
}

impl Bridge {
    /// The bridge of a call of `flavour`; `None` for plain gRPC (nothing to bridge).
    pub fn new(flavour: Flavour) -> Option<Bridge> {
        let text = match flavour {
            Flavour::Grpc => return None,
            Flavour::Web => None,
            Flavour::WebText => Some(Text::default()),
        };
        let mut ctx = GrpcWebCtx::default();
        ctx.init();
        Some(Bridge { ctx, text })
    }

    /// The request to the upstream becomes a gRPC one: its `content-type`
    /// (`application/grpc-web[-text][+proto]` -> `application/grpc[+proto]`), `te:
    /// trailers`, and no end of stream on the header (gRPC ends it with a DATA frame). A
    /// text call's length changes once decoded: it is sent without one.
    pub fn upstream_request(&mut self, req: &mut RequestHeader) -> pingora_core::Result<()> {
        let content_type = req
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let rest = content_type
            .strip_prefix(GRPC_WEB_TEXT)
            .or_else(|| content_type.strip_prefix(GRPC_WEB))
            .unwrap_or("");
        req.insert_header(CONTENT_TYPE, format!("{GRPC}{rest}"))?;
        req.insert_header("te", "trailers")?;
        if self.text.is_some() {
            req.remove_header(&CONTENT_LENGTH);
        }
        req.set_send_end_stream(false);
        self.ctx = GrpcWebCtx::Upgrade;
        Ok(())
    }

    /// Decodes a text call's request body (base64, in pieces of any size); a binary
    /// call's passes as it is. `Err`: the body is not base64 (the call is refused).
    pub fn request_body(
        &mut self,
        body: &mut Option<Bytes>,
        end: bool,
    ) -> pingora_core::Result<()> {
        let Some(text) = &mut self.text else {
            return Ok(());
        };
        let mut input = std::mem::take(&mut text.request_rest);
        if let Some(b) = body.as_ref() {
            input.extend(b.iter().filter(|c| !c.is_ascii_whitespace()));
        }
        let whole = if end {
            input.len()
        } else {
            input.len() / 4 * 4
        };
        text.request_rest = input.split_off(whole);
        let decoded = decode_pieces(&input).ok_or_else(|| {
            Error::explain(
                ErrorType::HTTPStatus(400),
                "gRPC-Web text body is not base64",
            )
        })?;
        *body = Some(decoded);
        Ok(())
    }

    /// The upstream's answer header as the gRPC-Web client reads it (an answer that is
    /// not gRPC passes as it is, and the bridge stops).
    pub fn response_header(&mut self, resp: &mut ResponseHeader) -> pingora_core::Result<()> {
        self.ctx.response_header_filter(resp);
        if self.ctx != GrpcWebCtx::Trailers {
            return Ok(());
        }
        if self.text.is_some() {
            let value = resp
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(GRPC_WEB)
                .replacen(GRPC_WEB, GRPC_WEB_TEXT, 1);
            resp.insert_header(CONTENT_TYPE, value)?;
        }
        Ok(())
    }

    /// Whether the answer is being bridged (its header was a gRPC one).
    pub fn is_active(&self) -> bool {
        self.ctx == GrpcWebCtx::Trailers
    }

    /// A text call's answer body goes out in base64 (held back by up to 2 bytes until
    /// the end, so the stream is padded only there).
    pub fn response_body(&mut self, body: &mut Option<Bytes>, end: bool) {
        if !self.is_active() {
            return;
        }
        let Some(text) = &mut self.text else {
            return;
        };
        let mut input = std::mem::take(&mut text.response_rest);
        if let Some(b) = body.as_ref() {
            input.extend_from_slice(b);
        }
        let whole = if end {
            input.len()
        } else {
            input.len() / 3 * 3
        };
        text.response_rest = input.split_off(whole);
        *body = Some(Bytes::from(STANDARD.encode(&input)));
    }

    /// The upstream's trailers as the gRPC-Web trailer frame that ends the body (base64
    /// for a text call, after what was held back). `None` when the answer is not bridged.
    pub fn trailers(&mut self, trailers: &mut HeaderMap) -> pingora_core::Result<Option<Bytes>> {
        if !self.is_active() {
            return Ok(None);
        }
        let Some(frame) = self.ctx.response_trailer_filter(trailers)? else {
            return Ok(None);
        };
        let Some(text) = &mut self.text else {
            return Ok(Some(frame));
        };
        let mut input = std::mem::take(&mut text.response_rest);
        input.extend_from_slice(&frame);
        Ok(Some(Bytes::from(STANDARD.encode(&input))))
    }
}

/// Decodes base64 made of pieces that may each end with padding (`AAA=BBBB`): every
/// quantum of 4 with `=` ends a piece. `None`: not base64.
fn decode_pieces(input: &[u8]) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(input.len() / 4 * 3);
    let mut start = 0;
    for (i, quantum) in input.chunks(4).enumerate() {
        let end = i * 4 + quantum.len();
        if quantum.contains(&b'=') || end == input.len() {
            let decoded = STANDARD.decode(&input[start..end]).ok()?;
            out.extend_from_slice(&decoded);
            start = end;
        }
    }
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn decodes_base64_in_pieces_and_split_anywhere() {
        let frame = b"\x00\x00\x00\x00\x05hello";
        let one = STANDARD.encode(frame);
        let two = format!(
            "{}{}",
            STANDARD.encode(&frame[..4]),
            STANDARD.encode(&frame[4..])
        );
        for text in [one, two] {
            for cut in 0..text.len() {
                let mut b = Bridge::new(Flavour::WebText).expect("bridge");
                let mut out = Vec::new();
                for (piece, end) in [(&text[..cut], false), (&text[cut..], true)] {
                    let mut body = Some(Bytes::copy_from_slice(piece.as_bytes()));
                    b.request_body(&mut body, end).expect("base64");
                    out.extend_from_slice(&body.expect("body"));
                }
                assert_eq!(out, frame, "{text} cut at {cut}");
            }
        }
        let mut b = Bridge::new(Flavour::WebText).expect("bridge");
        assert!(b
            .request_body(&mut Some(Bytes::from_static(b"!!!!")), true)
            .is_err());
    }

    #[test]
    fn encodes_the_answer_and_its_trailers_as_one_base64_stream() {
        let mut b = Bridge::new(Flavour::WebText).expect("bridge");
        let mut req = RequestHeader::build("POST", b"/pkg.Svc/Call", None).expect("request");
        req.insert_header(CONTENT_TYPE, "application/grpc-web-text+proto")
            .expect("header");
        req.insert_header(CONTENT_LENGTH, "12").expect("header");
        b.upstream_request(&mut req).expect("request");
        assert_eq!(req.headers[CONTENT_TYPE], "application/grpc+proto");
        assert!(!req.headers.contains_key(CONTENT_LENGTH));
        let mut resp = ResponseHeader::build(200, None).expect("response");
        resp.insert_header(CONTENT_TYPE, "application/grpc+proto")
            .expect("header");
        b.response_header(&mut resp).expect("header");
        assert_eq!(
            resp.headers[CONTENT_TYPE],
            "application/grpc-web-text+proto"
        );
        let mut sent = Vec::new();
        for piece in [&b"\x00\x00\x00"[..], b"\x00\x02h", b"i"] {
            let mut body = Some(Bytes::copy_from_slice(piece));
            b.response_body(&mut body, false);
            sent.extend_from_slice(&body.expect("body"));
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        sent.extend_from_slice(&b.trailers(&mut trailers).expect("frame").expect("some"));
        let decoded = STANDARD.decode(&sent).expect("one base64 stream");
        assert_eq!(&decoded[..7], b"\x00\x00\x00\x00\x02hi");
        assert_eq!(decoded[7], 0x80);
        assert_eq!(&decoded[12..], b"grpc-status:0\r\n");
    }

    #[test]
    fn plain_grpc_is_not_bridged_and_non_grpc_answers_pass() {
        assert!(Bridge::new(Flavour::Grpc).is_none());
        let mut b = Bridge::new(Flavour::Web).expect("bridge");
        let mut req = RequestHeader::build("POST", b"/x", None).expect("request");
        req.insert_header(CONTENT_TYPE, "application/grpc-web")
            .expect("header");
        b.upstream_request(&mut req).expect("request");
        let mut resp = ResponseHeader::build(404, None).expect("response");
        resp.insert_header(CONTENT_TYPE, "text/html")
            .expect("header");
        b.response_header(&mut resp).expect("header");
        assert!(!b.is_active());
        assert_eq!(resp.headers[CONTENT_TYPE], "text/html");
        assert_eq!(b.trailers(&mut HeaderMap::new()).expect("none"), None);
    }
}
