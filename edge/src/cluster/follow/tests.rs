use super::*;

#[test]
fn backoff_doubles_up_to_its_cap_with_jitter_and_resets() {
    let mut backoff = Backoff::default();
    let pauses: Vec<Duration> = (0..12).map(|_| backoff.next_pause()).collect();
    assert!(pauses[0] >= MIN_BACKOFF / 2 && pauses[0] <= MIN_BACKOFF);
    assert!(pauses.iter().all(|p| *p <= MAX_BACKOFF));
    assert!(pauses[11] >= MAX_BACKOFF / 2, "reached the cap: {pauses:?}");
    backoff.reset();
    assert!(backoff.next_pause() <= MIN_BACKOFF);
}

#[test]
fn the_follow_url_is_checked() {
    let new = |url: &str, token: Option<&str>| {
        FollowConfig::new(
            url,
            token.map(str::to_owned),
            None,
            "n".into(),
            "127.0.0.1:8080".into(),
            "1",
        )
    };
    assert_eq!(
        new("https://control:9080/", Some("t")).expect("valid").url,
        "https://control:9080"
    );
    for bad in [
        "ftp://control",
        "control:9080",
        "http://control:9080/api",
        "http://u:p@control",
        "http://control:9080#f",
        "http://control:9080/#f",
    ] {
        assert!(
            matches!(new(bad, Some("t")), Err(FollowError::Url { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        new("http://control", None),
        Err(FollowError::NoToken)
    ));
    assert!(matches!(
        new("http://control", Some("")),
        Err(FollowError::NoToken)
    ));
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").expect("write");
    assert!(matches!(client(Some(&path)), Err(FollowError::Ca { .. })));
    assert!(matches!(
        client(Some(&dir.path().join("missing.pem"))),
        Err(FollowError::Ca { .. })
    ));
}

#[test]
fn an_answer_missing_what_its_mode_names_is_refused_not_taken_as_empty() {
    let answer = |json: serde_json::Value| -> FeedAnswer {
        serde_json::from_value(json).expect("a feed answer")
    };
    for bad in [
        serde_json::json!({"mode": "whole", "revision": 3, "nodes": 1}),
        serde_json::json!({"mode": "changes", "revision": 3, "nodes": 1}),
    ] {
        assert!(
            matches!(replica_of(answer(bad.clone())), Err(FollowError::Decode(_))),
            "{bad}"
        );
    }
    let current = answer(serde_json::json!({"mode": "current", "revision": 3, "nodes": 2}));
    assert!(matches!(replica_of(current), Ok(None)));
    let whole = answer(
        serde_json::json!({"mode": "whole", "revision": 3, "nodes": 2,
        "config": {"routes": []}}),
    );
    assert!(matches!(
        replica_of(whole),
        Ok(Some(Replica::Whole { revision: 3, .. }))
    ));
}

#[tokio::test]
async fn an_answer_over_the_cap_is_not_read() {
    // A server that says (or sends) more than the cap: the follower stops, whatever the
    // body; one within the cap is read whole.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for answer in [
            "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        ] {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(answer.as_bytes()).await;
            if answer.contains("chunked") {
                let _ = socket.write_all(&[b'x'; 64]).await;
                let _ = socket.write_all(b"\r\n40\r\n").await;
                let _ = socket.write_all(&[b'x'; 64]).await;
                let _ = socket.write_all(b"\r\n0\r\n\r\n").await;
            }
        }
    });
    let client = reqwest::Client::new();
    let get = || client.get(format!("http://{addr}/")).send();
    let said = get().await.expect("answer");
    assert!(matches!(
        super::read_capped(said, 10).await,
        Err(FollowError::TooBig { cap: 10 })
    ));
    let streamed = get().await.expect("answer");
    assert!(matches!(
        super::read_capped(streamed, 100).await,
        Err(FollowError::TooBig { cap: 100 })
    ));
    let fine = get().await.expect("answer");
    assert_eq!(super::read_capped(fine, 10).await.expect("read"), b"hello");
}
