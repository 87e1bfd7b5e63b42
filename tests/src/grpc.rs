//! A real gRPC server and client (Python `grpcio`, Debian's `python3-grpcio`), driven
//! through the scripts in `tests/grpc/`: the server answers service `tollgate.test.Echo`
//! (see `server.py`), the client makes one call and reports its outcome as JSON.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// The interpreter that has Debian's `python3-grpcio` (not a pyenv or venv one on PATH).
const PYTHON: &str = "/usr/bin/python3";

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("grpc")
        .join(name)
}

/// The gRPC server process; killed on drop.
pub struct GrpcServer {
    child: Child,
    addr: SocketAddr,
}

impl GrpcServer {
    /// Starts `server.py` and waits for the port it prints once serving.
    pub fn start() -> Result<Self> {
        let mut child = Command::new(PYTHON)
            .arg(script("server.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {PYTHON} tests/grpc/server.py"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from the gRPC server"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = match line.trim().strip_prefix("PORT ") {
            Some(port) => port.parse()?,
            None => {
                let _ = child.kill();
                bail!("the gRPC server did not start (python3-grpcio installed?): {line:?}")
            }
        };
        Ok(GrpcServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One call's outcome, as the client saw it.
#[derive(Debug, Clone, Deserialize)]
pub struct Outcome {
    /// `OK`, `UNAUTHENTICATED`, ...
    pub code: String,
    pub details: Option<String>,
    pub responses: Vec<String>,
    pub initial: BTreeMap<String, String>,
    pub trailing: BTreeMap<String, String>,
}

/// Whether a call expects one answer or a stream of them.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Unary,
    Stream,
}

/// Calls `method` (`/tollgate.test.Echo/Unary`) at `target` over plain HTTP/2 with
/// `payload` and `metadata`.
pub fn call(
    target: SocketAddr,
    method: &str,
    kind: Kind,
    payload: &str,
    metadata: &[(&str, &str)],
) -> Result<Outcome> {
    let kind = match kind {
        Kind::Unary => "unary",
        Kind::Stream => "stream",
    };
    let out = Command::new(PYTHON)
        .arg(script("client.py"))
        .arg(target.to_string())
        .arg(method)
        .arg(kind)
        .arg(payload)
        .args(metadata.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .context("running tests/grpc/client.py")?;
    if !out.status.success() {
        bail!(
            "the gRPC client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "the gRPC client's report: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The methods of `tollgate.test.Echo`.
pub const UNARY: &str = "/tollgate.test.Echo/Unary";
pub const STREAM: &str = "/tollgate.test.Echo/Stream";
pub const FAIL: &str = "/tollgate.test.Echo/Fail";

/// A gateway whose route `/tollgate.test.Echo/` (with `policies`) goes to `server` over h2c.
pub fn gateway_for(server: &GrpcServer, policies: serde_json::Value) -> Result<crate::Gateway> {
    let gateway = crate::Gateway::start_default()?;
    let admin = gateway.admin();
    let mut upstream = crate::admin::upstream_spec("grpc", &[server.addr()]);
    upstream["protocol"] = serde_json::json!("h2c");
    admin.create_upstream(&upstream)?;
    let mut route = crate::admin::route_spec("grpc", &["/tollgate.test.Echo/"], "grpc");
    route["policies"] = policies;
    admin.create_route(&route)?;
    Ok(gateway)
}
