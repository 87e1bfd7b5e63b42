//! Rate limits and quotas shared through Redis (`--redis`): several real gateway nodes
//! (separate data directories, the same config imported into each) naming one real
//! `redis-server` count exactly as one; Redis killed mid-traffic, no request fails and the
//! counts made meanwhile reach Redis once it is back; and the whole topology, one control
//! node and two followers on one Redis.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tests::admin::upstream_spec;
use tests::RedisServer;
use tests::{http_client, send, wait_until, Answer, EchoServer, Gateway, GatewayOptions};

/// Nodes sharing one Redis and one config, with an echo upstream `up`.
struct Cluster {
    redis: RedisServer,
    nodes: Vec<Gateway>,
    _upstream: EchoServer,
    client: reqwest::blocking::Client,
}

/// Two consumers: `ratey` (no plan) for the route limit, `quoty` (plan `daily`: 25 a day)
/// for the quota; each with one API key, the same on every node.
fn config_objects() -> Vec<(&'static str, Value)> {
    vec![
        (
            "plans",
            json!({"id": "daily", "quota": {"requests": 25, "per": "day"}}),
        ),
        ("consumers", json!({"id": "ratey"})),
        ("consumers", json!({"id": "quoty", "plan": "daily"})),
        (
            "routes",
            json!({"id": "limited", "paths": ["/limited"], "upstream": "up", "policies": [
                {"type": "key_auth"},
                {"type": "rate_limit", "requests": 10, "per": "hour", "key": "consumer"}
            ]}),
        ),
        (
            "routes",
            json!({"id": "metered", "paths": ["/metered"], "upstream": "up",
                   "policies": [{"type": "key_auth"}]}),
        ),
    ]
}

/// The value of gauge `name` on `node`'s metrics.
fn gauge(node: &Gateway, name: &str) -> Result<Option<f64>> {
    let text = node.metrics_text()?;
    let samples = tests::metrics::parse(&text);
    Ok(tests::metrics::samples(&samples, name)
        .first()
        .map(|s| s.value))
}

/// The upstream `up` (at `upstream`) and [`config_objects`], created through `admin`.
fn configure(admin: &tests::Admin, upstream: &EchoServer) -> Result<()> {
    admin.create_upstream(&upstream_spec("up", &[upstream.addr()]))?;
    for (collection, body) in config_objects() {
        admin
            .post(&format!("/api/v1/{collection}"), &body)?
            .expect_status(201, &format!("creating {collection} {body}"))?;
    }
    Ok(())
}

impl Cluster {
    /// `n` nodes on a fresh Redis; returns the cluster and the keys of `ratey` and `quoty`.
    fn start(n: usize) -> Result<(Cluster, String, String)> {
        let redis = RedisServer::start()?;
        let upstream = EchoServer::start("up")?;
        let mut nodes = Vec::new();
        for _ in 0..n {
            nodes.push(Gateway::start(GatewayOptions {
                args: vec!["--redis".into(), redis.url()],
                ..Default::default()
            })?);
        }
        let first = nodes[0].admin();
        configure(&first, &upstream)?;
        let key = |consumer: &str| -> Result<String> {
            let created = first
                .post(&format!("/api/v1/consumers/{consumer}/keys"), &json!({}))?
                .expect_status(201, "creating a key")?
                .body;
            created["key"]
                .as_str()
                .map(str::to_owned)
                .context("no key in the answer")
        };
        let (ratey, quoty) = (key("ratey")?, key("quoty")?);
        let config = first
            .get("/api/v1/config")?
            .expect_status(200, "exporting the config")?
            .body;
        for node in &nodes[1..] {
            node.admin().replace_config(&config)?;
        }
        Ok((
            Cluster {
                redis,
                nodes,
                _upstream: upstream,
                client: http_client(),
            },
            ratey,
            quoty,
        ))
    }

