//! Steady, bounded background load against the proxy: each worker thread sends GETs in a
//! loop over keep-alive connections until stopped or until its hard time limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a load run saw. A failure is a transport error or any status but 200.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub ok: u64,
    pub failed: u64,
    /// The first failures (at most 20), described.
    pub failures: Vec<String>,
    /// Which upstream (`Echoed::server`) answered how often.
    pub by_server: std::collections::BTreeMap<String, u64>,
}

struct Shared {
    stop: AtomicBool,
    ok: AtomicU64,
    failed: AtomicU64,
    report: Mutex<LoadReport>,
}

/// Running load. [`Load::stop`] ends it and returns the report; dropping it stops it too.
pub struct Load {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `workers` threads sending `GET url` (with `Host: host` when given) until
    /// [`Load::stop`] or until `limit` has passed, whichever comes first.
    pub fn start(url: &str, host: Option<&str>, workers: usize, limit: Duration) -> Load {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            report: Mutex::new(LoadReport::default()),
        });
        let workers = (0..workers)
            .map(|_| {
                let shared = shared.clone();
                let url = url.to_owned();
                let host = host.map(str::to_owned);
                std::thread::spawn(move || worker(&shared, &url, host.as_deref(), limit))
            })
            .collect();
        Load { shared, workers }
    }

    /// Successful requests so far.
    pub fn ok(&self) -> u64 {
        self.shared.ok.load(Ordering::SeqCst)
    }

    /// Failed requests so far.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Stops the workers, waits for them, and returns what they saw.
    pub fn stop(mut self) -> LoadReport {
        self.join();
        let mut report = self
            .shared
            .report
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        report.ok = self.ok();
        report.failed = self.failed();
        report
    }

    fn join(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.join();
    }
}

fn worker(shared: &Shared, url: &str, host: Option<&str>, limit: Duration) {
    let client = crate::http_client();
    let deadline = Instant::now() + limit;
    while !shared.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let mut request = client.get(url);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let outcome = request
            .send()
            .map_err(|e| format!("transport error: {e}"))
            .and_then(|response| {
                let status = response.status().as_u16();
                let text = response.text().map_err(|e| format!("body error: {e}"))?;
                if status == 200 {
                    Ok(text)
                } else {
                    Err(format!(
                        "status {status}: {}",
                        text.chars().take(200).collect::<String>()
                    ))
                }
            });
        match outcome {
            Ok(text) => {
                shared.ok.fetch_add(1, Ordering::SeqCst);
                let server = serde_json::from_str::<crate::Echoed>(&text)
                    .map(|e| e.server)
                    .unwrap_or_else(|_| "(not an echo)".to_owned());
                if let Ok(mut report) = shared.report.lock() {
                    *report.by_server.entry(server).or_default() += 1;
                }
            }
            Err(failure) => {
                shared.failed.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut report) = shared.report.lock() {
                    if report.failures.len() < 20 {
                        report.failures.push(failure);
                    }
                }
            }
        }
    }
}
