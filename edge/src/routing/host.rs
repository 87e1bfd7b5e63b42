//! Host names: the route side (`api.example.com`, `*.example.org`) and the request side
//! (`Host` header or `:authority`, maybe with a port, in any case).

/// Longest host name looked up without allocating; longer ones (never valid DNS names)
/// are lowercased on the heap.
const STACK_HOST_LEN: usize = 256;

/// Where a route's host puts it in the host index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostKey {
    /// No host constraint (`hosts` empty, or `*`).
    Any,
    /// `api.example.com`, stored lowercase.
    Exact(String),
    /// `*.example.org`, stored as the lowercase suffix `example.org`.
    Wildcard(String),
}

impl HostKey {
    /// Reads one entry of `RouteSpec::hosts`; a trailing dot is dropped and case folded,
    /// as on the request side.
    pub(super) fn parse(host: &str) -> HostKey {
        let host = host.strip_suffix('.').unwrap_or(host);
        if host == "*" || host.is_empty() {
            HostKey::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostKey::Wildcard(suffix.to_ascii_lowercase())
        } else {
            HostKey::Exact(host.to_ascii_lowercase())
        }
    }
}

/// The name part of a request's host: without `:port` (`[v6]:port` keeps its brackets) and
/// without a trailing dot. Case is left alone (see [`with_lowercase`]).
pub(super) fn name_of(host: &str) -> &str {
    // Byte scans: `str::rfind(char)` costs several times as much on every request.
    let bytes = host.as_bytes();
    let end = if bytes.first() == Some(&b'[') {
        bytes.iter().position(|&b| b == b']').map(|end| end + 1)
    } else {
        bytes.iter().rposition(|&b| b == b':')
    };
    let name = end.map_or(host, |end| &host[..end]);
    name.strip_suffix('.').unwrap_or(name)
}

/// Calls `f` with `host` in ASCII lowercase. Allocation-free unless `host` has an
/// uppercase letter and is longer than any valid host name.
pub(super) fn with_lowercase<R>(host: &str, f: impl FnOnce(&str) -> R) -> R {
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(host);
    }
    if host.len() > STACK_HOST_LEN {
        return f(&host.to_ascii_lowercase());
    }
    let mut buf = [0u8; STACK_HOST_LEN];
    let lower = &mut buf[..host.len()];
    lower.copy_from_slice(host.as_bytes());
    lower.make_ascii_lowercase();
    // Lowercasing ASCII bytes keeps UTF-8 valid, so this never falls back.
    match std::str::from_utf8(lower) {
        Ok(lower) => f(lower),
        Err(_) => f(&host.to_ascii_lowercase()),
    }
}

/// The suffixes a wildcard route may be stored under for `host`, longest first:
/// `a.b.example.org` gives `b.example.org`, `example.org`, `org`. Each leaves at least one
/// label in front, so `*.example.org` never matches the apex `example.org`.
pub(super) fn wildcard_suffixes(host: &str) -> impl Iterator<Item = &str> {
    host.match_indices('.')
        .filter(|&(dot, _)| dot > 0)
        .map(move |(dot, _)| &host[dot + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_port_and_trailing_dot() {
        assert_eq!(name_of("api.example.com:8080"), "api.example.com");
        assert_eq!(name_of("api.example.com."), "api.example.com");
        assert_eq!(name_of("api.example.com"), "api.example.com");
        assert_eq!(name_of("[::1]:8443"), "[::1]");
        assert_eq!(name_of("[::1]"), "[::1]");
    }

    #[test]
    fn lowercases_only_when_needed() {
        assert_eq!(
            with_lowercase("Api.Example.COM", str::to_owned),
            "api.example.com"
        );
        assert_eq!(
            with_lowercase("api.example.com", str::to_owned),
            "api.example.com"
        );
        let long = "A".repeat(STACK_HOST_LEN + 1);
        assert_eq!(
            with_lowercase(&long, str::to_owned),
            "a".repeat(STACK_HOST_LEN + 1)
        );
    }

    #[test]
    fn wildcard_suffixes_leave_one_label() {
        let all: Vec<&str> = wildcard_suffixes("a.b.example.org").collect();
        assert_eq!(all, ["b.example.org", "example.org", "org"]);
        assert_eq!(wildcard_suffixes("example").count(), 0);
        let all: Vec<&str> = wildcard_suffixes(".example.org").collect();
        assert_eq!(all, ["org"]);
    }

    #[test]
    fn parses_route_hosts() {
        assert_eq!(HostKey::parse("*"), HostKey::Any);
        assert_eq!(
            HostKey::parse("*.Example.org"),
            HostKey::Wildcard("example.org".to_owned())
        );
        assert_eq!(
            HostKey::parse("API.example.com."),
            HostKey::Exact("api.example.com".to_owned())
        );
    }
}
