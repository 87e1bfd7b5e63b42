//! The `tollgate` process under test: started on free loopback ports with a temporary
//! data directory, observed through its stdout/stderr files, stopped on drop.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

use crate::admin::Admin;
use crate::certs::TestCert;
use crate::wait::POLL_INTERVAL;

/// The bearer token every harness-started gateway accepts (`TOLLGATE_ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "secret";

/// How long a start may take before it counts as failed (debug builds start slowly on
/// a busy 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stop (SIGTERM or SIGKILL) may take.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test: `$TOLLGATE_BIN`, else `<workspace>/target/debug/tollgate`.
/// `Err` names both places when neither exists.
pub fn tollgate_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("TOLLGATE_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "TOLLGATE_BIN={} is not a file: build it with `cargo build -p edge --bins`",
            path.display()
        );
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("the tests crate has no parent directory"))?;
    let path = workspace.join("target").join("debug").join("tollgate");
    if path.is_file() {
        return Ok(path);
    }
    bail!(
        "tollgate binary not found at {}: run `cargo build -p edge --bins` (or scripts/test), \
         or point TOLLGATE_BIN at it",
        path.display()
    )
}

/// A loopback port that was free a moment ago (bind `127.0.0.1:0`, then drop). Another
/// process may take it before we use it; [`Gateway::start`] retries on that.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `N` distinct free loopback ports: all are held at once before being released, so the
/// kernel cannot hand the same one out twice.
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0"))
        .collect::<Result<Vec<_>>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// How to start a gateway.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// `--threads N`; `None` leaves the binary's default.
    pub threads: Option<usize>,
    /// Extra environment variables for the process.
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments, after the listener flags.
    pub args: Vec<String>,
    /// The address the admin listener binds (`0.0.0.0` to reach it from other hosts);
    /// `None`: 127.0.0.1. The tests still talk to it on 127.0.0.1.
    pub admin_ip: Option<std::net::IpAddr>,
    /// A command the binary is started through: the binary's path and arguments follow
    /// these words (e.g. `unshare -m sh -c '... && exec "$0" "$@"'`). The process must
    /// `exec` the binary, so that signals reach it. Empty: the binary itself.
    pub wrapper: Vec<String>,
    /// `--data-dir`: an existing directory (a mount the test made, for one) that outlives
    /// the gateway; `None`: a fresh one inside the gateway's temporary directory.
    pub data_dir: Option<PathBuf>,
    /// `--admin-tls-cert/--admin-tls-key`: the admin listener serves HTTPS with this
    /// certificate (make it with [`TestCert::loopback`]), which the harness then trusts.
    pub admin_tls: Option<TestCert>,
}

/// A running `tollgate` process. Dropping it kills the process (SIGKILL) and removes the
/// data directory.
pub struct Gateway {
    child: Option<Child>,
    dir: TempDir,
    opts: GatewayOptions,
    proxy: SocketAddr,
    admin: SocketAddr,
    metrics: SocketAddr,
    /// Starts so far, to name the log files of each run apart.
    runs: u32,
}

