//! The canonical form of a request path: what the router judges and what the upstream
//! gets, so that no spelling of a path reaches a route other than the one it names.
//!
//! Without it, `GET /pub/../admin/secret` matches an open `/pub` route while the upstream,
//! resolving dot segments as most servers do, serves `/admin/secret`: a walk past the
//! `/admin` route's authentication. nginx and Envoy normalise the path before matching for
//! the same reason.
//!
//! The rule (RFC 3986 6.2.2 and 5.2.4), applied to the path only (never to the query):
//! 1. percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; every
//!    other escape is kept, with upper-case hex digits;
//! 2. bytes a path may not hold as they are (controls, spaces, `"<>^`{|}`, non-ASCII) are
//!    percent-encoded;
//! 3. `.` segments are removed and `..` segments remove the one before them;
//! 4. repeated slashes are merged (`//` is `/`); a trailing slash stays.
//!
//! Refused (400): an encoded `/` or `\` (`%2F`, `%5C`), a raw `\` (Windows servers take it
//! for `/`), an encoded NUL, a malformed escape, a `..` that climbs above the root, and a
//! segment `.;...` or `..;...` (Java servers strip the `;` part and then climb).

use std::fmt;

/// Why a path has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%2F` or `%5C`, or a raw `\`: a separator the router cannot see.
    EncodedSeparator,
    /// `%00`.
    EncodedNul,
    /// `%` not followed by two hex digits.
    MalformedEscape,
    /// More `..` segments than segments before them.
    AboveRoot,
    /// A dot segment with a `;` parameter (`..;x`).
    DotSegmentParameter,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::EncodedSeparator => "the path holds an encoded or backward slash",
            PathError::EncodedNul => "the path holds an encoded NUL",
            PathError::MalformedEscape => "the path holds a malformed percent-escape",
            PathError::AboveRoot => "the path climbs above the root",
            PathError::DotSegmentParameter => "the path holds a dot segment with a parameter",
        })
    }
}

impl std::error::Error for PathError {}

/// Byte classes of a path: `PLAIN` may stand as it is (pchar but `%`, RFC 3986 3.3),
/// `UNRESERVED` is also decoded from an escape.
const PLAIN: u8 = 1;
const UNRESERVED: u8 = 2;

const CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            table[b] = PLAIN | UNRESERVED;
        } else if matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        ) {
            table[b] = PLAIN;
        }
        b += 1;
    }
    table
};

/// The canonical form of `path` (the path of a request target, without its query), or
/// `Ok(None)` when `path` is already canonical, which is the common case and costs one
/// scan without allocating. A path that does not start with `/` (`*`) is left alone: it
/// matches no route.
pub fn canonical_path(path: &[u8]) -> Result<Option<String>, PathError> {
    if path.first() != Some(&b'/') || is_canonical(path) {
        return Ok(None);
    }
    let canonical = canonicalize(path)?;
    Ok((canonical.as_bytes() != path).then_some(canonical))
}

/// Whether a segment of `path` is a dot segment (`.`, `..`, also spelled `%2e`, or with a
/// `;` parameter): one an upstream resolves. A canonical path has none, but a path built
/// from one (a `rewrite` replacement around a capture) may.
pub fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let core = segment.split(';').next().unwrap_or_default();
        let mut rest = core;
        let mut dots = 0;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                rest = r;
            } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%2e") {
                rest = &rest[3..];
            } else {
                return false;
            }
            dots += 1;
        }
        matches!(dots, 1 | 2)
    })
}

/// Whether `path` (starting with `/`) is canonical by a quick look: only plain bytes and
/// slashes, no empty segment and no segment starting with a dot. `false` may still be
/// canonical (`/%20`, `/.well-known`): [`canonicalize`] decides.
fn is_canonical(path: &[u8]) -> bool {
    let mut previous = b'/';
    for &b in &path[1..] {
        if previous == b'/' && (b == b'/' || b == b'.') {
            return false;
        }
        if b != b'/' && CLASSES[usize::from(b)] & PLAIN == 0 {
            return false;
        }
        previous = b;
    }
    true
}

fn canonicalize(path: &[u8]) -> Result<String, PathError> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len() + 8);
    let mut segment: Vec<u8> = Vec::with_capacity(32);
    // `path[0]` is `/`: every segment follows a slash.
    let mut rest = &path[1..];
    loop {
        let (raw, last) = match rest.iter().position(|b| *b == b'/') {
            Some(end) => (&rest[..end], false),
            None => (rest, true),
        };
        decode_segment(raw, &mut segment)?;
        match segment.as_slice() {
            b"" | b"." => {}
            b".." => {
                let Some(cut) = out.iter().rposition(|b| *b == b'/') else {
                    return Err(PathError::AboveRoot);
                };
                out.truncate(cut);
            }
            s if s.starts_with(b".;") || s.starts_with(b"..;") => {
                return Err(PathError::DotSegmentParameter)
            }
            s => {
                out.push(b'/');
                out.extend_from_slice(s);
                if last {
                    break;
                }
                rest = &rest[raw.len() + 1..];
                continue;
            }
        }
        // An empty or dot segment: at the end it leaves a trailing slash (`/a/.` is `/a/`).
        if last {
            out.push(b'/');
            break;
        }
        rest = &rest[raw.len() + 1..];
    }
    // Only ASCII was written: every other byte went out as an escape.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Writes the canonical spelling of one raw segment (no `/` in it) into `out`.
fn decode_segment(raw: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                raw.get(i + 1).copied().and_then(hex_value),
                raw.get(i + 2).copied().and_then(hex_value),
            ) else {
                return Err(PathError::MalformedEscape);
            };
            let decoded = hi << 4 | lo;
            match decoded {
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                0 => return Err(PathError::EncodedNul),
                d if CLASSES[usize::from(d)] & UNRESERVED != 0 => out.push(d),
                d => push_escape(out, d),
            }
            i += 3;
            continue;
        }
        if b == b'\\' {
            return Err(PathError::EncodedSeparator);
        }
        if CLASSES[usize::from(b)] & PLAIN != 0 {
            out.push(b);
        } else {
            push_escape(out, b);
        }
        i += 1;
    }
    Ok(())
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[path = "canonical/tests.rs"]
mod tests;
