//! Each class of error is logged once per interval: a client guessing admin bearer tokens
//! in a loop gets every request refused (401) but costs one log line a minute, not one a
//! request, and a valid token keeps working.

use anyhow::Result;
use tests::Gateway;

const LINE: &str = "admin API bearer token refused";

#[test]
fn refused_bearer_tokens_are_logged_once_per_interval() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    for i in 0..25 {
        let wrong = admin.with_token(Some(&format!("guess-{i}")));
        let answer = wrong.get("/api/v1/upstreams")?;
        assert_eq!(answer.status, 401, "guess {i}: {}", answer.text);
    }
    admin
        .get("/api/v1/upstreams")?
        .expect_status(200, "the real token still works")?;
    let logs = gateway.logs();
    let lines = logs.lines().filter(|l| l.contains(LINE)).count();
    assert_eq!(lines, 1, "25 refusals within a minute: one line\n{logs}");
    Ok(())
}