    fn get(&self, node: usize, path: &str, key: &str) -> Result<Answer> {
        send(
            &self.client,
            "GET",
            &self.nodes[node].url(path),
            &[("x-api-key", key)],
        )
    }

    /// `GET path` `count` times at once, spread over every node; the statuses.
    fn burst(&self, path: &str, key: &str, count: usize) -> Result<Vec<u16>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..count)
                .map(|i| s.spawn(move || self.get(i % self.nodes.len(), path, key)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow::anyhow!("request thread panicked"))?
                        .map(|a| a.status)
                })
                .collect()
        })
    }

    fn redis_up(&self, node: usize) -> Result<Option<f64>> {
        gauge(&self.nodes[node], "tollgate_redis_up")
    }

    /// The quota key of `consumer` today, as the nodes name it.
    fn quota_key(&self, consumer: &str) -> Result<String> {
        let keys = self.redis.keys(&format!("tg:q:{{c:{consumer}}}:day:*"))?;
        ensure!(keys.len() == 1, "quota keys of {consumer}: {keys:?}");
        Ok(keys[0].clone())
    }
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn a_rate_limit_is_exact_across_nodes() -> Result<()> {
    let (c, ratey, _) = Cluster::start(3)?;
    // One at a time, round robin over three nodes: 10 an hour in all, not 10 per node.
    let mut statuses = Vec::new();
    for i in 0..24 {
        let answer = c.get(i % 3, "/limited", &ratey)?;
        if answer.status == 429 {
            ensure!(answer.header("retry-after").is_some(), "{answer:?}");
            ensure!(answer.header("ratelimit-limit") == Some("10"), "{answer:?}");
            ensure!(
                answer.json()?["error"] == "rate limit exceeded",
                "{answer:?}"
            );
        } else {
            ensure!(answer.status == 200, "{} {}", answer.status, answer.text);
            // The shared figures, whichever node answered.
            let left = (9 - i as i64).to_string();
            ensure!(
                answer.header("ratelimit-remaining") == Some(left.as_str()),
                "request {i}: {:?}",
                answer.headers
            );
        }
        statuses.push(answer.status);
    }
    ensure!(count(&statuses, 200) == 10, "{statuses:?}");
    ensure!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    // Then at once, from every node: still nothing more.
    let more = c.burst("/limited", &ratey, 12)?;
    ensure!(count(&more, 429) == 12, "{more:?}");
    Ok(())
}

#[test]
fn a_day_quota_is_exact_across_nodes_under_concurrency() -> Result<()> {
    let (c, _, quoty) = Cluster::start(3)?;
    let statuses = c.burst("/metered", &quoty, 40)?;
    ensure!(count(&statuses, 200) == 25, "{statuses:?}");
    ensure!(count(&statuses, 429) == 15, "{statuses:?}");
    let key = c.quota_key("quoty")?;
    ensure!(c.redis.get_int(&key)? == 25, "redis count");
    // Every node's usage endpoint reads the shared count.
    for node in &c.nodes {
        let usage = node
            .admin()
            .get("/api/v1/consumers/quoty/usage")?
            .expect_status(200, "usage")?
            .body;
        ensure!(usage["used"] == 25 && usage["remaining"] == 0, "{usage}");
        ensure!(usage["limit"] == 25 && usage["period"] == "day", "{usage}");
    }
    let refused = c.get(1, "/metered", &quoty)?;
    ensure!(refused.status == 429, "{refused:?}");
    ensure!(refused.json()?["error"] == "quota exceeded", "{refused:?}");
    Ok(())
}

