//! A follower's console: read-only with a banner naming the control node; forms refused
//! server-side; logging in and out still work; the Nodes page.

use super::*;

const URL: &str = "https://control.example:9080";

#[tokio::test]
async fn a_follower_shows_a_banner_and_refuses_every_form() {
    let console = Console::following(URL);
    let session = console.login().await;
    let page = session.get(&console, "/routes").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("follower-banner"), "{}", page.body);
    assert!(page.body.contains(URL));

    for (path, form) in [
        ("/upstreams", vec![("id", "u"), ("targets", "127.0.0.1:9")]),
        ("/keys", vec![("consumer", "acme")]),
        ("/config/import", vec![("yaml", "routes: []")]),
        ("/routes/x/delete", vec![]),
    ] {
        let refused = session.post(&console, path, &form).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{path}");
        assert!(
            refused.body.contains(&format!(
                "this node follows {URL}: write to the control node"
            )),
            "{path}: {}",
            refused.body
        );
    }
    assert_eq!(console.store().revision(), 0, "nothing written");

    let nodes = session.get(&console, "/nodes").await;
    assert_eq!(nodes.status, StatusCode::OK);
    assert!(nodes.body.contains("Control node"));

    let out = session.post(&console, "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "logging out still works");
}

#[tokio::test]
async fn a_node_on_its_own_shows_no_banner() {
    let console = Console::new();
    let session = console.login().await;
    let page = session.get(&console, "/routes").await;
    assert!(!page.body.contains("follower-banner"));
    let nodes = session.get(&console, "/nodes").await;
    assert_eq!(nodes.status, StatusCode::OK);
    assert!(!nodes.body.contains("Control node"));
}
