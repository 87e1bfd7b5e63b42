//! Problems of a config file's shape (what serde refuses before any validation), reported
//! all at once: the first one serde meets, with its line and column, then every other
//! object of the file that does not read, each with its path.

use policies::Problem;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::spec::{
    CertificateSpec, ConsumerSpec, CredentialRecord, JwtIssuerSpec, KeyRecord, PlanSpec, RouteSpec,
    UpstreamSpec,
};

/// The problem serde met first, at `path` (serde_path_to_error's form; `.` is the root),
/// `at` a line and column when known.
pub(super) fn located(path: String, format: &str, at: &str, message: &str) -> Problem {
    let path = if path == "." { String::new() } else { path };
    let message = if at.is_empty() {
        format!("invalid {format}: {message}")
    } else {
        format!("invalid {format} ({at}): {message}")
    };
    Problem::new(path, message)
}

/// A serde error message without the path and position it carries itself (they are
/// reported apart): `upstreams[0].balancing: unknown variant at line 3 column 16` reads
/// `unknown variant`.
pub(super) fn bare_message(message: &str, path: &str) -> String {
    let message = message
        .strip_prefix(path)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message);
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// `first`, then the problems of every other object of the file (a file that is not a
/// YAML or JSON document at all has `first` only).
pub(super) fn every_problem(text: &str, first: Problem) -> Vec<Problem> {
    let mut problems = vec![first];
    let Ok(Value::Mapping(sections)) = serde_yaml::from_str::<Value>(text) else {
        return problems;
    };
    for (key, items) in &sections {
        let Some(name) = key.as_str() else {
            continue;
        };
        let found = match name {
            "upstreams" => items_of::<UpstreamSpec>(name, items),
            "routes" => items_of::<RouteSpec>(name, items),
            "consumers" => items_of::<ConsumerSpec>(name, items),
            "plans" => items_of::<PlanSpec>(name, items),
            "jwt_issuers" => items_of::<JwtIssuerSpec>(name, items),
            "certificates" => items_of::<CertificateSpec>(name, items),
            "keys" => items_of::<KeyRecord>(name, items),
            "credentials" => items_of::<CredentialRecord>(name, items),
            _ => vec![Problem::new(name, "unknown field")],
        };
        for p in found {
            if !problems.iter().any(|q| q.path == p.path) {
                problems.push(p);
            }
        }
    }
    problems
}

/// The problems of the objects of one section, each with its path in the file.
fn items_of<T: DeserializeOwned>(section: &str, items: &Value) -> Vec<Problem> {
    let items = match items {
        Value::Sequence(items) => items,
        Value::Null => return Vec::new(),
        _ => return vec![Problem::new(section, "must be a list")],
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let e = serde_path_to_error::deserialize::<_, T>(item.clone()).err()?;
            let inner = e.path().to_string();
            let path = if inner == "." {
                format!("{section}[{i}]")
            } else {
                format!("{section}[{i}].{inner}")
            };
            Some(Problem::new(path, e.into_inner().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse_config;
    use crate::StoreError;

    fn problems(text: &str) -> Vec<(String, String)> {
        match parse_config(text) {
            Err(StoreError::Invalid { problems }) => {
                problems.into_iter().map(|p| (p.path, p.message)).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_object_is_reported_the_first_with_its_line() {
        let found = problems(
            "upstreams:\n  - id: a\n    targets: [{addr: \"127.0.0.1:1\"}]\n    balancing: sideways\n\
             routes:\n  - id: r\n    paths: [\"/\"]\n    upstream: a\n    priority: high\n\
             plans:\n  - id: p\n    colour: blue\n",
        );
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "upstreams[0].balancing",
                "routes[0].priority",
                "plans[0].colour"
            ]
        );
        assert!(
            found[0]
                .1
                .starts_with("invalid YAML (line 4, column 16): unknown variant `sideways`"),
            "{}",
            found[0].1
        );
        assert!(!found[0].1.contains("upstreams[0]"), "{}", found[0].1);
    }

    #[test]
    fn json_problems_carry_their_line_too() {
        let found = problems("{\"routes\": [{\"id\": \"r\", \"paths\": 7}]}");
        assert_eq!(found[0].0, "routes[0].paths");
        assert!(
            found[0].1.starts_with("invalid JSON (line 1, column"),
            "{}",
            found[0].1
        );
    }

    #[test]
    fn a_syntax_error_is_one_problem_with_its_position() {
        let found = problems("routes:\n  - id: r\n   paths: [\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("line"), "{found:?}");
    }

    #[test]
    fn an_unknown_section_is_named() {
        let found = problems("rutes: []\nupstreams: 5\n");
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"rutes"), "{found:?}");
        assert!(paths.contains(&"upstreams"), "{found:?}");
    }
}
