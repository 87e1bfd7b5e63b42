use super::*;

fn canon(path: &str) -> Result<String, PathError> {
    Ok(canonical_path(path.as_bytes())?.unwrap_or_else(|| path.to_owned()))
}

#[test]
fn leaves_canonical_paths_alone_without_allocating() {
    for path in [
        "/",
        "/v1/orders/7",
        "/a/b/",
        "/files/report.pdf",
        "/users/~me/@home:8;v=1",
        "/a-b_c.d~e!$&'()*+,;=",
        "*",
        "",
    ] {
        assert_eq!(canonical_path(path.as_bytes()), Ok(None), "{path}");
    }
}

#[test]
fn removes_dot_segments_and_merges_slashes() {
    let cases = [
        ("/pub/../admin/secret", "/admin/secret"),
        ("/./admin/secret", "/admin/secret"),
        ("//admin/secret", "/admin/secret"),
        ("/a//b///c", "/a/b/c"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/./b/../c/", "/a/c/"),
        ("//", "/"),
        ("/a/..", "/"),
        ("/.well-known/x", "/.well-known/x"),
        ("/a/..b/.c", "/a/..b/.c"),
    ];
    for (path, want) in cases {
        assert_eq!(canon(path).as_deref(), Ok(want), "{path}");
    }
}

#[test]
fn decodes_unreserved_escapes_and_keeps_the_rest_in_upper_case() {
    let cases = [
        ("/%61dmin/secret", "/admin/secret"),
        ("/pub/%2e%2e/admin/secret", "/admin/secret"),
        ("/pub/.%2E/admin", "/admin"),
        ("/%7euser/%41%2d", "/~user/A-"),
        ("/a%20b", "/a%20b"),
        ("/a%3fb%3Bc", "/a%3Fb%3Bc"),
        ("/%25252e", "/%25252e"),
        ("/%c3%a9", "/%C3%A9"),
    ];
    for (path, want) in cases {
        assert_eq!(canon(path).as_deref(), Ok(want), "{path}");
    }
}

#[test]
fn escapes_bytes_a_path_cannot_hold() {
    assert_eq!(
        canonical_path(b"/caf\xc3\xa9/\xff\"<>{|}^`"),
        Ok(Some("/caf%C3%A9/%FF%22%3C%3E%7B%7C%7D%5E%60".to_owned()))
    );
    assert_eq!(canon("/a\tb").as_deref(), Ok("/a%09b"));
}

#[test]
fn refuses_encoded_separators_nul_and_climbing() {
    let cases = [
        ("/pub/..%2fadmin/secret", PathError::EncodedSeparator),
        ("/admin%2Fsecret", PathError::EncodedSeparator),
        ("/admin%5csecret", PathError::EncodedSeparator),
        ("/pub\\..\\admin", PathError::EncodedSeparator),
        ("/a%00", PathError::EncodedNul),
        ("/a%zz", PathError::MalformedEscape),
        ("/a%4", PathError::MalformedEscape),
        ("/a%", PathError::MalformedEscape),
        ("/..", PathError::AboveRoot),
        ("/../etc/passwd", PathError::AboveRoot),
        ("/a/../../b", PathError::AboveRoot),
        ("/%2e%2e/x", PathError::AboveRoot),
        ("/pub/..;/admin", PathError::DotSegmentParameter),
        ("/pub/.;x/admin", PathError::DotSegmentParameter),
        ("/pub/%2e%2e;/admin", PathError::DotSegmentParameter),
    ];
    for (path, want) in cases {
        assert_eq!(canon(path), Err(want), "{path}");
    }
}

#[test]
fn canonical_output_is_a_fixed_point() {
    for path in [
        "/pub/%2e%2e/admin/x%2a",
        "//a/./b/../c%7e/",
        "/%c3%a9/%41",
        "/a b/c",
    ] {
        let once = canon(path).expect("canonical");
        assert_eq!(
            canonical_path(once.as_bytes()),
            Ok(None),
            "{path} -> {once}"
        );
    }
}

#[test]
fn finds_dot_segments_in_any_spelling() {
    for path in [
        "/users/../admin",
        "/a/./b",
        "/a/%2e%2E/b",
        "/a/.%2e",
        "/a/..;x/b",
        "..",
        "/a/.",
    ] {
        assert!(has_dot_segment(path), "{path}");
    }
    for path in [
        "/users/7",
        "/a/.../b",
        "/a/..x/b",
        "/.well-known/x",
        "/a/%2e%2f",
        "/",
        "",
    ] {
        assert!(!has_dot_segment(path), "{path}");
    }
}