#[test]
fn traffic_flows_while_redis_is_away_and_its_counts_reach_redis_when_back() -> Result<()> {
    let (mut c, _, quoty) = Cluster::start(2)?;
    for i in 0..4 {
        ensure!(c.get(i % 2, "/metered", &quoty)?.status == 200, "before");
    }
    ensure!(c.redis.get_int(&c.quota_key("quoty")?)? == 4);
    ensure!(c.redis_up(0)? == Some(1.0) && c.redis_up(1)? == Some(1.0));
    c.redis.kill()?;
    // No request fails: each node counts its share (25 / 1 live node: the follow feed
    // is not running, so each node knows of itself only).
    let statuses = c.burst("/metered", &quoty, 10)?;
    ensure!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    let passed_while_away = count(&statuses, 200);
    ensure!(passed_while_away == 10, "{statuses:?}");
    for node in 0..2 {
        wait_until("tollgate_redis_up 0", Duration::from_secs(10), || {
            Ok((c.redis_up(node)? == Some(0.0)).then_some(()))
        })?;
        let status = c.nodes[node]
            .admin()
            .get("/api/v1/status")?
            .expect_status(200, "status")?
            .body;
        ensure!(status["redis"]["up"] == false, "{status}");
        ensure!(status["redis"]["last_error"].is_string(), "{status}");
        ensure!(status["redis"]["url"] == c.redis.url().as_str(), "{status}");
    }
    // Back (empty: no persistence): the counts made meanwhile are added.
    c.redis.restart()?;
    for node in 0..2 {
        wait_until("tollgate_redis_up 1", Duration::from_secs(10), || {
            Ok((c.redis_up(node)? == Some(1.0)).then_some(()))
        })?;
    }
    let key = c.quota_key("quoty")?;
    ensure!(
        c.redis.get_int(&key)? == passed_while_away as i64,
        "redis holds {} after the restart",
        c.redis.get_int(&key)?
    );
    let ttl = c.redis.cmd(&["TTL", &key])?.as_int().unwrap_or(-1);
    ensure!(ttl > 0 && ttl <= 86_400, "TTL {ttl}");
    // And counting is shared again.
    ensure!(c.get(0, "/metered", &quoty)?.status == 200);
    ensure!(c.redis.get_int(&key)? == passed_while_away as i64 + 1);
    Ok(())
}

#[test]
fn quota_counts_made_while_redis_is_away_survive_a_graceful_restart() -> Result<()> {
    let (mut c, _, quoty) = Cluster::start(1)?;
    ensure!(c.get(0, "/metered", &quoty)?.status == 200);
    ensure!(c.redis.get_int(&c.quota_key("quoty")?)? == 1);
    c.redis.kill()?;
    for _ in 0..5 {
        ensure!(c.get(0, "/metered", &quoty)?.status == 200, "while away");
    }
    // Stopped while Redis is still away: the five are kept in the data directory.
    let node = &mut c.nodes[0];
    node.sigterm()?;
    let status = node.wait_exit(Duration::from_secs(20))?;
    ensure!(status.success(), "exit {status}\n{}", node.logs());
    let kept = node.data_dir().join("redis-pending.json");
    let held = std::fs::read_to_string(&kept).context("the kept counts")?;
    ensure!(held.contains("\"count\":5"), "{held}");
    ensure!(
        node.logs().contains("5 quota counts kept"),
        "{}",
        node.logs()
    );

    // Redis back (empty), the node back: Redis gets the five, the file goes.
    c.redis.restart()?;
    c.nodes[0].start_again()?;
    wait_until("the kept counts in redis", Duration::from_secs(10), || {
        let keys = c.redis.keys("tg:q:{c:quoty}:day:*")?;
        Ok(match keys.first() {
            Some(key) if c.redis.get_int(key)? == 5 => Some(()),
            _ => None,
        })
    })?;
    wait_until("the kept file removed", Duration::from_secs(10), || {
        Ok((!kept.exists()).then_some(()))
    })?;
    ensure!(c.get(0, "/metered", &quoty)?.status == 200);
    ensure!(c.redis.get_int(&c.quota_key("quoty")?)? == 6);
    // Stopped with nothing pending: no file.
    c.nodes[0].restart()?;
    ensure!(!kept.exists(), "a file with nothing to keep");
    Ok(())
}

