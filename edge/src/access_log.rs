//! The access log: one JSON line per request, written by a dedicated thread through a
//! `BufWriter`. Each proxy thread formats its lines straight into its own pending buffer;
//! the writer swaps those buffers out every 50 ms and writes them, so a request costs the
//! formatting and no allocation, no channel and no wake-up. A thread with more than
//! [`MAX_PENDING_BYTES`] pending (a stalled disk) drops lines and counts them
//! (`tollgate_access_log_dropped_total`), so a slow disk never slows the proxy. The writer
//! flushes every second and on [`AccessLog::flush`]. API keys never appear: only the path
//! (without query string) is logged, no header; the consumer a policy identified is logged
//! by id.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use prometheus::IntCounter;

/// Bytes a proxy thread may have pending before lines are dropped (a disk that stalls
/// for seconds must not grow memory without bound).
pub const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the writer collects the threads' pending lines.
const DRAIN_EVERY: Duration = Duration::from_millis(50);

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
    /// A gRPC call's status (`grpc-status` of the answer or its trailers); logged only when
    /// there is one.
    pub grpc_status: Option<u16>,
}

/// One proxy thread's pending lines. Only that thread appends and only the writer swaps
/// the buffer out, every [`DRAIN_EVERY`], so the lock is as good as never contended.
type Pending = Arc<Mutex<Vec<u8>>>;

struct Inner {
    /// Every thread's pending buffer, registered on its first line.
    threads: Mutex<Vec<Pending>>,
    dropped: IntCounter,
}

/// What the writer thread is asked to do besides its periodic drain.
enum Request {
    /// Write out everything pending, then answer.
    Flush(SyncSender<()>),
    /// Write out everything pending, then open the file again by its path (after a log
    /// rotation renamed or deleted it) and answer whether that worked.
    Reopen(SyncSender<std::io::Result<()>>),
}

/// Handle to the access log; `off` when disabled.
#[derive(Clone)]
pub struct AccessLog {
    inner: Option<Arc<Inner>>,
    requests: Option<SyncSender<Request>>,
}

thread_local! {
    /// This thread's buffer, and the log it belongs to.
    static MINE: RefCell<Option<(Weak<Inner>, Pending)>> = const { RefCell::new(None) };
}

impl AccessLog {
    /// `dest`: `stdout`, `off`, or a file path (appended, created if needed).
    pub fn start(dest: &str, dropped: IntCounter) -> std::io::Result<AccessLog> {
        let (out, path): (Box<dyn Write + Send>, Option<PathBuf>) = match dest {
            "off" => return Ok(AccessLog::off(dropped)),
            "stdout" | "-" => (Box::new(std::io::stdout()), None),
            path => (Box::new(open_file(Path::new(path))?), Some(path.into())),
        };
        let inner = Arc::new(Inner {
            threads: Mutex::new(Vec::new()),
            dropped,
        });
        let (requests, received) = mpsc::sync_channel(16);
        let writer = inner.clone();
        std::thread::Builder::new()
            .name("access-log".to_owned())
            .spawn(move || write_loop(&writer, &received, out, path.as_deref()))?;
        Ok(AccessLog {
            inner: Some(inner),
            requests: Some(requests),
        })
    }

    /// A log that writes nothing.
    pub fn off(_dropped: IntCounter) -> AccessLog {
        AccessLog {
            inner: None,
            requests: None,
        }
    }

    /// Appends one line to this thread's pending buffer; never blocks on I/O, never
    /// allocates once the buffer has grown, never wakes another thread.
    pub fn log(&self, entry: &Entry<'_>) {
        let Some(inner) = &self.inner else {
            return;
        };
        let now = std::time::SystemTime::now();
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            let registered = matches!(&*mine,
                Some((log, _)) if std::ptr::eq(log.as_ptr(), Arc::as_ptr(inner)));
            if !registered {
                let pending = Pending::default();
                inner.threads.lock().push(pending.clone());
                *mine = Some((Arc::downgrade(inner), pending));
            }
            let Some((_, pending)) = &*mine else {
                return;
            };
            let mut buf = pending.lock();
            if buf.len() >= MAX_PENDING_BYTES {
                inner.dropped.inc();
            } else {
                format_line(&mut buf, entry, now);
            }
        });
    }

    /// Writes out everything logged so far; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        if let Some(tx) = &self.requests {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if tx.send(Request::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv_timeout(timeout);
            }
        }
    }

    /// Writes out everything logged so far to the file as it was, then opens the log's
    /// path again (SIGUSR1, after logrotate renamed the file): later lines go to the new
    /// file. Nothing to do for stdout or `off`. Blocking: waits for the writer thread. `Err`
    /// when the path cannot be opened; the log then keeps writing to the file it had.
    pub fn reopen(&self) -> std::io::Result<()> {
        let Some(tx) = &self.requests else {
            return Ok(());
        };
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let gone = || std::io::Error::other("the access log writer has stopped");
        tx.send(Request::Reopen(done_tx)).map_err(|_| gone())?;
        done_rx.recv().map_err(|_| gone())?
    }
}

fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Every [`DRAIN_EVERY`] (or at once on a flush request) swaps out each thread's pending
/// lines and writes them. The proxy threads never wake this thread per line: a writer
/// parked on a per-line channel cost a futex wake and a context switch per request
/// (measured: 15% of the proxy's CPU under load).
fn write_loop(
    inner: &Inner,
    requests: &Receiver<Request>,
    out: Box<dyn Write + Send>,
    path: Option<&Path>,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut spare = Vec::new();
    let mut last_flush = Instant::now();
    loop {
        let request = match requests.recv_timeout(DRAIN_EVERY) {
            Ok(request) => Some(request),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                drain(inner, &mut spare, &mut out);
                let _ = out.flush();
                return;
            }
        };
        drain(inner, &mut spare, &mut out);
        if request.is_some() || last_flush.elapsed() >= FLUSH_EVERY {
            let _ = out.flush();
            last_flush = Instant::now();
        }
        match request {
            None => {}
            Some(Request::Flush(done)) => {
                let _ = done.send(());
            }
            Some(Request::Reopen(done)) => {
                let reopened = match path {
                    Some(path) => open_file(path).map(|file| {
                        let file: Box<dyn Write + Send> = Box::new(file);
                        out = std::io::BufWriter::with_capacity(64 * 1024, file);
                    }),
                    None => Ok(()),
                };
                let _ = done.send(reopened);
            }
        }
    }
}

/// Writes every thread's pending lines, swapping each buffer with `spare` so that both
/// keep their capacity.
fn drain(inner: &Inner, spare: &mut Vec<u8>, out: &mut impl Write) {
    let threads: Vec<Pending> = inner.threads.lock().clone();
    for pending in threads {
        std::mem::swap(&mut *pending.lock(), spare);
        let _ = out.write_all(spare);
        spare.clear();
    }
}

/// Appends the JSON line of `e` (with a trailing newline) to `buf`. Hand-written: it runs
/// on every request, and each field is a plain string, number or address.
pub fn format_line(buf: &mut Vec<u8>, e: &Entry<'_>, now: SystemTime) {
    buf.extend_from_slice(b"{\"ts\":\"");
    write_rfc3339(buf, now);
    buf.extend_from_slice(b"\",\"route\":");
    json_str(buf, e.route);
    buf.extend_from_slice(b",\"method\":");
    json_str(buf, e.method);
    buf.extend_from_slice(b",\"path\":");
    json_str(buf, e.path);
    let mut num = itoa::Buffer::new();
    buf.extend_from_slice(b",\"status\":");
    buf.extend_from_slice(num.format(e.status).as_bytes());
    let micros = e.latency.as_micros();
    buf.extend_from_slice(b",\"latency_ms\":");
    buf.extend_from_slice(num.format(micros / 1000).as_bytes());
    let frac = (micros % 1000) as u16;
    buf.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
    buf.extend_from_slice(b",\"upstream\":");
    opt_str(buf, e.upstream);
    buf.extend_from_slice(b",\"target\":");
    opt_str(buf, e.target);
    buf.extend_from_slice(b",\"request_id\":");
    json_str(buf, e.request_id);
    buf.extend_from_slice(b",\"client_ip\":");
    match e.client_ip {
        Some(ip) => {
            let mut text = [0u8; crate::forwarded::MAX_IP_LEN];
            buf.push(b'"');
            buf.extend_from_slice(crate::forwarded::write_ip(ip, &mut text));
            buf.push(b'"');
        }
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"consumer\":");
    opt_str(buf, e.consumer);
    if let Some(code) = e.grpc_status {
        buf.extend_from_slice(b",\"grpc_status\":");
        buf.extend_from_slice(num.format(code).as_bytes());
    }
    buf.extend_from_slice(b"}\n");
}

thread_local! {
    /// The last second formatted on this thread: `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// Appends `t` in RFC 3339 UTC with the nanoseconds trimmed of trailing zeros (as the
/// `time` crate writes it). The date and time of day are formatted once per second and
/// thread.
fn write_rfc3339(buf: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let at = i64::try_from(secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let mut out = &mut text[..];
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        SECOND.set((secs, text));
    }
    buf.extend_from_slice(&text);
    let mut nanos = since.subsec_nanos();
    if nanos != 0 {
        let mut digits = [0u8; 9];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|d| **d == b'0').count();
        buf.push(b'.');
        buf.extend_from_slice(&digits[..len]);
    }
    buf.push(b'Z');
}