impl Gateway {
    /// Starts the binary with a fresh temporary data directory and waits until it is ready
    /// (`GET /healthz` on the admin listener answers 200 and the metrics listener accepts).
    /// `Err` carries the process's stderr when it exits or never becomes ready.
    pub fn start(opts: GatewayOptions) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("tollgate-e2e-").tempdir()?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        let mut gateway = Gateway {
            child: None,
            dir,
            opts,
            proxy: loopback(0),
            admin: loopback(0),
            metrics: loopback(0),
            runs: 0,
        };
        gateway.spawn_ready(true)?;
        Ok(gateway)
    }

    /// [`Gateway::start`] with default options.
    pub fn start_default() -> Result<Self> {
        Self::start(GatewayOptions::default())
    }

    /// The data directory (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.opts.data_dir {
            return dir.clone();
        }
        self.dir.path().join("data")
    }

    /// A scratch directory that lives as long as this gateway.
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// `http://<proxy>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    /// A REST client with the harness's bearer token (over HTTPS, trusting the admin
    /// certificate, when the admin listener serves HTTPS).
    pub fn admin(&self) -> Admin {
        match &self.opts.admin_tls {
            Some(tls) => Admin::https(self.admin, ADMIN_TOKEN, tls),
            None => Admin::new(self.admin, ADMIN_TOKEN),
        }
    }

    /// `http://<admin>` or `https://<admin>`.
    pub fn admin_url(&self) -> String {
        let scheme = if self.opts.admin_tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.admin)
    }

    /// The process id of the running process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The body of `GET /metrics` on the metrics listener. `Err` on a non-200 answer.
    pub fn metrics_text(&self) -> Result<String> {
        let response = crate::http_client()
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .context("GET /metrics")?;
        let status = response.status();
        let text = response.text()?;
        if status != 200 {
            bail!("GET /metrics answered {status}: {text}");
        }
        Ok(text)
    }

    /// Sends SIGTERM and returns at once (see [`Gateway::wait_exit`]).
    pub fn sigterm(&self) -> Result<()> {
        self.signal("TERM")
    }

    /// Sends signal `name` (`HUP`, `USR1`, `QUIT`, ...) and returns at once.
    pub fn signal(&self, name: &str) -> Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| anyhow!("the gateway is not running"))?;
        // The workspace forbids unsafe code, so no libc::kill: the kill(1) utility it is.
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .with_context(|| format!("running kill -{name}"))?;
        if !status.success() {
            bail!("kill -{name} {pid} failed: {status}");
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| anyhow!("the gateway is not running"))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the gateway did not exit within {timeout:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGKILL, then reap the process: nothing gets a chance to flush.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL")?;
            child.wait().context("reaping the killed gateway")?;
        }
        Ok(())
    }

    /// Stops the process gracefully (SIGTERM; it must exit 0) and starts it again on the
    /// same data directory and ports.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.sigterm()?;
            let status = self.wait_exit(EXIT_TIMEOUT)?;
            if !status.success() {
                bail!(
                    "the gateway exited with {status} on SIGTERM\n{}",
                    self.logs()
                );
            }
        }
        self.start_again()
    }

    /// Starts the process again on the same data directory (after [`Gateway::kill9`] or
    /// an exit), on the same ports when they are still free.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("the gateway is still running");
        }
        self.spawn_ready(false)
    }

    /// Sets environment variable `name` for the next start (a restart, say).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.opts.env.retain(|(k, _)| k != name);
        self.opts.env.push((name.to_owned(), value.to_owned()));
    }

    /// The whole stderr of the current (or last) run: the gateway's JSON log lines.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("stderr.{}.log", self.runs)))
            .unwrap_or_default()
    }

    /// The whole stdout of the current (or last) run (the access log by default).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("stdout.{}.log", self.runs)))
            .unwrap_or_default()
    }

    /// stdout and stderr of the current (or last) run, for failure messages.
    pub fn logs(&self) -> String {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.path().join(format!("{name}.{}.log", self.runs)))
                .unwrap_or_default()
        };
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(60);
            lines[start..].join("\n")
        };
        format!(
            "--- tollgate stderr (run {}) ---\n{}\n--- tollgate stdout ---\n{}",
            self.runs,
            tail(read("stderr")),
            tail(read("stdout"))
        )
    }

    fn spawn_ready(&mut self, fresh_ports: bool) -> Result<()> {
        let mut last_error = None;
        for attempt in 0..4 {
            if fresh_ports || attempt > 0 {
                let [proxy, admin, metrics] = free_ports::<3>()?;
                self.proxy = loopback(proxy);
                self.admin = loopback(admin);
                self.metrics = loopback(metrics);
            }
            match self.spawn_once() {
                Ok(()) => return Ok(()),
                Err(StartError::PortTaken(err)) => last_error = Some(err),
                Err(StartError::Fatal(err)) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("the gateway did not start")))
    }

    fn spawn_once(&mut self) -> Result<(), StartError> {
        self.runs += 1;
        let bin = tollgate_bin().map_err(StartError::Fatal)?;
        let log = |name: &str| -> Result<File, StartError> {
            File::create(self.dir.path().join(format!("{name}.{}.log", self.runs)))
                .map_err(|e| StartError::Fatal(e.into()))
        };
        let mut command = match self.opts.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(self.proxy.to_string())
            .arg("--admin-listen")
            .arg(
                SocketAddr::new(
                    self.opts.admin_ip.unwrap_or(self.admin.ip()),
                    self.admin.port(),
                )
                .to_string(),
            )
            .arg("--metrics-listen")
            .arg(self.metrics.to_string());
        if let Some(tls) = &self.opts.admin_tls {
            command
                .arg("--admin-tls-cert")
                .arg(&tls.cert_file)
                .arg("--admin-tls-key")
                .arg(&tls.key_file);
        }
        if let Some(threads) = self.opts.threads {
            command.arg("--threads").arg(threads.to_string());
        }
        command
            .args(&self.opts.args)
            .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TOLLGATE_ADMIN_PASSWORD", "e2e-admin-password")
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log("stdout")?)
            .stderr(log("stderr")?);
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))
            .map_err(StartError::Fatal)?;
        self.child = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(err) => {
                let logs = self.logs();
                let _ = self.kill9();
                let err = err.context(logs.clone());
                if logs.contains("in use") || logs.contains("AddrInUse") {
                    Err(StartError::PortTaken(err))
                } else {
                    Err(StartError::Fatal(err))
                }
            }
        }
    }

    fn wait_ready(&mut self) -> Result<()> {
        let mut client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2));
        if let Some(tls) = &self.opts.admin_tls {
            client = client
                .tls_built_in_root_certs(false)
                .add_root_certificate(tls.root()?);
        }
        let client = client.build()?;
        let healthz = format!("{}/healthz", self.admin_url());
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut healthy = false;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!("the gateway exited during start-up with {status}");
                }
            }
            if !healthy {
                healthy = matches!(client.get(&healthz).send(), Ok(r) if r.status() == 200);
            }
            if healthy && TcpStream::connect_timeout(&self.metrics, Duration::from_secs(1)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the gateway was not ready within {READY_TIMEOUT:?} (healthz 200: {healthy}, \
                     metrics listener {} accepting: false)",
                    self.metrics
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // A failed assertion is easier to read next to what the gateway said.
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

enum StartError {
    /// The process could not bind a port we picked: try other ports.
    PortTaken(anyhow::Error),
    Fatal(anyhow::Error),
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// What a CLI subcommand did.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout and stderr together, for "prints every problem" checks that should not care
    /// which stream the binary writes to.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `tollgate ARGS` to completion (a CLI subcommand) with extra environment variables
/// and returns what it printed. Output goes through temporary files (no pipe to fill up);
/// a watchdog kills it after 60 s.
pub fn run_cli(args: &[&str], env: &[(&str, &Path)]) -> Result<CliOutput> {
    let bin = tollgate_bin()?;
    let dir = tempfile::Builder::new().prefix("tollgate-cli-").tempdir()?;
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut child = Command::new(&bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .env("TOLLGATE_ADMIN_PASSWORD", "e2e-admin-password")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path)?)
        .stderr(File::create(&stderr_path)?)
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`tollgate {}` did not finish within 60 s; stderr: {}",
                args.join(" "),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    Ok(CliOutput {
        status,
        stdout: std::fs::read_to_string(&stdout_path)?,
        stderr: std::fs::read_to_string(&stderr_path)?,
    })
}