/// Sends `signal` (`STOP`, `CONT`) to the process `pid`.
fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -{signal} {pid}");
    Ok(())
}

#[test]
fn a_hung_redis_times_out_into_local_counting_and_loses_nothing() -> Result<()> {
    let (c, _, quoty) = Cluster::start(1)?;
    ensure!(c.get(0, "/metered", &quoty)?.status == 200);
    let key = c.quota_key("quoty")?;
    let pid = c.redis.pid().context("redis runs")?;
    // Stopped, not gone: the connection stays open and nothing answers.
    signal(pid, "STOP")?;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(c.get(0, "/metered", &quoty)?.status);
    }
    ensure!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    wait_until("tollgate_redis_up 0", Duration::from_secs(10), || {
        Ok((c.redis_up(0)? == Some(0.0)).then_some(()))
    })?;
    let status = c.nodes[0].admin().get("/api/v1/status")?.body;
    ensure!(status["redis"]["up"] == false, "{status}");
    signal(pid, "CONT")?;
    wait_until("tollgate_redis_up 1", Duration::from_secs(10), || {
        Ok((c.redis_up(0)? == Some(1.0)).then_some(()))
    })?;
    // 1 before, 6 while stopped. The request that timed out may also have been counted by
    // Redis once it ran again (its script was already sent): at most one more.
    let held = c.redis.get_int(&key)?;
    ensure!((7..=8).contains(&held), "redis holds {held}");
    Ok(())
}

#[test]
fn a_redis_url_that_is_not_one_stops_the_start_with_its_flag_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_string_lossy().into_owned();
    let out = tests::run_cli(
        &[
            "run",
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--redis",
            "http://user:hunter2@cache:6379",
        ],
        &[],
    )?;
    ensure!(out.code() != Some(0), "exit {:?}", out.code());
    let text = out.all_output();
    ensure!(text.contains("--redis"), "{text}");
    ensure!(!text.contains("hunter2"), "the password is printed: {text}");
    Ok(())
}

const CLUSTER_TOKEN: &str = "e2e-redis-cluster-token";

