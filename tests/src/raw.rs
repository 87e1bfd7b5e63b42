//! Raw TCP for hostile-input tests: send exact bytes, read whatever comes back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// What the peer sent back before closing or going quiet.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status of the first response's status line, if one arrived.
    pub status: Option<u16>,
    /// Everything read, lossily decoded.
    pub text: String,
    /// Whether the peer closed the connection (rather than going quiet).
    pub closed: bool,
}

impl RawResponse {
    /// How many HTTP responses (status lines) the bytes contain: more than one to a single
    /// request means something was smuggled.
    pub fn status_lines(&self) -> usize {
        self.text.matches("HTTP/1.1 ").count() + self.text.matches("HTTP/1.0 ").count()
    }

    /// The first response's header section (status line included), up to the blank line.
    pub fn head(&self) -> &str {
        self.text.split("\r\n\r\n").next().unwrap_or_default()
    }

    /// What follows the first response's header section.
    pub fn body(&self) -> &str {
        self.text
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    /// The values of header `name` in the first response's header section (any case).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.head()
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

/// Connects to `addr`, writes `request` (ignoring a reset while writing: a server may
/// close early on bad input), and reads until the peer closes or is quiet for `quiet`,
/// at most 10 s in all.
pub fn send_raw(addr: SocketAddr, request: &[u8], quiet: Duration) -> Result<RawResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(quiet))?;
    let _ = stream.write_all(request);
    let _ = stream.flush();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let mut closed = false;
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) => {
                closed = !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Ok(RawResponse {
        status,
        text,
        closed,
    })
}

/// One keep-alive HTTP/1.1 connection held open between requests (for tests about open
/// connections): each [`KeepAlive::get`] sends a request and reads its whole answer
/// (`Content-Length` or chunked), leaving the connection idle and open.
pub struct KeepAlive {
    stream: TcpStream,
}

impl KeepAlive {
    /// Connects to `addr` (reads time out after 5 s).
    pub fn connect(addr: SocketAddr) -> Result<KeepAlive> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(KeepAlive { stream })
    }

    /// `GET path`; the answer's status. `Err` when the peer closes or resets the
    /// connection before a whole answer, or sends something that is not one.
    pub fn get(&mut self, path: &str) -> Result<u16> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        self.stream.write_all(request.as_bytes())?;
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(end) = answer_end(&bytes) {
                anyhow::ensure!(end == bytes.len(), "more bytes than one answer");
                let text = String::from_utf8_lossy(&bytes);
                let code = text
                    .strip_prefix("HTTP/1.1 ")
                    .and_then(|rest| rest.get(..3))
                    .and_then(|code| code.parse().ok())
                    .context("no status line")?;
                return Ok(code);
            }
            let n = self
                .stream
                .read(&mut buffer)
                .context("reading the answer")?;
            anyhow::ensure!(
                n > 0,
                "closed after {} bytes: {:?}",
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            );
            bytes.extend_from_slice(&buffer[..n]);
        }
    }
}

/// Where the first answer in `bytes` ends, once all of it is there.
fn answer_end(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    match length {
        Some(n) => (bytes.len() >= head_end + n).then_some(head_end + n),
        None if head.contains("transfer-encoding: chunked") => {
            let body = &bytes[head_end..];
            let end = body.windows(5).position(|w| w == b"0\r\n\r\n")?;
            Some(head_end + end + 5)
        }
        None => Some(head_end),
    }
}
