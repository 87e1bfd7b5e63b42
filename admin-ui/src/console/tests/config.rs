use axum::http::{header, StatusCode};

use super::Console;

#[tokio::test]
async fn exports_the_config_as_yaml() {
    let console = Console::new();
    let session = console.login().await;
    session
        .post(&console, "/consumers/new", &[("id", "acme")])
        .await;
    let page = session.get(&console, "/config").await;
    assert!(page.body.contains("- id: acme"), "{}", page.body);
    let file = session.get(&console, "/config/export.yaml").await;
    assert_eq!(file.status, StatusCode::OK);
    assert!(file.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .is_ok_and(|v| v.contains("attachment")));
    let parsed = storage::parse_config(&file.body).expect("the export parses");
    assert_eq!(parsed.consumers[0].id, "acme");
}

#[tokio::test]
async fn imports_yaml_by_merge_or_replace() {
    let console = Console::new();
    let session = console.login().await;
    session
        .post(&console, "/consumers/new", &[("id", "old")])
        .await;
    let yaml = "upstreams:\n  - id: orders\n    targets: [{addr: \"127.0.0.1:9001\"}]\nconsumers:\n  - id: acme\n";
    let merged = session
        .post(&console, "/config/import", &[("yaml", yaml)])
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    let config = console.store().config();
    assert_eq!(config.consumers.len(), 2);
    assert_eq!(config.upstreams.len(), 1);
    assert!(session
        .get(&console, "/config")
        .await
        .body
        .contains("Config merged"));

    session
        .post(
            &console,
            "/config/import",
            &[("yaml", yaml), ("replace", "on")],
        )
        .await;
    let ids: Vec<_> = console
        .store()
        .config()
        .consumers
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(ids, ["acme"]);
}

#[tokio::test]
async fn an_invalid_import_changes_nothing_and_lists_every_problem() {
    let console = Console::new();
    let session = console.login().await;
    let revision = console.store().revision();
    let refused = session
        .post(
            &console,
            "/config/import",
            &[(
                "yaml",
                "routes:\n  - id: r1\n    paths: [/a]\n    upstream: ghost\n",
            )],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("Nothing was imported"));
    assert!(refused.body.contains("routes[r1]"), "{}", refused.body);
    assert!(refused.body.contains("upstream: ghost"), "the text is kept");
    let garbled = session
        .post(&console, "/config/import", &[("yaml", "nonsense: [")])
        .await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST);
    assert!(garbled.body.contains("invalid YAML"));
    assert_eq!(console.store().revision(), revision);
}