/// The whole topology of a cluster: one control node and two followers (`--follow`), all
/// three on one Redis. The config is written once, on the control node; limits and quotas
/// count across the three as on one node; a deleted key is refused everywhere; with Redis
/// away each node allows its share of a quota (the limit divided by the three live nodes
/// the control node reports through the feed).
#[test]
fn one_control_node_and_two_followers_on_one_redis_count_as_one() -> Result<()> {
    let redis = RedisServer::start()?;
    let upstream = EchoServer::start("up")?;
    let cluster_env = vec![(
        "TOLLGATE_CLUSTER_TOKEN".to_owned(),
        CLUSTER_TOKEN.to_owned(),
    )];
    let control = Gateway::start(GatewayOptions {
        env: cluster_env.clone(),
        args: vec!["--redis".into(), redis.url()],
        ..Default::default()
    })?;
    let admin = control.admin();
    configure(&admin, &upstream)?;
    // A plan whose quota is shared out while Redis is away: 30 a day, 10 per node.
    admin
        .post(
            "/api/v1/plans",
            &json!({"id": "thirty", "quota": {"requests": 30, "per": "day"}}),
        )?
        .expect_status(201, "plan thirty")?;
    admin
        .post(
            "/api/v1/consumers",
            &json!({"id": "shared", "plan": "thirty"}),
        )?
        .expect_status(201, "consumer shared")?;
    let key = |consumer: &str| -> Result<(String, String)> {
        let created = admin
            .post(&format!("/api/v1/consumers/{consumer}/keys"), &json!({}))?
            .expect_status(201, "creating a key")?
            .body;
        Ok((
            created["key"].as_str().context("key")?.to_owned(),
            created["id"].as_str().context("id")?.to_owned(),
        ))
    };
    let ((ratey, _), (quoty, quoty_id), (shared, _)) =
        (key("ratey")?, key("quoty")?, key("shared")?);
    let revision = admin.get("/api/v1/status")?.body["revision"].clone();

    let follower = |id: &str| {
        Gateway::start(GatewayOptions {
            env: cluster_env.clone(),
            args: vec![
                "--follow".into(),
                format!("http://{}", control.admin_addr()),
                "--node-id".into(),
                id.into(),
                "--redis".into(),
                redis.url(),
            ],
            ..Default::default()
        })
    };
    let (f1, f2) = (follower("f1")?, follower("f2")?);
    for f in [&f1, &f2] {
        wait_until(
            "a follower at the control node's revision",
            Duration::from_secs(20),
            || Ok((f.admin().get("/api/v1/status")?.body["revision"] == revision).then_some(())),
        )?;
        ensure!(
            f.admin()
                .post("/api/v1/consumers", &json!({"id": "x"}))?
                .status
                == 409,
            "a follower refuses writes"
        );
    }
    let nodes = [&control, &f1, &f2];
    let client = http_client();
    let get = |node: usize, path: &str, key: &str| -> Result<u16> {
        Ok(send(
            &client,
            "GET",
            &nodes[node].url(path),
            &[("x-api-key", key)],
        )?
        .status)
    };
    let burst = |path: &str, key: &str, count: usize| -> Result<Vec<u16>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..count)
                .map(|i| s.spawn(move || get(i % 3, path, key)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| anyhow::anyhow!("request thread panicked"))?
                })
                .collect()
        })
    };

    // 10 an hour for ratey, 30 requests spread over the three nodes at once.
    let statuses = burst("/limited", &ratey, 30)?;
    ensure!(
        count(&statuses, 200) == 10 && count(&statuses, 429) == 20,
        "{statuses:?}"
    );
    // 25 a day for quoty, 40 at once.
    let statuses = burst("/metered", &quoty, 40)?;
    ensure!(
        count(&statuses, 200) == 25 && count(&statuses, 429) == 15,
        "{statuses:?}"
    );

    // A key deleted on the control node is refused by every node.
    admin
        .delete(&format!("/api/v1/consumers/quoty/keys/{quoty_id}"))?
        .expect_status(204, "deleting quoty's key")?;
    for node in 0..3 {
        wait_until("the deleted key refused", Duration::from_secs(20), || {
            Ok((get(node, "/metered", &quoty)? == 401).then_some(()))
        })?;
    }

    // The control node counts three live nodes (its count is taken every second), and
    // told the followers so with the change above.
    let listed = admin.get("/api/v1/cluster/nodes")?.body;
    ensure!(listed.as_array().map(Vec::len) == Some(2), "{listed}");
    wait_until(
        "the control node counting two followers",
        Duration::from_secs(10),
        || {
            let text = control.metrics_text()?;
            let samples = tests::metrics::parse(&text);
            let followers = tests::metrics::samples(&samples, "tollgate_cluster_followers");
            Ok((followers.first().map(|s| s.value) == Some(2.0)).then_some(()))
        },
    )?;
    // Redis away: each node allows a third of `shared`'s 30.
    let mut redis = redis;
    redis.kill()?;
    for node in 0..3 {
        let statuses: Vec<u16> = (0..15)
            .map(|_| get(node, "/metered", &shared))
            .collect::<Result<_>>()?;
        ensure!(
            count(&statuses, 200) == 10 && count(&statuses, 429) == 5,
            "node {node} with Redis away: {statuses:?}"
        );
    }
    Ok(())
}

