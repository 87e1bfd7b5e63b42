//! Policy `compression` end to end: the real binary in front of a real HTTP/1.1 upstream
//! (`tests::content`), answers decoded by the real decoders (flate2, brotli, zstd) and
//! compared byte for byte with what the upstream sent; Accept-Encoding negotiation with
//! q-values; what must stay untouched; HEAD, 304, Vary; a long chunked stream and a held
//! one; HTTP/2 with prior knowledge.

use std::io::{Read, Write};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tests::admin::{route_spec, upstream_spec};
use tests::content::json_body;
use tests::{http_client, ContentServer, Gateway};

/// A gateway whose route `/` (with `policies`) goes to a fresh content server.
fn gateway_with(policies: Value) -> Result<(Gateway, ContentServer)> {
    let server = ContentServer::start()?;
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("content", &[server.addr()]))?;
    let mut route = route_spec("content", &["/"], "content");
    route["policies"] = policies;
    admin.create_route(&route)?;
    Ok((gateway, server))
}

struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn vary_lines(&self) -> Vec<&str> {
        self.headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

fn fetch(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Raw> {
    let mut request = client.request(reqwest::Method::from_bytes(method.as_bytes())?, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().with_context(|| format!("{method} {url}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes()?.to_vec();
    Ok(Raw {
        status,
        headers,
        body,
    })
}

fn decode(coding: &str, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
        }
        "br" => {
            brotli::Decompressor::new(data, 4096).read_to_end(&mut out)?;
        }
        "zstd" => out = zstd::decode_all(data)?,
        other => anyhow::bail!("unknown coding {other}"),
    }
    Ok(out)
}

#[test]
fn each_algorithm_decodes_to_the_upstream_body_byte_for_byte() -> Result<()> {
    let (gateway, _server) = gateway_with(json!([{"type": "compression"}]))?;
    let client = http_client();
    let plain = json_body(20_000);
    for coding in ["gzip", "br", "zstd"] {
        let answer = fetch(
            &client,
            "GET",
            &gateway.url("/json/20000"),
            &[("accept-encoding", coding)],
        )?;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-encoding"), Some(coding));
        assert_eq!(answer.header("content-length"), None, "{coding}");
        assert_eq!(answer.header("etag"), Some("W/\"v1\""), "{coding}");
        assert_eq!(answer.vary_lines(), ["Origin, Accept-Encoding"], "{coding}");
        ensure!(
            answer.body.len() < plain.len() / 3,
            "{coding}: {} bytes for {}",
            answer.body.len(),
            plain.len()
        );
        assert_eq!(decode(coding, &answer.body)?, plain, "{coding}");
    }
    Ok(())
}

#[test]
fn negotiates_by_q_value_then_by_the_routes_order() -> Result<()> {
    let (gateway, _server) =
        gateway_with(json!([{"type": "compression", "algorithms": ["br", "gzip"]}]))?;
    let client = http_client();
    let url = gateway.url("/json/5000");
    for (accept, expected) in [
        ("gzip, br, zstd", Some("br")),
        ("zstd", None),
        ("br;q=0.5, gzip;q=0.9", Some("gzip")),
        ("br;q=0, *", Some("gzip")),
        ("*", Some("br")),
        ("*;q=0", None),
        ("br;q=0, gzip;q=0", None),
        ("identity", None),
        ("gzip;q=0.5, identity", None),
        ("gzip;q=bogus", None),
        ("", None),
    ] {
        let answer = fetch(&client, "GET", &url, &[("accept-encoding", accept)])?;
        assert_eq!(answer.header("content-encoding"), expected, "{accept:?}");
        // The answer depended on Accept-Encoding either way.
        assert_eq!(
            answer.vary_lines(),
            ["Origin, Accept-Encoding"],
            "{accept:?}"
        );
        let body = match expected {
            Some(coding) => decode(coding, &answer.body)?,
            None => answer.body.clone(),
        };
        assert_eq!(body, json_body(5000), "{accept:?}");
        if expected.is_none() {
            assert_eq!(answer.header("content-length"), Some("5000"), "{accept:?}");
            assert_eq!(answer.header("etag"), Some("\"v1\""), "{accept:?}");
        }
    }
    let none = fetch(&client, "GET", &url, &[])?;
    assert_eq!(none.header("content-encoding"), None);
    assert_eq!(none.vary_lines(), ["Origin, Accept-Encoding"]);
    Ok(())
}

#[test]
fn leaves_encoded_tiny_no_transform_and_binary_answers_untouched() -> Result<()> {
    let (gateway, _server) = gateway_with(json!([{"type": "compression"}]))?;
    let client = http_client();
    let accept = [("accept-encoding", "gzip, br, zstd")];
    let encoded = fetch(&client, "GET", &gateway.url("/encoded/5000"), &accept)?;
    assert_eq!(encoded.header("content-encoding"), Some("gzip"));
    assert_eq!(encoded.body, json_body(5000), "never encoded twice");
    assert_eq!(encoded.header("content-length"), Some("5000"));

    for path in ["/json/1000", "/no-transform/5000", "/png/5000"] {
        let answer = fetch(&client, "GET", &gateway.url(path), &accept)?;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("content-encoding"), None, "{path}");
        let n: usize = path.rsplit('/').next().unwrap_or("0").parse()?;
        assert_eq!(answer.body, json_body(n), "{path}");
        assert_eq!(
            answer.header("content-length"),
            Some(&*n.to_string()),
            "{path}"
        );
        ensure!(
            !answer
                .vary_lines()
                .iter()
                .any(|v| v.contains("Accept-Encoding")),
            "{path}: nothing depended on Accept-Encoding: {:?}",
            answer.vary_lines()
        );
    }
    // min_bytes is inclusive: 1024 bytes are compressed.
    let at_min = fetch(&client, "GET", &gateway.url("/json/1024"), &accept)?;
    assert_eq!(at_min.header("content-encoding"), Some("zstd"));
    assert_eq!(decode("zstd", &at_min.body)?, json_body(1024));
    Ok(())
}

#[test]
fn head_and_not_modified_carry_what_the_get_would() -> Result<()> {
    let (gateway, _server) = gateway_with(json!([{"type": "compression"}]))?;
    let client = http_client();
    let url = gateway.url("/json/20000");
    let accept = ("accept-encoding", "gzip");
    let get = fetch(&client, "GET", &url, &[accept])?;
    let head = fetch(&client, "HEAD", &url, &[accept])?;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for name in ["content-encoding", "etag", "vary", "content-length"] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert_eq!(head.header("content-encoding"), Some("gzip"));

    let not_modified = fetch(
        &client,
        "GET",
        &url,
        &[accept, ("if-none-match", "W/\"v1\"")],
    )?;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some("W/\"v1\""));
    assert_eq!(not_modified.vary_lines(), ["Accept-Encoding"]);
    assert_eq!(not_modified.header("content-encoding"), None);
    // A client whose copy is an identity one sends the strong validator: its 304 stays
    // as the upstream sent it.
    let identity_copy = fetch(&client, "GET", &url, &[accept, ("if-none-match", "\"v1\"")])?;
    assert_eq!(identity_copy.status, 304);
    assert_eq!(identity_copy.header("etag"), Some("\"v1\""));
    assert!(identity_copy
        .vary_lines()
        .iter()
        .all(|v| !v.contains("Accept-Encoding")));
    Ok(())
}

#[test]
fn http10_clients_and_empty_bodies_are_left_identity() -> Result<()> {
    let (gateway, _server) = gateway_with(json!([{"type": "compression", "min_bytes": 0}]))?;
    // As nginx's `gzip_http_version 1.1`: an HTTP/1.0 client cannot take chunked coding.
    let old = tests::raw::send_raw(
        gateway.proxy_addr(),
        b"GET /json/5000 HTTP/1.0\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
        std::time::Duration::from_secs(5),
    )?;
    assert_eq!(old.status, Some(200), "{}", old.head());
    assert!(
        old.header_values("content-encoding").is_empty(),
        "{}",
        old.head()
    );
    assert_eq!(old.body().as_bytes(), json_body(5000));

    let client = http_client();
    let empty = fetch(
        &client,
        "GET",
        &gateway.url("/json/0"),
        &[("accept-encoding", "gzip")],
    )?;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.header("content-encoding"), None);
    assert!(empty.body.is_empty());
    Ok(())
}

