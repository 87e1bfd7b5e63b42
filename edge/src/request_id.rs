//! Request ids: the client's `x-request-id` when it is sane, else a new one made of a
//! per-process random prefix and an atomic counter (unique within the process, unguessable
//! across processes, no syscall per request).

use std::sync::atomic::{AtomicU64, Ordering};

/// The header that carries the id both ways.
pub const HEADER: &str = "x-request-id";

/// Longest client-supplied id that is kept; longer ones are replaced.
pub const MAX_LEN: usize = 128;

/// Generates request ids. One per process; cheap to share.
#[derive(Debug)]
pub struct RequestIds {
    prefix: String,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        RequestIds {
            prefix: format!("{:016x}", rand::random::<u64>()),
            counter: AtomicU64::new(0),
        }
    }

    /// The client's id when it is 1..=[`MAX_LEN`] visible ASCII characters, else a new one.
    pub fn keep_or_generate(&self, client: Option<&[u8]>) -> String {
        match client {
            Some(id) if is_acceptable(id) => String::from_utf8_lossy(id).into_owned(),
            _ => self.generate(),
        }
    }

    /// A new id: `<16 hex prefix>-<counter in hex>`.
    pub fn generate(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.prefix.len() + 17);
        id.push_str(&self.prefix);
        id.push('-');
        push_hex(&mut id, n);
        id
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

fn push_hex(out: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    for b in &buf[i..] {
        out.push(char::from(*b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_client_id() {
        let ids = RequestIds::new();
        assert_eq!(ids.keep_or_generate(Some(b"abc-123")), "abc-123");
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
            let id = ids.keep_or_generate(Some(bad));
            assert_ne!(id.as_bytes(), bad);
            assert!(id.starts_with(&ids.prefix));
        }
    }

    #[test]
    fn generated_ids_are_unique_and_counted_in_hex() {
        let ids = RequestIds::new();
        let a = ids.generate();
        let b = ids.generate();
        assert_ne!(a, b);
        assert!(a.ends_with("-0"), "{a}");
        assert!(b.ends_with("-1"), "{b}");
        ids.counter.store(255, Ordering::Relaxed);
        assert!(ids.generate().ends_with("-ff"));
    }
}
