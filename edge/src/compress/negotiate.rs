//! Accept-Encoding negotiation (RFC 9110 12.5.3) against a route's codings.
//!
//! - A coding listed with `q=0` is excluded, even when `*` would match it.
//! - `*` gives its q-value to every coding not listed by name.
//! - The highest q wins; equal q-values go to the route's preference order.
//! - `identity` wins only when listed with a higher q than the best coding.
//! - No `Accept-Encoding` at all: identity (as nginx and most servers; RFC 9110 allows
//!   any coding, but old clients that send none often cannot decode any).
//! - An element whose q-value is malformed (`q=abc`, `q=1.5`, `q=0.1234`) is ignored, as
//!   if it were not in the header; `x-gzip` means `gzip` (RFC 9110 8.4.1.3).
//!
//! No allocation: the header is walked once per route coding (three at most).

use http::header::ACCEPT_ENCODING;
use http::HeaderMap;
use policies::Coding;

/// Most elements read from a client's `Accept-Encoding` (no browser sends more than a
/// handful): a longer list gets identity. Not cut and read in part: a `q=0` past the cut
/// would be lost while a `*` before it counted, and the client would get a coding it
/// refused. Empty elements (`a,,b`) do not count.
const MAX_ELEMENTS: usize = 32;

/// The coding to answer with for a request with `headers`, among `offered` (most
/// preferred first); `None`: identity.
pub fn choose(headers: &HeaderMap, offered: &[Coding]) -> Option<Coding> {
    let mut values = headers.get_all(ACCEPT_ENCODING).iter().peekable();
    values.peek()?;
    if elements(headers).nth(MAX_ELEMENTS).is_some() {
        return None;
    }
    let q_of = |name: &str| -> Option<u16> { lookup(headers, name) };
    let star = q_of("*");
    let mut best: Option<(Coding, u16)> = None;
    for &coding in offered {
        let mut q = q_of(coding.as_str());
        if q.is_none() && coding == Coding::Gzip {
            q = q_of("x-gzip");
        }
        let q = q.or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((coding, q));
        }
    }
    let (coding, q) = best?;
    match q_of("identity") {
        Some(identity) if identity > q => None,
        _ => Some(coding),
    }
}

/// The non-empty elements of the `Accept-Encoding` fields (a field that is not text has
/// none).
fn elements(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|e| !e.trim().is_empty())
}

/// The q-value (in thousandths) the header gives `name` (case-insensitive), if it lists
/// it with a well-formed q. The last valid listing wins.
fn lookup(headers: &HeaderMap, name: &str) -> Option<u16> {
    let mut found = None;
    for element in elements(headers) {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if !coding.eq_ignore_ascii_case(name) {
            continue;
        }
        let mut q = Some(1000);
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("q") {
                q = parse_q(value.trim());
            }
        }
        if let Some(q) = q {
            found = Some(q);
        }
    }
    found
}

/// A `qvalue` (RFC 9110 12.4.2: `0[.ddd]` or `1[.000]`) in thousandths; `None` if
/// malformed.
fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Coding; 3] = [Coding::Zstd, Coding::Br, Coding::Gzip];

    fn pick(values: &[&str], offered: &[Coding]) -> Option<Coding> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT_ENCODING, v.parse().expect("value"));
        }
        choose(&h, offered)
    }

    #[test]
    fn ties_go_to_the_route_order() {
        assert_eq!(pick(&["gzip, br, zstd"], &ALL), Some(Coding::Zstd));
        assert_eq!(
            pick(&["gzip, br, zstd"], &[Coding::Gzip, Coding::Br]),
            Some(Coding::Gzip)
        );
    }

    #[test]
    fn highest_q_wins() {
        assert_eq!(pick(&["zstd;q=0.5, gzip;q=0.8"], &ALL), Some(Coding::Gzip));
        assert_eq!(pick(&["zstd;q=0.5", "br;q=0.9"], &ALL), Some(Coding::Br));
        assert_eq!(pick(&["GZIP ; Q=0.2"], &ALL), Some(Coding::Gzip));
    }

    #[test]
    fn q_zero_excludes_even_with_a_star() {
        assert_eq!(
            pick(&["br;q=0, *"], &[Coding::Br, Coding::Gzip]),
            Some(Coding::Gzip)
        );
        assert_eq!(pick(&["*, br;q=0, zstd;q=0.000, gzip;q=0"], &ALL), None);
        assert_eq!(pick(&["*;q=0"], &ALL), None);
    }

    #[test]
    fn star_matches_the_rest() {
        assert_eq!(pick(&["*"], &ALL), Some(Coding::Zstd));
        assert_eq!(pick(&["gzip;q=0.5, *;q=0.7"], &ALL), Some(Coding::Zstd));
        assert_eq!(pick(&["gzip;q=0.9, *;q=0.7"], &ALL), Some(Coding::Gzip));
    }

    #[test]
    fn identity_when_nothing_offered_is_acceptable() {
        assert_eq!(pick(&[], &ALL), None);
        assert_eq!(pick(&[""], &ALL), None);
        assert_eq!(pick(&["identity"], &ALL), None);
        assert_eq!(pick(&["deflate, compress"], &ALL), None);
        assert_eq!(pick(&["gzip;q=0.5, identity"], &ALL), None);
        assert_eq!(pick(&["gzip, identity;q=0.5"], &ALL), Some(Coding::Gzip));
    }

    #[test]
    fn malformed_q_values_are_ignored() {
        for bad in ["q=abc", "q=1.5", "q=0.1234", "q=2", "q=", "q=-1", "q=.5"] {
            assert_eq!(pick(&[&format!("gzip;{bad}")], &ALL), None, "{bad}");
        }
        assert_eq!(pick(&["gzip;q=1.000", "br;q=x"], &ALL), Some(Coding::Gzip));
        assert_eq!(pick(&["x-gzip"], &ALL), Some(Coding::Gzip));
    }

    #[test]
    fn a_list_too_long_to_read_whole_gets_identity() {
        let fillers = vec!["a"; 31].join(",");
        // Exclusions past the 32nd element: never the refused coding (it was zstd).
        let refused = format!("*,{fillers},zstd;q=0,br;q=0,gzip;q=0");
        assert_eq!(pick(&[&refused], &ALL), None);
        let long = format!("*,{fillers},deflate");
        assert_eq!(pick(&[&long], &ALL), None, "33 elements: identity");
        let fewer = format!("*,{}", vec!["a"; 30].join(","));
        assert_eq!(
            pick(&[&fewer], &ALL),
            Some(Coding::Zstd),
            "31 elements are read"
        );
        // Empty elements do not count.
        let empties = format!("{}gzip", ",".repeat(100));
        assert_eq!(pick(&[&empties], &ALL), Some(Coding::Gzip));
    }
}