#[test]
fn a_long_chunked_stream_is_encoded_whole() -> Result<()> {
    let (gateway, _server) = gateway_with(json!([{"type": "compression", "level": 1}]))?;
    let client = http_client();
    let expected: Vec<u8> = (0..300).flat_map(|_| json_body(4096)).collect();
    for coding in ["zstd", "gzip", "br"] {
        let answer = fetch(
            &client,
            "GET",
            &gateway.url("/stream/300/4096"),
            &[("accept-encoding", coding)],
        )?;
        assert_eq!(answer.header("content-encoding"), Some(coding));
        assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
        let decoded = decode(coding, &answer.body)?;
        assert_eq!(decoded.len(), expected.len(), "{coding}");
        assert!(decoded == expected, "{coding}: the decoded stream differs");
    }
    Ok(())
}

#[test]
fn a_held_stream_reaches_the_client_before_its_end() -> Result<()> {
    let (gateway, server) = gateway_with(json!([{"type": "compression", "min_bytes": 0}]))?;
    let client = http_client();
    let mut response = client
        .get(gateway.url("/held/3000"))
        .header("accept-encoding", "gzip")
        .send()?;
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    // The upstream sends the last chunk only once released: the first must be decodable
    // before (the client's 20 s timeout fails the test otherwise).
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    let mut buf = [0u8; 8192];
    while decoder.get_ref().len() < 3000 {
        let n = response.read(&mut buf)?;
        ensure!(n > 0, "the stream ended before its first chunk decoded");
        decoder.write_all(&buf[..n])?;
        decoder.flush()?;
    }
    assert_eq!(decoder.get_ref(), &json_body(3000));
    server.release();
    let mut rest = Vec::new();
    response.read_to_end(&mut rest)?;
    decoder.write_all(&rest)?;
    let all = decoder.finish()?;
    let mut expected = json_body(3000);
    expected.extend_from_slice(b"end\n");
    assert_eq!(all, expected);
    Ok(())
}

