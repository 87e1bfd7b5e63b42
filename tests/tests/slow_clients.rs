//! The header deadline (`--header-timeout`): a client must send a whole request header in
//! time, however it trickles it, while a slow upstream or an idle keep-alive connection is
//! not cut by it. Pingora alone would wait 60 s per read, so each closed connection below
//! is the gateway's own deadline at work.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tests::admin::upstream_spec;
use tests::{EchoServer, Gateway, GatewayOptions};

/// Far below Pingora's own 60 s read timeout, far above the 1 s header timeout.
const CUT_WITHIN: Duration = Duration::from_secs(10);

fn setup(delay: Duration) -> Result<(Gateway, EchoServer)> {
    let gateway = Gateway::start(GatewayOptions {
        args: vec!["--header-timeout".into(), "1".into()],
        ..GatewayOptions::default()
    })?;
    let server = EchoServer::start("patient")?;
    server.set_delay(delay);
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("patient", &[server.addr()]))?;
    admin.create_route(&json!({"id": "all", "paths": ["/"], "upstream": "patient"}))?;
    Ok((gateway, server))
}

/// Reads until the gateway closes the connection; `Err` if it is still open after
/// [`CUT_WITHIN`]. Returns what it sent (nothing is expected).
fn read_until_closed(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let started = Instant::now();
    stream.set_read_timeout(Some(CUT_WITHIN))?;
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(e) => bail!("still open after {:?}: {e}", started.elapsed()),
        }
    }
}

#[test]
fn a_header_that_stops_halfway_is_cut_off() -> Result<()> {
    let (gateway, server) = setup(Duration::ZERO)?;
    let mut stream = TcpStream::connect(gateway.proxy_addr())?;
    stream.write_all(b"GET /half HTTP/1.1\r\nHost: x\r\nX-Unfinished: ")?;
    let sent = read_until_closed(&mut stream)?;
    assert!(sent.is_empty(), "no answer is owed: {sent:?}");
    assert_eq!(server.hits(), 0, "nothing reached the upstream");
    Ok(())
}

#[test]
fn a_header_trickled_byte_by_byte_is_cut_off() -> Result<()> {
    let (gateway, server) = setup(Duration::ZERO)?;
    let mut stream = TcpStream::connect(gateway.proxy_addr())?;
    stream.write_all(b"GET /trickle HTTP/1.1\r\nHost: x\r\nX-Slow: ")?;
    let mut writer = stream.try_clone()?;
    // The slow client itself: one byte every 200 ms, each of which would restart a
    // per-read timeout. It stops when the gateway closes the connection.
    let trickle = std::thread::spawn(move || {
        while writer.write_all(b"a").is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let sent = read_until_closed(&mut stream)?;
    assert!(sent.is_empty(), "no answer is owed: {sent:?}");
    assert_eq!(server.hits(), 0, "nothing reached the upstream");
    trickle.join().expect("trickling thread");
    Ok(())
}

#[test]
fn a_slow_upstream_is_not_cut_by_the_header_deadline() -> Result<()> {
    // The upstream answers after 1.5 s: past the header deadline, within the read timeout.
    let (gateway, server) = setup(Duration::from_millis(1500))?;
    let stream = TcpStream::connect(gateway.proxy_addr())?;
    stream.set_read_timeout(Some(CUT_WITHIN))?;
    (&stream).write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut reader = BufReader::new(stream);
    assert_eq!(read_response(&mut reader)?.0, 200);
    assert_eq!(server.hits(), 1);
    Ok(())
}

#[test]
fn an_idle_keepalive_connection_outlives_the_header_timeout() -> Result<()> {
    let (gateway, server) = setup(Duration::ZERO)?;
    let stream = TcpStream::connect(gateway.proxy_addr())?;
    stream.set_read_timeout(Some(CUT_WITHIN))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    (&stream).write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")?;
    assert_eq!(read_response(&mut reader)?.0, 200);
    // Idle for longer than the header timeout: a keep-alive connection may wait for its
    // next request as long as the keep-alive idle time.
    std::thread::sleep(Duration::from_millis(1500));
    (&stream).write_all(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")?;
    assert_eq!(read_response(&mut reader)?.0, 200);
    assert_eq!(server.hits(), 2);
    Ok(())
}

#[test]
fn a_client_that_reads_slowly_gets_the_whole_large_answer() -> Result<()> {
    // The upstream's read timeout is short; the answer is far larger than every socket
    // buffer on the way, so the gateway waits on the client, not on the upstream, while
    // the client does not read. That wait is no upstream timeout.
    const SIZE: usize = 16 << 20;
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("big")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "big", "targets": [{"addr": server.addr().to_string()}], "read_timeout_ms": 300,
    }))?;
    admin.create_route(&json!({"id": "big", "paths": ["/"], "upstream": "big"}))?;
    let stream = TcpStream::connect(gateway.proxy_addr())?;
    stream.set_read_timeout(Some(CUT_WITHIN))?;
    (&stream).write_all(format!("GET /bytes/{SIZE} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())?;
    // The slow client: nothing read for five read timeouts.
    std::thread::sleep(Duration::from_millis(1500));
    let mut reader = BufReader::new(stream);
    assert_eq!(read_response(&mut reader)?, (200, SIZE));
    Ok(())
}

/// Reads one response of a keep-alive connection whole (its body by its length); returns
/// its status and how many body bytes came.
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<(u16, usize)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("status line {line:?}"))?;
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
        }
    }
    let mut got = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    while got < length {
        match reader.read(&mut buffer)? {
            0 => break,
            n => got += n,
        }
    }
    Ok((status, got))
}
