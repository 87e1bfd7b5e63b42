//! The config feed (token, long poll, changes after a revision, the whole config), the
//! node list, and a follower's read-only API.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::cluster::{Cluster, FeedAnswer, FeedMode, Following};

const CLUSTER_TOKEN: &str = "cluster-secret";

fn control() -> Harness {
    Harness::with_cluster(Cluster {
        token: Some(CLUSTER_TOKEN.into()),
        ..Cluster::default()
    })
}

async fn feed(h: &Harness, query: &str, token: Option<&str>) -> Answer {
    let mut req = Request::builder().uri(format!("/api/v1/cluster/feed?{query}"));
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    h.send(req.body(Body::empty()).expect("request")).await
}

fn answer(a: &Answer) -> FeedAnswer {
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    serde_json::from_slice(&a.bytes).expect("a feed answer")
}

#[tokio::test]
async fn the_feed_is_off_without_a_cluster_token() {
    let h = Harness::new();
    let a = feed(&h, "after=0&node=f1", Some(CLUSTER_TOKEN)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.json["error"]
        .as_str()
        .is_some_and(|e| e.contains("TOLLGATE_CLUSTER_TOKEN")));
}

#[tokio::test]
async fn the_feed_refuses_a_missing_or_wrong_token_and_the_admin_token() {
    let h = control();
    h.seed().await;
    for token in [None, Some("wrong"), Some(TOKEN), Some("cluster-secre")] {
        let a = feed(&h, "after=0&node=f1&wait=0", token).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(a.json.get("config").is_none());
    }
    assert!(h.get("/api/v1/cluster/nodes").await.json == json!([]));
}

#[tokio::test]
async fn the_feed_answers_the_whole_config_then_the_changes_after_a_revision() {
    let h = control();
    h.seed().await;
    let whole = answer(&feed(&h, "after=0&node=f1&wait=0", Some(CLUSTER_TOKEN)).await);
    // A new store's history starts at 0: the whole history is still there.
    assert_eq!(whole.mode, FeedMode::Changes);
    assert_eq!(whole.revision, 4);
    assert_eq!(whole.changes.as_ref().map(Vec::len), Some(4));
    assert_eq!(whole.nodes, 2, "the control node and the follower asking");

    let a = answer(&feed(&h, "after=2&node=f1&wait=0", Some(CLUSTER_TOKEN)).await);
    let revisions: Vec<u64> = a
        .changes
        .expect("changes")
        .iter()
        .map(|d| d.revision)
        .collect();
    assert_eq!(revisions, [3, 4]);

    let a = answer(&feed(&h, "after=9&node=f1&wait=0", Some(CLUSTER_TOKEN)).await);
    assert_eq!(a.mode, FeedMode::Whole);
    let config = a.config.expect("the whole config");
    assert_eq!(config.routes[0].id, "orders-v1");

    let a = answer(&feed(&h, "after=4&node=f1&wait=0", Some(CLUSTER_TOKEN)).await);
    assert_eq!(a.mode, FeedMode::Current);
}

#[tokio::test]
async fn a_waiting_feed_request_answers_as_soon_as_the_config_changes() {
    let h = Arc::new(control());
    h.seed().await;
    let waiting = {
        let h = Arc::clone(&h);
        tokio::spawn(async move { feed(&h, "after=4&node=f1&wait=30", Some(CLUSTER_TOKEN)).await })
    };
    // The follower is listed while it waits.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let nodes = h.get("/api/v1/cluster/nodes").await.json;
        if nodes[0]["connected"] == json!(true) {
            assert_eq!(nodes[0]["id"], "f1");
            assert_eq!(nodes[0]["revision"], 4);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never listed: {nodes}"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        h.delete("/api/v1/routes/orders-v1").await.status,
        StatusCode::NO_CONTENT
    );
    let a = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered before its wait ended")
        .expect("task");
    let a = answer(&a);
    assert_eq!(a.mode, FeedMode::Changes);
    let changes = a.changes.expect("changes");
    assert_eq!(changes[0].revision, 5);
    assert_eq!(changes[0].deletes[0].id, "orders-v1");
}

#[tokio::test]
async fn a_malformed_feed_request_names_its_fields() {
    let h = control();
    let a = feed(&h, "after=x&wait=0", Some(CLUSTER_TOKEN)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let mut paths = problem_paths(&a);
    paths.sort();
    assert_eq!(paths, ["after", "node"]);
}

#[tokio::test]
async fn a_follower_refuses_writes_and_keeps_reads() {
    let following = Arc::new(Following::new("http://control:9080", 0));
    let h = Harness::with_cluster(Cluster {
        following: Some(Arc::clone(&following)),
        ..Cluster::default()
    });
    let expected = json!({
        "error": "this node follows http://control:9080: write to the control node",
        "problems": []
    });
    for (method, path) in [
        (Method::POST, "/api/v1/upstreams"),
        (Method::PUT, "/api/v1/config"),
        (Method::DELETE, "/api/v1/routes/x"),
        (Method::POST, "/api/v1/consumers/acme/keys"),
    ] {
        let a = h.call(method.clone(), path, Some(upstream("u"))).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{method} {path}");
        assert_eq!(a.json, expected);
    }
    assert_eq!(h.store.revision(), 0, "nothing written");
    assert_eq!(h.get("/api/v1/routes").await.status, StatusCode::OK);
    // Not to strangers: authentication comes first.
    let stranger = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/upstreams")
        .body(Body::empty())
        .expect("request");
    assert_eq!(h.send(stranger).await.status, StatusCode::UNAUTHORIZED);

    following.synced(7, 1_700_000_000);
    let status = h.get("/api/v1/status").await.json;
    assert_eq!(
        status["follow"],
        json!({"url": "http://control:9080", "connected": true, "revision": 7,
               "last_sync": 1_700_000_000u64})
    );
}

#[tokio::test]
async fn a_node_on_its_own_has_no_follow_status() {
    let h = Harness::new();
    let status = h.get("/api/v1/status").await.json;
    assert!(status.get("follow").is_none(), "{status}");
}

#[tokio::test]
async fn answers_sending_the_whole_config_share_one_encoding_freed_after_them() {
    let encoding = crate::cluster::WholeEncoding::default();
    let config = Arc::new(storage::Config::default());
    let a = encoding.get(3, Arc::clone(&config)).await.expect("encoded");
    let b = encoding.get(3, Arc::clone(&config)).await.expect("encoded");
    assert!(Arc::ptr_eq(&a, &b), "one encoding for one revision");
    let c = encoding.get(4, Arc::clone(&config)).await.expect("encoded");
    assert!(!Arc::ptr_eq(&a, &c), "another revision is encoded anew");
    assert_eq!(
        serde_json::from_slice::<storage::Config>(&c).expect("JSON"),
        *config
    );
    let held = Arc::downgrade(&c);
    drop((a, b, c));
    assert!(held.upgrade().is_none(), "not kept once no answer sends it");
}