/// Appends `s` as a JSON string: as is when nothing needs escaping (ids, routes, most
/// paths), else through serde_json.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        // Serializing a &str cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// Whether `s` has a byte JSON escapes (a control character, `"` or `\\`); eight bytes at
/// a time, about a quarter of the instructions of a byte loop.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    // Some byte of `w` is below `n` (`n` <= 128): exact, no false positives.
    let has_below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH != 0;
    let has = |w: u64, b: u8| has_below(w ^ (ONES * u64::from(b)), 1);
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_ne_bytes(bytes);
        if has_below(w, 0x20) || has(w, b'"') || has(w, b'\\') {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
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
            grpc_status: None,
        }
    }

    #[test]
    fn formats_one_json_object_per_line() {
        let mut buf = Vec::new();
        format_line(&mut buf, &entry(), UNIX_EPOCH);
        assert_eq!(buf.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("json");
        assert_eq!(v["ts"], "1970-01-01T00:00:00Z");
        assert_eq!(v["path"], "/v1/\"orders\"");
        assert_eq!(v["status"], 200);
        assert_eq!(v["latency_ms"], 1.5);
        assert_eq!(v["target"], "127.0.0.1:9001");
        assert_eq!(v["client_ip"], "192.0.2.1");
        assert_eq!(v["consumer"], "acme");
        assert!(v.get("grpc_status").is_none(), "only gRPC calls have one");
        let mut buf = Vec::new();
        let grpc = Entry {
            grpc_status: Some(16),
            ..entry()
        };
        format_line(&mut buf, &grpc, UNIX_EPOCH);
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("json");
        assert_eq!(v["grpc_status"], 16);
    }

    #[test]
    fn escapes_exactly_what_json_needs() {
        let plain = "/v1/orders/7-ä€😀~\x7f";
        for len in 0..=plain.len() {
            let Some(s) = plain.get(..len) else { continue };
            assert!(!needs_escape(s.as_bytes()), "{s:?}");
        }
        for special in ['"', '\\', '\n', '\x00', '\x1f'] {
            for at in 0..17 {
                let s: String = "a".repeat(at) + &special.to_string() + "bcdefgh";
                assert!(needs_escape(s.as_bytes()), "{s:?}");
                let mut buf = Vec::new();
                json_str(&mut buf, &s);
                let back: String = serde_json::from_slice(&buf).expect("json");
                assert_eq!(back, s);
            }
        }
    }

    #[test]
    fn timestamps_match_the_time_crate_rfc3339() {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..2000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let secs = seed % 4_102_444_800; // up to 2100
            let nanos = match i % 4 {
                0 => 0,
                1 => (seed % 1000) as u32 * 1_000_000,
                2 => (seed % 1_000_000) as u32 * 1000,
                _ => (seed % 1_000_000_000) as u32,
            };
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            let expected = time::OffsetDateTime::from(t)
                .format(rfc3339)
                .expect("format");
            let mut buf = Vec::new();
            write_rfc3339(&mut buf, t);
            assert_eq!(String::from_utf8(buf).expect("utf8"), expected);
            // Twice in the same second: the cached date is reused.
            let mut again = Vec::new();
            write_rfc3339(&mut again, t);
            assert_eq!(String::from_utf8(again).expect("utf8"), expected);
        }
    }

    #[test]
    fn escapes_what_json_needs_and_nothing_else() {
        for s in [
            "plain",
            "/a/b?c",
            "quote\"",
            "back\\slash",
            "nl\n",
            "tab\t",
            "\u{1}",
            "é",
        ] {
            let mut buf = Vec::new();
            json_str(&mut buf, s);
            assert_eq!(buf, serde_json::to_vec(s).expect("json"), "{s:?}");
        }
    }

    #[test]
    fn latency_keeps_three_decimals() {
        for (micros, text) in [
            (0, "0.000"),
            (7, "0.007"),
            (1500, "1.500"),
            (12_345_678, "12345.678"),
        ] {
            let mut e = entry();
            e.latency = Duration::from_micros(micros);
            let mut buf = Vec::new();
            format_line(&mut buf, &e, UNIX_EPOCH);
            let line = String::from_utf8(buf).expect("utf8");
            assert!(line.contains(&format!("\"latency_ms\":{text},")), "{line}");
        }
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
