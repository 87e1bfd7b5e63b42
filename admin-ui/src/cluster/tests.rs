use super::*;

fn caller(id: &str, revision: u64) -> Caller {
    Caller {
        id: id.into(),
        address: "10.0.0.1:8080".into(),
        version: "0.1.0".into(),
        revision,
    }
}

#[test]
fn a_polling_node_is_listed_connected_with_what_it_reported() {
    let nodes = Nodes::default();
    let guard = nodes.poll(caller("b", 3), 100);
    let _a = nodes.poll(caller("a", 7), 101);
    assert_eq!(nodes.connected(), 2);
    let list = nodes.list();
    assert_eq!(list[0].id, "a");
    assert_eq!(list[0].revision, 7);
    assert_eq!(list[1].address, "10.0.0.1:8080");
    assert!(list.iter().all(|n| n.connected));
    drop(guard);
    assert_eq!(nodes.list()[1].revision, 3);
}

#[test]
fn the_registry_is_bounded() {
    let nodes = Nodes::default();
    for i in 0..MAX_NODES + 10 {
        drop(nodes.poll(caller(&format!("n{i}"), 0), 1));
    }
    assert_eq!(nodes.list().len(), MAX_NODES);
}

#[test]
fn follow_status_reports_the_last_sync() {
    let following = Following::new("http://control:9080", 4);
    let status = following.status();
    assert!(!status.connected);
    assert_eq!(status.last_sync, None);
    following.synced(9, 1234);
    let status = following.status();
    assert!(status.connected);
    assert_eq!((status.revision, status.last_sync), (9, Some(1234)));
    following.disconnected();
    assert!(!following.status().connected);
    assert_eq!(
        following.refusal(),
        "this node follows http://control:9080: write to the control node"
    );
}