/// `rediss://`: counts reach a Redis that serves TLS, whose certificate the node verifies
/// (trusted here through OpenSSL's `SSL_CERT_FILE`); a node that does not trust it never
/// counts there, says why, and keeps serving on node-local limits.
#[test]
fn counts_go_over_rediss_to_a_redis_whose_certificate_is_verified() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cert = tests::certs::TestCert::loopback(dir.path(), "redis")?;
    let redis = RedisServer::start_tls(cert.clone())?;
    let url = redis.tls_url().context("a TLS port")?;
    let upstream = EchoServer::start("up")?;
    let node = |trusting: bool| -> Result<(Gateway, String)> {
        let mut env = Vec::new();
        if trusting {
            env.push((
                "SSL_CERT_FILE".to_owned(),
                cert.cert_file.display().to_string(),
            ));
        }
        let node = Gateway::start(GatewayOptions {
            env,
            args: vec!["--redis".into(), url.clone()],
            ..Default::default()
        })?;
        let admin = node.admin();
        configure(&admin, &upstream)?;
        let created = admin
            .post("/api/v1/consumers/quoty/keys", &json!({}))?
            .expect_status(201, "a key")?
            .body;
        let key = created["key"].as_str().context("key")?.to_owned();
        Ok((node, key))
    };
    let up = |node: &Gateway| gauge(node, "tollgate_redis_up");
    let client = http_client();

    let (trusting, key) = node(true)?;
    ensure!(up(&trusting)? == Some(1.0), "redis over TLS is up");
    for _ in 0..3 {
        let answer = send(
            &client,
            "GET",
            &trusting.url("/metered"),
            &[("x-api-key", &key)],
        )?;
        ensure!(answer.status == 200, "{}", answer.text);
    }
    let keys = redis.keys("tg:q:{c:quoty}:day:*")?;
    ensure!(keys.len() == 1, "{keys:?}");
    ensure!(redis.get_int(&keys[0])? == 3, "three counts in redis");

    let (doubting, key) = node(false)?;
    ensure!(
        up(&doubting)? == Some(0.0),
        "an unverified redis is not used"
    );
    let status = doubting.admin().get("/api/v1/status")?.body;
    let error = status["redis"]["last_error"].as_str().unwrap_or_default();
    ensure!(error.contains("certificate"), "{status}");
    let answer = send(
        &client,
        "GET",
        &doubting.url("/metered"),
        &[("x-api-key", &key)],
    )?;
    ensure!(
        answer.status == 200,
        "served on node-local limits: {}",
        answer.text
    );
    ensure!(
        redis.get_int(&keys[0])? == 3,
        "nothing counted in redis by the doubting node"
    );
    Ok(())
}

/// A kept-counts file that cannot be read is neither taken nor lost: it is put aside under
/// another name (for the operator), the start goes on, and what the next stop keeps is
/// written beside it.
#[test]
fn an_unreadable_kept_counts_file_is_put_aside_not_overwritten() -> Result<()> {
    let (mut c, _, quoty) = Cluster::start(1)?;
    let data = c.nodes[0].data_dir();
    let kept = data.join("redis-pending.json");
    let node = &mut c.nodes[0];
    node.sigterm()?;
    ensure!(node.wait_exit(Duration::from_secs(20))?.success());
    std::fs::write(&kept, b"{not json")?;
    c.redis.kill()?;
    c.nodes[0].start_again()?;
    let aside = data.join("redis-pending.json.unreadable");
    ensure!(
        std::fs::read(&aside)? == b"{not json",
        "the unreadable file is put aside as it was"
    );
    ensure!(!kept.exists(), "and not left to be overwritten");
    ensure!(
        c.get(0, "/metered", &quoty)?.status == 200,
        "counted locally"
    );
    let node = &mut c.nodes[0];
    node.sigterm()?;
    ensure!(node.wait_exit(Duration::from_secs(20))?.success());
    ensure!(std::fs::read(&aside)? == b"{not json", "still there");
    let held = std::fs::read_to_string(&kept).context("the new count kept")?;
    ensure!(held.contains("\"count\":1"), "{held}");
    Ok(())
}
