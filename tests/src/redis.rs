//! A real `redis-server` for the tests of shared counting (`--redis`): started on a free
//! loopback port without persistence, ready once it answers PING, killed on drop; it can be
//! killed and started again on the same port (Redis away, then back). [`RedisServer::cmd`]
//! is a minimal RESP client, enough to read and set keys from a test.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::gateway::free_port;
use crate::wait::wait_until;

/// A running `redis-server` (or a stopped one whose port is kept).
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Also TLS on this port, with this certificate and key (no client certificates).
    tls: Option<(u16, crate::certs::TestCert)>,
}

/// One RESP reply, as the tests need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Int(i64),
    Text(String),
    Array(Vec<Reply>),
}

impl Reply {
    /// An integer reply, or a text one that holds an integer; `None` for nil.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            Reply::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers PING.
    pub fn start() -> Result<Self> {
        let mut server = RedisServer {
            child: None,
            port: free_port()?,
            tls: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// [`RedisServer::start`], also serving TLS with `cert` on a port of its own
    /// ([`RedisServer::tls_url`]); the plain port stays for the test's own commands.
    pub fn start_tls(cert: crate::certs::TestCert) -> Result<Self> {
        let mut server = RedisServer {
            child: None,
            port: free_port()?,
            tls: Some((free_port()?, cert)),
        };
        server.spawn()?;
        Ok(server)
    }

    /// `rediss://localhost:PORT` (the TLS port).
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|(port, _)| format!("rediss://localhost:{port}"))
    }

    fn spawn(&mut self) -> Result<()> {
        let mut tls_args = Vec::new();
        if let Some((port, cert)) = &self.tls {
            tls_args.extend([
                "--tls-port".to_owned(),
                port.to_string(),
                "--tls-cert-file".to_owned(),
                cert.cert_file.display().to_string(),
                "--tls-key-file".to_owned(),
                cert.key_file.display().to_string(),
                "--tls-auth-clients".to_owned(),
                "no".to_owned(),
            ]);
        }
        let child = Command::new("redis-server")
            .args(tls_args)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &std::env::temp_dir().to_string_lossy(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (is it installed?)")?;
        self.child = Some(child);
        wait_until("redis-server answers PING", Duration::from_secs(10), || {
            Ok(self
                .cmd(&["PING"])
                .ok()
                .filter(|r| *r == Reply::Text("PONG".into())))
        })?;
        Ok(())
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL): every key is gone with it.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port (empty) and waits until it answers.
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.spawn()
    }

    /// Sends one command and reads its reply (a server error is `Err`).
    pub fn cmd(&self, args: &[&str]) -> Result<Reply> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(out.as_bytes())?;
        read_reply(&mut BufReader::new(stream))
    }

    /// `GET key` as an integer; 0 when the key is absent.
    pub fn get_int(&self, key: &str) -> Result<i64> {
        match self.cmd(&["GET", key])? {
            Reply::Nil => Ok(0),
            r => r
                .as_int()
                .ok_or_else(|| anyhow!("GET {key}: not an integer: {r:?}")),
        }
    }

    /// The keys matching `pattern` (KEYS: for tests only).
    pub fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        match self.cmd(&["KEYS", pattern])? {
            Reply::Array(items) => Ok(items
                .into_iter()
                .filter_map(|r| match r {
                    Reply::Text(s) => Some(s),
                    _ => None,
                })
                .collect()),
            r => bail!("KEYS: {r:?}"),
        }
    }
}

fn read_reply(r: &mut impl BufRead) -> Result<Reply> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Reply::Text(rest.to_owned()),
        "-" => bail!("redis error: {rest}"),
        ":" => Reply::Int(rest.parse()?),
        "$" => {
            let len: i64 = rest.parse()?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let mut buf = vec![0; usize::try_from(len)? + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(buf.len() - 2);
            Reply::Text(String::from_utf8(buf)?)
        }
        "*" => {
            let len: i64 = rest.parse()?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            (0..len)
                .map(|_| read_reply(r))
                .collect::<Result<_>>()
                .map(Reply::Array)?
        }
        _ => bail!("unexpected reply line {line:?}"),
    })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
