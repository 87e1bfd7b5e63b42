//! The upstream's response header as the client gets it: hop-by-hop fields removed,
//! framing the gateway will not relay refused, a body an HTTP/1.0 client can read.
//!
//! Pingora forwards the upstream's header as it came (it only rewrites `Connection` and,
//! for a body without a length, adds `Transfer-Encoding: chunked`); the request side is
//! cleaned by Pingora's upstream request policy (`upgrade::sanitize` mirrors it). This is
//! the response side. nginx never relays `Connection`, `Keep-Alive` or
//! `Transfer-Encoding` (it frames the body itself), and refuses a response whose header is
//! too large or whose `Content-Length` is not one number (502). nginx does pass the names
//! `Connection` lists, `Proxy-Connection`, `TE`, `Trailer` and `Upgrade` on; RFC 9110
//! 7.6.1 says a proxy must not, and this does not (`Upgrade` stays on a `101`).
//!
//! Cost: one pass over the fields, most of them passed on their name's length (measured:
//! some 40 ns for an answer of six fields, 15 ns of it the iteration itself, which the
//! 64 KiB cap needs anyway); anything else only when that pass found something to remove.

use http::{header, HeaderMap, HeaderName, StatusCode, Version};
use smallvec::SmallVec;

use crate::framing::{is_decimal, MAX_HEADER_BYTES};

/// Why an upstream's response header is not relayed (the client gets a 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseHeaderError {
    #[error("upstream response header of {size} bytes is over {MAX_HEADER_BYTES}")]
    TooLarge { size: usize },
    #[error("upstream content-length is not one number: {value}")]
    InvalidContentLength { value: String },
    /// A body framed by the connection closing (RFC 9112 6.3), which the gateway would
    /// relay as if it were framed, on a connection it keeps alive.
    #[error("upstream transfer-encoding does not end in chunked: {value}")]
    UnsupportedTransferEncoding { value: String },
}

/// Fields nominated by `Connection` that are kept all the same: the body's framing.
const KEPT: [HeaderName; 2] = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING];

/// Bits of what [`clean`]'s pass found.
const CONNECTION: u8 = 1;
const HOP_BY_HOP: u8 = 2;
const UPGRADE: u8 = 4;
const CHUNKED: u8 = 8;

/// Cleans the response header `h` of status `status` for a client that sent its request
/// in `client`'s version. Removes `Connection` and the names it lists, `Keep-Alive`,
/// `Proxy-Connection`, `TE`, `Trailer`, and `Upgrade` (the last two but on a `101`, whose
/// `Connection: upgrade` Pingora does not write itself). For an HTTP/1.0 (or 0.9) client,
/// which cannot read chunked coding, `Transfer-Encoding` goes too (and with it a
/// `Content-Length`, which it overrides): the body is then delimited by the connection
/// closing. Returns whether it is (the caller must then not keep the connection alive).
///
/// `Err`: the header is over [`MAX_HEADER_BYTES`], `Content-Length` is repeated or not
/// one number, or the last transfer coding is not `chunked` (nginx 1.22 frames such a
/// body by its `Content-Length` and drops the field; later nginx answers 502); `h` is
/// left as it was.
pub fn clean(
    h: &mut HeaderMap,
    status: StatusCode,
    client: Version,
) -> Result<bool, ResponseHeaderError> {
    let mut size = 0;
    let mut found = 0u8;
    let mut bad_length = None;
    let mut lengths = 0;
    for (name, value) in h.iter() {
        let name = name.as_str();
        size += name.len() + value.len() + 4;
        // Only names of these lengths can be one of the below: most fields are passed by
        // one comparison of lengths.
        if !matches!(name.len(), 2 | 7 | 10 | 14 | 16 | 17) {
            continue;
        }
        match name {
            "content-length" => {
                lengths += 1;
                if lengths > 1 || !is_decimal(value.as_bytes()) {
                    bad_length = Some(value);
                }
            }
            "connection" => found |= CONNECTION,
            "keep-alive" | "proxy-connection" | "te" | "trailer" => found |= HOP_BY_HOP,
            "upgrade" => found |= UPGRADE,
            "transfer-encoding" => found |= CHUNKED,
            _ => {}
        }
    }
    if size > MAX_HEADER_BYTES {
        return Err(ResponseHeaderError::TooLarge { size });
    }
    if let Some(value) = bad_length {
        return Err(ResponseHeaderError::InvalidContentLength {
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        });
    }
    if found & CHUNKED != 0 {
        if let Some(value) = h
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
            .filter(|v| !ends_in_chunked(v.as_bytes()))
        {
            return Err(ResponseHeaderError::UnsupportedTransferEncoding {
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            });
        }
    }
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if found & CONNECTION != 0 && !switching {
        let nominated: SmallVec<[HeaderName; 4]> = h
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
            .filter(|n| !KEPT.contains(n))
            .collect();
        for name in nominated {
            h.remove(name);
        }
        h.remove(header::CONNECTION);
    }
    if found & HOP_BY_HOP != 0 {
        for name in ["keep-alive", "proxy-connection", "te", "trailer"] {
            h.remove(name);
        }
    }
    if found & UPGRADE != 0 && !switching {
        h.remove(header::UPGRADE);
    }
    if lengths > 0 && (status == StatusCode::NO_CONTENT || status.is_informational()) {
        // RFC 9110 8.6: no Content-Length in a 1xx or 204 (an upstream's would make a
        // client wait for a body that never comes, or read the next answer as one).
        h.remove(header::CONTENT_LENGTH);
    }
    let close = found & CHUNKED != 0 && matches!(client, Version::HTTP_10 | Version::HTTP_09);
    if close {
        h.remove(header::TRANSFER_ENCODING);
        h.remove(header::CONTENT_LENGTH);
    }
    Ok(close)
}

/// Whether the last transfer coding of a `Transfer-Encoding` line is `chunked`.
fn ends_in_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests;
