//! Request ids: the client's `x-request-id` when it is sane, else a new one made of a
//! per-process random prefix and an atomic counter (unique within the process, unguessable
//! across processes, no syscall per request).

use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderName, HeaderValue};

/// The header that carries the id both ways.
pub const HEADER: &str = "x-request-id";
/// [`HEADER`], parsed.
pub const NAME: HeaderName = HeaderName::from_static(HEADER);

/// Longest client-supplied id that is kept; longer ones are replaced.
pub const MAX_LEN: usize = 128;

/// A request id, held as the header value it travels in: kept from the client without a
/// copy, sent upstream and back by reference count.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever stored (see `is_acceptable` and `generate`).
        self.0.to_str().unwrap_or_default()
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId(HeaderValue::from_static(""))
    }
}

/// Generates request ids. One per process; cheap to share.
#[derive(Debug)]
pub struct RequestIds {
    prefix: [u8; 16],
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let mut prefix = [0u8; 16];
        let random = rand::random::<u64>();
        for (i, b) in prefix.iter_mut().enumerate() {
            *b = HEX[((random >> (60 - 4 * i)) & 0xf) as usize];
        }
        RequestIds {
            prefix,
            counter: AtomicU64::new(0),
        }
    }

    /// The client's id when it is 1..=[`MAX_LEN`] visible ASCII characters, else a new one.
    pub fn keep_or_generate(&self, client: Option<&HeaderValue>) -> RequestId {
        match client {
            Some(id) if is_acceptable(id.as_bytes()) => RequestId(id.clone()),
            _ => self.generate(),
        }
    }

    /// A new id: `<16 hex prefix>-<counter in hex>`.
    pub fn generate(&self) -> RequestId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 33];
        buf[..16].copy_from_slice(&self.prefix);
        buf[16] = b'-';
        let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
        for i in 0..digits {
            buf[17 + i] = HEX[((n >> (4 * (digits - 1 - i))) & 0xf) as usize];
        }
        let bytes = bytes::Bytes::from_owner(Generated {
            buf,
            len: 17 + digits,
        });
        // Hex digits and '-' are always a valid header value.
        RequestId(HeaderValue::from_maybe_shared(bytes).unwrap_or(HeaderValue::from_static("-")))
    }
}

/// A generated id's bytes, owned by its `Bytes`: one allocation, and the clones for the
/// upstream request and the response only count references (a copied `Bytes` allocates
/// again on its first clone).
struct Generated {
    buf: [u8; 33],
    len: usize,
}

impl AsRef<[u8]> for Generated {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_client_id() {
        let ids = RequestIds::new();
        let client = HeaderValue::from_static("abc-123");
        assert_eq!(ids.keep_or_generate(Some(&client)).as_str(), "abc-123");
    }

    #[test]
    fn replaces_empty_long_or_binary_client_ids() {
        let ids = RequestIds::new();
        for bad in [
            &b""[..],
            &[b'a'; MAX_LEN + 1][..],
            &b"a b"[..],
            &b"\x01x"[..],
        ] {
            let client = HeaderValue::from_bytes(bad).unwrap_or(HeaderValue::from_static(""));
            let id = ids.keep_or_generate(Some(&client));
            assert_ne!(id.as_str().as_bytes(), bad);
            assert!(id.as_str().as_bytes().starts_with(&ids.prefix));
        }
    }

    #[test]
    fn generated_ids_are_unique_and_counted_in_hex() {
        let ids = RequestIds::new();
        let a = ids.generate().as_str().to_owned();
        let b = ids.generate().as_str().to_owned();
        assert_ne!(a, b);
        assert!(a.ends_with("-0"), "{a}");
        assert!(b.ends_with("-1"), "{b}");
        ids.counter.store(255, Ordering::Relaxed);
        assert!(ids.generate().as_str().ends_with("-ff"));
        ids.counter.store(u64::MAX, Ordering::Relaxed);
        assert!(ids.generate().as_str().ends_with("-ffffffffffffffff"));
    }
}
