//! The `check`, `import` and `export` subcommands.

use anyhow::Result;
use serde_yaml::Value;
use tests::gateway::run_cli;
use tests::{http_client, send, EchoServer, Gateway};

const GOOD: &str = "\
upstreams:
  - id: orders
    targets: [{addr: \"127.0.0.1:9\", weight: 2}, {addr: \"127.0.0.1:10\"}]
    balancing: round_robin
    retries: 1
routes:
  - id: orders-v1
    hosts: [\"api.example.com\"]
    methods: [GET, POST]
    paths: [\"/v1/orders\", \"=/v1/ping\"]
    strip_prefix: /v1
    priority: 5
    upstream: orders
    policies: [{type: rate_limit, requests: 100, per: second, key: ip}]
";

/// Two independent problems: a zero rate and a route to an upstream that does not exist.
const BAD: &str = "\
upstreams:
  - id: orders
    targets: [{addr: \"127.0.0.1:9\"}]
routes:
  - id: broken
    paths: [\"/x\"]
    upstream: nowhere
  - id: zero
    paths: [\"/y\"]
    upstream: orders
    policies: [{type: rate_limit, requests: 0, per: second}]
";

#[test]
fn check_exits_1_and_prints_every_problem_of_a_bad_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD)?;
    let out = run_cli(
        &["check", &file.to_string_lossy()],
        &[("TOLLGATE_DATA_DIR", dir.path())],
    )?;
    assert_eq!(out.code(), Some(1), "{out:?}");
    let text = out.all_output();
    assert!(
        text.contains("].upstream"),
        "the unknown upstream is reported with its path: {text}"
    );
    assert!(
        text.contains("policies[0].requests"),
        "the zero rate is reported with its path: {text}"
    );
    Ok(())
}

#[test]
fn check_exits_0_for_a_good_file_yaml_or_json() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let yaml = dir.path().join("good.yaml");
    std::fs::write(&yaml, GOOD)?;
    let out = run_cli(
        &["check", &yaml.to_string_lossy()],
        &[("TOLLGATE_DATA_DIR", dir.path())],
    )?;
    assert_eq!(out.code(), Some(0), "{out:?}");

    let as_json: serde_json::Value = serde_yaml::from_str(GOOD)?;
    let json = dir.path().join("good.json");
    std::fs::write(&json, serde_json::to_string_pretty(&as_json)?)?;
    let out = run_cli(
        &["check", &json.to_string_lossy()],
        &[("TOLLGATE_DATA_DIR", dir.path())],
    )?;
    assert_eq!(out.code(), Some(0), "{out:?}");
    Ok(())
}

/// The value at `key` of the item with `id` in list `list` of an exported config.
fn find<'a>(config: &'a Value, list: &str, id: &str) -> Option<&'a Value> {
    config[list]
        .as_sequence()?
        .iter()
        .find(|item| item["id"].as_str() == Some(id))
}

#[test]
fn import_then_export_round_trips() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let file = dir.path().join("in.yaml");
    std::fs::write(&file, GOOD)?;

    let out = run_cli(
        &["import", &file.to_string_lossy()],
        &[("TOLLGATE_DATA_DIR", &data)],
    )?;
    assert_eq!(out.code(), Some(0), "{out:?}");
    let out = run_cli(&["export"], &[("TOLLGATE_DATA_DIR", &data)])?;
    assert_eq!(out.code(), Some(0), "{out:?}");
    let exported: Value = serde_yaml::from_str(&out.stdout)?;
    let original: Value = serde_yaml::from_str(GOOD)?;

    for (list, id) in [("upstreams", "orders"), ("routes", "orders-v1")] {
        let want = find(&original, list, id).ok_or_else(|| anyhow::anyhow!("{id} in the input"))?;
        let got = find(&exported, list, id).ok_or_else(|| {
            anyhow::anyhow!("{list}/{id} missing from the export: {}", out.stdout)
        })?;
        // Every field written comes back equal (the export may add defaults).
        for (key, value) in want.as_mapping().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            let exported_value = &got[key];
            if key == "targets" {
                let addrs = |v: &Value| {
                    v.as_sequence()
                        .map(|s| s.iter().map(|t| t["addr"].clone()).collect::<Vec<_>>())
                };
                assert_eq!(addrs(exported_value), addrs(value), "{list}/{id}.targets");
                assert_eq!(
                    exported_value[0]["weight"], value[0]["weight"],
                    "{list}/{id}.targets[0].weight"
                );
            } else if key == "policies" {
                assert_eq!(
                    exported_value[0]["type"], value[0]["type"],
                    "{list}/{id}.policies"
                );
                assert_eq!(
                    exported_value[0]["requests"], value[0]["requests"],
                    "{list}/{id}.policies"
                );
            } else {
                assert_eq!(exported_value, value, "{list}/{id}.{key}");
            }
        }
    }

    // Exporting again after importing the export changes nothing.
    let again = dir.path().join("again.yaml");
    std::fs::write(&again, &out.stdout)?;
    let out2 = run_cli(
        &["import", &again.to_string_lossy(), "--replace"],
        &[("TOLLGATE_DATA_DIR", &data)],
    )?;
    assert_eq!(out2.code(), Some(0), "{out2:?}");
    let out3 = run_cli(&["export"], &[("TOLLGATE_DATA_DIR", &data)])?;
    let reexported: Value = serde_yaml::from_str(&out3.stdout)?;
    assert_eq!(reexported["routes"], exported["routes"]);
    assert_eq!(reexported["upstreams"], exported["upstreams"]);
    Ok(())
}

#[test]
fn imported_config_is_served_by_the_gateway() -> Result<()> {
    let server = EchoServer::start("imported")?;
    let mut gateway = Gateway::start_default()?;
    gateway.kill9()?;
    let file = gateway.scratch_dir().join("import.yaml");
    std::fs::write(
        &file,
        format!("upstreams:\n  - id: imp\n    targets: [{{addr: \"{}\"}}]\nroutes:\n  - id: imp\n    paths: [\"/imp\"]\n    upstream: imp\n", server.addr()),
    )?;
    let data = gateway.data_dir();
    let out = run_cli(
        &["import", &file.to_string_lossy()],
        &[("TOLLGATE_DATA_DIR", &data)],
    )?;
    assert_eq!(out.code(), Some(0), "{out:?}");
    gateway.start_again()?;
    let answer = send(&http_client(), "GET", &gateway.url("/imp"), &[])?;
    assert_eq!(answer.echo()?.server, "imported");
    Ok(())
}

#[test]
fn export_leaves_secrets_out_unless_asked_and_a_plain_export_imports_back_keeping_them(
) -> Result<()> {
    const SECRET: &str = "hmac-secret-that-must-not-leak-0123456789";
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let file = dir.path().join("issuer.yaml");
    std::fs::write(
        &file,
        format!(
            "jwt_issuers:\n  - id: hs\n    issuer: \"https://auth.example.com/\"\n    \
             algorithms: [HS256]\n    keys: [{{kid: k1, secret: \"{SECRET}\"}}]\n"
        ),
    )?;
    let out = run_cli(
        &["import", &file.to_string_lossy()],
        &[("TOLLGATE_DATA_DIR", &data)],
    )?;
    assert_eq!(out.code(), Some(0), "{out:?}");

    let plain = run_cli(&["export"], &[("TOLLGATE_DATA_DIR", &data)])?;
    assert_eq!(plain.code(), Some(0), "{plain:?}");
    assert!(!plain.stdout.contains(SECRET), "{}", plain.stdout);
    assert!(plain.stdout.contains("hs"), "{}", plain.stdout);
    let full = run_cli(
        &["export", "--with-secrets"],
        &[("TOLLGATE_DATA_DIR", &data)],
    )?;
    assert!(full.stdout.contains(SECRET), "{}", full.stdout);

    // The plain export put back keeps the stored secret.
    let back = dir.path().join("back.yaml");
    std::fs::write(&back, &plain.stdout)?;
    let out = run_cli(
        &["import", &back.to_string_lossy(), "--replace"],
        &[("TOLLGATE_DATA_DIR", &data)],
    )?;
    assert_eq!(out.code(), Some(0), "{out:?}");
    let again = run_cli(
        &["export", "--with-secrets"],
        &[("TOLLGATE_DATA_DIR", &data)],
    )?;
    assert!(again.stdout.contains(SECRET), "{}", again.stdout);
    Ok(())
}

#[test]
fn check_names_the_file_and_line_and_reports_every_object_that_does_not_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("gateway.yaml");
    std::fs::write(
        &file,
        "upstreams:\n  - id: a\n    targets: [{addr: \"127.0.0.1:1\"}]\n    balancing: sideways\n\
         routes:\n  - id: r\n    paths: [\"/\"]\n    upstream: a\n    priority: high\n",
    )?;
    let name = file.display().to_string();
    let out = run_cli(&["check", &name], &[])?;
    assert_eq!(out.code(), Some(1), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with(&format!(
            "{name}: upstreams[0].balancing: invalid YAML (line 4, column 16): unknown variant"
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("{name}: routes[0].priority: ")),
        "{}",
        lines[1]
    );
    Ok(())
}
