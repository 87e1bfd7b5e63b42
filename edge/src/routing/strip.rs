//! `strip_prefix`: the path a route sends upstream.

use std::borrow::Cow;

/// The path sent upstream once `prefix` (a route's `strip_prefix`) is removed from `path`.
///
/// The prefix is literal text (not a pattern) and is removed only on a segment boundary:
/// `/v1` strips `/v1/orders` to `/orders` and `/v1` to `/`, but leaves `/v1x` alone. A
/// trailing `/` on the prefix is ignored (`/v1/` strips like `/v1`); an empty prefix or
/// `/` changes nothing. The result is never empty and always starts with `/` when `path`
/// does. Never allocates: the result borrows `path` (or is the static `"/"`).
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Cow<'a, str> {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return Cow::Borrowed(path);
    }
    match path.strip_prefix(prefix) {
        Some("") => Cow::Borrowed("/"),
        Some(rest) if rest.starts_with('/') => Cow::Borrowed(rest),
        _ => Cow::Borrowed(path),
    }
}
