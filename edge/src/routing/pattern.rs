//! Path patterns as written in `RouteSpec::paths`: `/prefix`, `=/exact`, `/users/{id}/orders`.

/// One segment of a pattern: a literal, or a `{param}` that matches any one non-empty segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segment<'a> {
    Literal(&'a str),
    Param,
}

/// How a pattern matches, weakest first (the order is part of route precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PathClass {
    /// No `=` and no `{param}`: matches the path and anything below it.
    Prefix,
    /// No `=`, at least one `{param}`: matches the path and anything below it.
    Params,
    /// Written with `=`: matches the whole path only (params still match one segment).
    Exact,
}

/// A parsed path pattern, borrowing the spec's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PathPattern<'a> {
    pub(super) class: PathClass,
    /// Segments after the leading `/`; `/` alone has none. A prefix pattern's trailing `/`
    /// is not a segment: it sets `needs_more` instead.
    pub(super) segments: Vec<Segment<'a>>,
    /// Prefix patterns written with a trailing `/` (`/v1/`): the path must go on past the
    /// last segment (`/v1/` and `/v1/x` match, `/v1` does not), like a string prefix.
    pub(super) needs_more: bool,
    /// Bytes of the pattern before its first `{param}` segment (the whole pattern without
    /// `=` when it has none).
    pub(super) literal_prefix_len: usize,
}

impl<'a> PathPattern<'a> {
    /// Parses one entry of `RouteSpec::paths`. `None` when it does not start with `/`
    /// (after an optional `=`): such a pattern can match no path.
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        let (exact, path) = match text.strip_prefix('=') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let body = path.strip_prefix('/')?;
        let mut segments: Vec<Segment<'a>> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').map(Segment::parse).collect()
        };
        let mut needs_more = false;
        if !exact && segments.last() == Some(&Segment::Literal("")) {
            segments.pop();
            needs_more = true;
        }
        let has_params = segments.contains(&Segment::Param);
        let literal_prefix_len = first_param_offset(path).unwrap_or(path.len());
        let class = match (exact, has_params) {
            (true, _) => PathClass::Exact,
            (false, true) => PathClass::Params,
            (false, false) => PathClass::Prefix,
        };
        Some(PathPattern {
            class,
            segments,
            needs_more,
            literal_prefix_len,
        })
    }

    /// Number of literal segments (an empty segment from `//` counts as a literal).
    pub(super) fn literal_segments(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }
}

impl<'a> Segment<'a> {
    fn parse(text: &'a str) -> Self {
        if is_param(text) {
            Segment::Param
        } else {
            Segment::Literal(text)
        }
    }
}

fn is_param(segment: &str) -> bool {
    segment.len() >= 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// Byte offset of the `/` that opens the first `{param}` segment of `path`.
fn first_param_offset(path: &str) -> Option<usize> {
    let mut offset = 0;
    for segment in path.split('/').skip(1) {
        if is_param(segment) {
            return Some(offset);
        }
        offset += 1 + segment.len();
    }
    None
}

/// Splits a request path into its first segment and the rest, in the shape the trie walk
/// uses: `None` once no segment is left, `Some("")` for one empty segment (`/v1/`).
pub(super) fn next_segment(rest: &str) -> (&str, Option<&str>) {
    // A byte scan: faster than `str::find` on these short strings, and `/` is ASCII.
    match rest.bytes().position(|b| b == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

/// The segments of a request path after its leading `/` (`None`: no segment, the path is
/// `/`). An empty path counts as `/`; a path that does not start with `/` (`*`, an
/// absolute URI) matches no route, which `Err` reports.
pub(super) fn segments_of(path: &str) -> Result<Option<&str>, ()> {
    if path.is_empty() {
        return Ok(None);
    }
    let body = path.strip_prefix('/').ok_or(())?;
    Ok(if body.is_empty() { None } else { Some(body) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefix_exact_and_param_patterns() {
        let p = PathPattern::parse("/v1/orders").expect("valid");
        assert_eq!(p.class, PathClass::Prefix);
        assert_eq!(
            p.segments,
            [Segment::Literal("v1"), Segment::Literal("orders")]
        );
        assert_eq!(p.literal_prefix_len, 10);

        let p = PathPattern::parse("=/v1/ping").expect("valid");
        assert_eq!(p.class, PathClass::Exact);
        assert_eq!(p.literal_prefix_len, 8);

        let p = PathPattern::parse("/users/{id}/orders").expect("valid");
        assert_eq!(p.class, PathClass::Params);
        assert_eq!(
            p.segments,
            [
                Segment::Literal("users"),
                Segment::Param,
                Segment::Literal("orders")
            ]
        );
        assert_eq!(p.literal_prefix_len, 6);
        assert_eq!(p.literal_segments(), 2);
    }

    #[test]
    fn root_pattern_has_no_segments() {
        let p = PathPattern::parse("/").expect("valid");
        assert!(p.segments.is_empty());
        assert!(!p.needs_more);
    }

    #[test]
    fn trailing_slash_of_prefix_requires_more_path() {
        let p = PathPattern::parse("/v1/").expect("valid");
        assert_eq!(p.segments, [Segment::Literal("v1")]);
        assert!(p.needs_more);
        let p = PathPattern::parse("=/v1/").expect("valid");
        assert_eq!(p.segments, [Segment::Literal("v1"), Segment::Literal("")]);
        assert!(!p.needs_more);
    }

    #[test]
    fn rejects_pattern_without_leading_slash() {
        assert_eq!(PathPattern::parse("v1"), None);
        assert_eq!(PathPattern::parse("=v1"), None);
    }

    #[test]
    fn splits_request_paths_into_segments() {
        assert_eq!(segments_of("/"), Ok(None));
        assert_eq!(segments_of(""), Ok(None));
        assert_eq!(segments_of("*"), Err(()));
        assert_eq!(segments_of("/a/b"), Ok(Some("a/b")));
        assert_eq!(next_segment("a/b"), ("a", Some("b")));
        assert_eq!(next_segment("b"), ("b", None));
        assert_eq!(next_segment("a/"), ("a", Some("")));
    }
}