#[test]
fn http2_clients_get_encoded_answers() -> Result<()> {
    let (gateway, _server) = gateway_with(json!([{"type": "compression"}]))?;
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    for (path, n) in [("/json/20000", 20_000), ("/stream/50/4096", 50 * 4096)] {
        let answer = fetch(
            &client,
            "GET",
            &gateway.url(path),
            &[("accept-encoding", "br")],
        )?;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-encoding"), Some("br"), "{path}");
        assert_eq!(answer.header("content-length"), None, "{path}");
        let decoded = decode("br", &answer.body)?;
        assert_eq!(decoded.len(), n, "{path}");
    }
    let decoded = decode(
        "br",
        &fetch(
            &client,
            "GET",
            &gateway.url("/json/20000"),
            &[("accept-encoding", "br")],
        )?
        .body,
    )?;
    assert_eq!(decoded, json_body(20_000));

    // And curl, a client that is not ours.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-H",
            "accept-encoding: zstd;q=0.1, gzip",
        ])
        .arg(gateway.url("/json/20000"))
        .output()?;
    ensure!(out.status.success(), "curl: {out:?}");
    assert_eq!(decode("gzip", &out.stdout)?, json_body(20_000));
    Ok(())
}

#[test]
fn refuses_unknown_algorithms_and_levels_by_their_path() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("u", &["127.0.0.1:9".parse()?]))?;
    let mut route = route_spec("r", &["/"], "u");
    route["policies"] =
        json!([{"type": "compression", "algorithms": ["gzip", "lz4"], "level": 12}]);
    let answer = admin.post("/api/v1/routes", &route)?;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let body: Value = serde_json::from_str(&answer.text)?;
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .context("problems")?
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    ensure!(
        paths
            .iter()
            .any(|p| p.ends_with("policies[0].algorithms[1]"))
            && paths.iter().any(|p| p.ends_with("policies[0].level")),
        "{}",
        answer.text
    );
    ensure!(answer.text.contains("lz4"), "{}", answer.text);
    Ok(())
}

/// A route with `cache` and `compression`: the cache keeps the upstream's answer as it
/// came, and each client, hit or miss, gets it encoded as it accepts (or identity).
#[test]
fn a_cached_answer_is_encoded_for_each_client_from_one_stored_copy() -> Result<()> {
    let (gateway, _server) = gateway_with(json!([
        {"type": "cache", "ttl_secs": 60},
        {"type": "compression"}
    ]))?;
    let client = http_client();
    let plain = json_body(20_000);
    let url = gateway.url("/json/20000");
    let first = fetch(&client, "GET", &url, &[("accept-encoding", "gzip")])?;
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(first.header("content-encoding"), Some("gzip"));
    assert_eq!(decode("gzip", &first.body)?, plain);
    for coding in ["zstd", "br", "gzip"] {
        let hit = fetch(&client, "GET", &url, &[("accept-encoding", coding)])?;
        assert_eq!(hit.header("x-cache"), Some("HIT"), "{coding}");
        assert_eq!(hit.header("content-encoding"), Some(coding));
        assert_eq!(hit.header("content-length"), None, "{coding}");
        assert_eq!(hit.vary_lines(), ["Origin, Accept-Encoding"], "{coding}");
        assert_eq!(decode(coding, &hit.body)?, plain, "{coding}");
    }
    let identity = fetch(&client, "GET", &url, &[("accept-encoding", "identity")])?;
    assert_eq!(identity.header("x-cache"), Some("HIT"));
    assert_eq!(identity.header("content-encoding"), None);
    assert_eq!(identity.body, plain);
    let head = fetch(&client, "HEAD", &url, &[("accept-encoding", "gzip")])?;
    assert_eq!(head.header("x-cache"), Some("HIT"));
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert!(head.body.is_empty());
    Ok(())
}
