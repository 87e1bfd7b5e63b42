use axum::http::StatusCode;

use super::Console;

#[tokio::test]
async fn creates_a_key_shown_once_and_revokes_it() {
    let console = Console::new();
    let session = console.login().await;
    let empty = session.get(&console, "/keys").await;
    assert!(empty.body.contains("Create a consumer first"));
    session
        .post(&console, "/consumers/new", &[("id", "acme")])
        .await;

    let created = session
        .post(
            &console,
            "/keys",
            &[("consumer", "acme"), ("label", "ci server")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), Some("/keys?consumer=acme"));
    let shown = session.get(&console, "/keys?consumer=acme").await;
    let start =
        shown.body.find("id=\"secret\">").expect("the key is shown") + "id=\"secret\">".len();
    let key = &shown.body[start..start + shown.body[start..].find('<').expect("end")];
    assert!(key.starts_with("tg_") && key.len() > 20, "{key}");
    assert!(shown.body.contains("data-copy=\"secret\""), "a copy button");
    let config = console.store().config();
    let record = &config.keys[0];
    assert_eq!(record.hash, storage::hash_key(key));
    assert_eq!(record.label.as_deref(), Some("ci server"));
    assert!(shown.body.contains(&format!("{}…", record.prefix)));
    assert!(shown.body.contains("ci server"));
    let later = session.get(&console, "/keys").await;
    assert!(!later.body.contains(key), "shown only once");

    let revoked = session
        .post(&console, &format!("/keys/{}/revoke", record.id), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(console.store().config().keys[0].revoked);
    let list = session.get(&console, "/keys").await;
    assert!(list.body.contains(">revoked<"));

    session
        .post(&console, &format!("/keys/{}/delete", record.id), &[])
        .await;
    assert!(console.store().config().keys.is_empty());
}

#[tokio::test]
async fn refuses_a_key_for_an_unknown_consumer() {
    let console = Console::new();
    let session = console.login().await;
    session
        .post(&console, "/consumers/new", &[("id", "acme")])
        .await;
    let refused = session
        .post(&console, "/keys", &[("consumer", "ghost")])
        .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let page = session.get(&console, "/keys").await;
    assert!(
        page.body.contains("consumer \"ghost\" does not exist"),
        "{}",
        page.body
    );
    assert!(console.store().config().keys.is_empty());
    let missing = session
        .post(&console, "/keys/k000000000000/revoke", &[])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
