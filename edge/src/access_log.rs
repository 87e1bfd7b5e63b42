//! The access log: one JSON line per request, written by a dedicated thread through a
//! `BufWriter`. A request formats its line into a thread-local buffer and hands a copy to
//! a bounded channel; when the channel is full the line is dropped and counted
//! (`tollgate_access_log_dropped_total`), so a slow disk never slows the proxy. The writer
//! flushes every second and on [`AccessLog::flush`]. API keys never appear: only the path
//! (without query string) is logged, no header; the consumer a policy identified is logged
//! by id.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use prometheus::IntCounter;

/// Lines buffered between the proxy and the writer thread.
pub const CHANNEL_CAPACITY: usize = 16 * 1024;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// One request, as logged.
#[derive(Debug)]
pub struct Entry<'a> {
    pub route: &'a str,
    pub method: &'a str,
    /// Without the query string.
    pub path: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub upstream: Option<&'a str>,
    pub target: Option<&'a str>,
    pub request_id: &'a str,
    pub client_ip: Option<IpAddr>,
    /// The consumer a policy identified (its id; never a key or credential).
    pub consumer: Option<&'a str>,
}

/// Handle to the access log; `off` when disabled.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<SyncSender<Msg>>,
    dropped: IntCounter,
}

impl AccessLog {
    /// `dest`: `stdout`, `off`, or a file path (appended, created if needed).
    pub fn start(dest: &str, dropped: IntCounter) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = match dest {
            "off" => return Ok(AccessLog { tx: None, dropped }),
            "stdout" | "-" => Box::new(std::io::stdout()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
        std::thread::Builder::new()
            .name("access-log".to_owned())
            .spawn(move || write_loop(rx, out))?;
        Ok(AccessLog {
            tx: Some(tx),
            dropped,
        })
    }

    /// A log that writes nothing.
    pub fn off(dropped: IntCounter) -> AccessLog {
        AccessLog { tx: None, dropped }
    }

    /// Queues one line; never blocks.
    pub fn log(&self, entry: &Entry<'_>) {
        let Some(tx) = &self.tx else {
            return;
        };
        let line = BUF.with(|b| {
            let mut b = b.borrow_mut();
            b.clear();
            format_line(&mut b, entry, time::OffsetDateTime::now_utc());
            b.clone()
        });
        match tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// Writes out everything queued so far; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        if let Some(tx) = &self.tx {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if tx.send(Msg::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv_timeout(timeout);
            }
        }
    }
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

fn write_loop(rx: Receiver<Msg>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(Msg::Line(line)) => {
                let _ = out.write_all(&line);
            }
            Ok(Msg::Flush(done)) => {
                let _ = out.flush();
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = out.flush();
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

/// Appends the JSON line of `e` (with a trailing newline) to `buf`.
pub fn format_line(buf: &mut Vec<u8>, e: &Entry<'_>, now: time::OffsetDateTime) {
    buf.extend_from_slice(b"{\"ts\":\"");
    let _ = now.format_into(buf, &time::format_description::well_known::Rfc3339);
    buf.extend_from_slice(b"\",\"route\":");
    json_str(buf, e.route);
    buf.extend_from_slice(b",\"method\":");
    json_str(buf, e.method);
    buf.extend_from_slice(b",\"path\":");
    json_str(buf, e.path);
    let _ = write!(
        buf,
        ",\"status\":{},\"latency_ms\":{:.3},\"upstream\":",
        e.status,
        e.latency.as_secs_f64() * 1000.0
    );
    opt_str(buf, e.upstream);
    buf.extend_from_slice(b",\"target\":");
    opt_str(buf, e.target);
    buf.extend_from_slice(b",\"request_id\":");
    json_str(buf, e.request_id);
    buf.extend_from_slice(b",\"client_ip\":");
    match e.client_ip {
        Some(ip) => {
            let _ = write!(buf, "\"{ip}\"");
        }
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"consumer\":");
    opt_str(buf, e.consumer);
    buf.extend_from_slice(b"}\n");
}

fn json_str(buf: &mut Vec<u8>, s: &str) {
    // Serializing a &str cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

fn opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            route: "orders",
            method: "GET",
            path: "/v1/\"orders\"",
            status: 200,
            latency: Duration::from_micros(1500),
            upstream: Some("orders"),
            target: Some("127.0.0.1:9001"),
            request_id: "r-1",
            client_ip: Some("192.0.2.1".parse().expect("ip")),
            consumer: Some("acme"),
        }
    }

    #[test]
    fn formats_one_json_object_per_line() {
        let mut buf = Vec::new();
        format_line(&mut buf, &entry(), time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(buf.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("json");
        assert_eq!(v["ts"], "1970-01-01T00:00:00Z");
        assert_eq!(v["path"], "/v1/\"orders\"");
        assert_eq!(v["status"], 200);
        assert_eq!(v["latency_ms"], 1.5);
        assert_eq!(v["target"], "127.0.0.1:9001");
        assert_eq!(v["client_ip"], "192.0.2.1");
        assert_eq!(v["consumer"], "acme");
    }

    #[test]
    fn writes_lines_to_a_file_on_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("access.log");
        let dropped = IntCounter::new("d", "d").expect("counter");
        let log = AccessLog::start(path.to_str().expect("utf8"), dropped.clone()).expect("start");
        log.log(&entry());
        log.log(&entry());
        log.flush(Duration::from_secs(5));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2);
        assert_eq!(dropped.get(), 0);
    }
}
