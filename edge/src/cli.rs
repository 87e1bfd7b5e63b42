//! Command line: `tollgate [run] …`, `tollgate check FILE`, `tollgate import FILE`,
//! `tollgate export`, `tollgate check-store DIR`. Every `run` flag also reads its `TOLLGATE_*` environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Default seconds a client may take to send a complete request header.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default seconds that requests in flight may take to finish at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;

#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about = "An edge API gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run` (also accepted without the `run` word).
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run(Box<RunArgs>),
    /// Validate a config file (YAML or JSON): print every problem, exit 1 if any.
    Check { file: PathBuf },
    /// Apply a config file to the store.
    Import {
        file: PathBuf,
        /// Also delete every object the file lacks.
        #[arg(long)]
        replace: bool,
        #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
        data_dir: PathBuf,
    },
    /// Print the whole config as YAML (keys as hashes only; private keys and HMAC secrets
    /// left out unless --with-secrets).
    Export {
        #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
        data_dir: PathBuf,
        /// Include certificates' private keys and JWT issuers' HMAC secrets (a backup that
        /// restores a new store on its own).
        #[arg(long)]
        with_secrets: bool,
    },
    /// Check that a data directory opens as `run` would open it: its records decode and it
    /// is not behind the last revision it acknowledged. Exit 1 with the reason if not.
    CheckStore {
        #[arg(env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Directory of the embedded store.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
    pub data_dir: PathBuf,
    /// Proxy listener (plain HTTP).
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// HTTPS proxy listener. Without the flag: 0.0.0.0:8443 when the store holds
    /// certificates at start, else none (listeners are bound at start only).
    #[arg(long, env = "TOLLGATE_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// Admin console and REST API listener.
    #[arg(long, env = "TOLLGATE_ADMIN_LISTEN", default_value = "127.0.0.1:9080")]
    pub admin_listen: SocketAddr,
    /// Serve the admin listener over HTTPS with this certificate (PEM, the chain after the
    /// leaf); needs --admin-tls-key.
    #[arg(long, env = "TOLLGATE_ADMIN_TLS_CERT", requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --admin-tls-cert.
    #[arg(long, env = "TOLLGATE_ADMIN_TLS_KEY", requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,
    /// Prometheus `/metrics` listener.
    #[arg(
        long,
        env = "TOLLGATE_METRICS_LISTEN",
        default_value = "127.0.0.1:9091"
    )]
    pub metrics_listen: SocketAddr,
    /// Worker threads of the proxy (default: the number of cores).
    #[arg(long, env = "TOLLGATE_THREADS")]
    pub threads: Option<usize>,
    /// Access log destination: `stdout` (default), `off`, or a file path (appended).
    #[arg(long, env = "TOLLGATE_ACCESS_LOG", default_value = "stdout")]
    pub access_log: String,
    /// Seconds a client may take to send a complete request header before it is dropped.
    #[arg(long = "header-timeout", env = "TOLLGATE_HEADER_TIMEOUT", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS)]
    pub header_timeout_secs: u64,
    /// Client connections the proxy holds open at most; one more is closed at once (the
    /// admin listener is not counted). 0: no cap. Default: half the open-file limit less
    /// 256 (each proxied connection may take two descriptors), 64 at least.
    #[arg(long = "max-connections", env = "TOLLGATE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Megabytes the response cache (policy `cache`) holds at most, bodies and headers
    /// counted; past it the least useful answers are evicted (TinyUFO).
    #[arg(long = "cache-size", env = "TOLLGATE_CACHE_SIZE", default_value_t = crate::cache::DEFAULT_CACHE_SIZE_MB, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub cache_size_mb: u64,
    /// Seconds that requests in flight may take to finish after SIGTERM/SIGINT.
    #[arg(long = "shutdown-timeout", env = "TOLLGATE_SHUTDOWN_TIMEOUT", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS)]
    pub shutdown_timeout_secs: u64,
    /// Follow the control node whose admin listener is at this URL (http:// or https://):
    /// take the whole config from it (needs TOLLGATE_CLUSTER_TOKEN); the admin API and
    /// console are then read-only.
    #[arg(long, env = "TOLLGATE_FOLLOW")]
    pub follow: Option<String>,
    /// A CA certificate (PEM) to verify an https:// control node with, besides the
    /// system's.
    #[arg(long, env = "TOLLGATE_FOLLOW_CA")]
    pub follow_ca: Option<PathBuf>,
    /// How the control node lists this node (default: host name and proxy port).
    #[arg(long, env = "TOLLGATE_NODE_ID")]
    pub node_id: Option<String>,
    /// `redis://[user:pass@]host:port[/db]` (`rediss://` for TLS): rate limits and quotas
    /// shared by every node naming the same Redis.
    #[arg(long, env = "TOLLGATE_REDIS_URL")]
    pub redis: Option<String>,
}

impl RunArgs {
    /// The admin listener's certificate and key files, when it serves HTTPS.
    pub fn admin_tls(&self) -> Option<(&Path, &Path)> {
        Some((
            self.admin_tls_cert.as_deref()?,
            self.admin_tls_key.as_deref()?,
        ))
    }

    /// Worker threads: the flag, else the number of cores (at least 1).
    pub fn worker_threads(&self) -> usize {
        self.threads
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn run_is_the_default_command() {
        let cli = Cli::try_parse_from(["tollgate", "--listen", "127.0.0.1:1234"]).expect("parses");
        assert!(cli.command.is_none());
        assert_eq!(cli.run.listen, "127.0.0.1:1234".parse().expect("addr"));
    }

    #[test]
    fn check_takes_a_file() {
        let cli = Cli::try_parse_from(["tollgate", "check", "x.yaml"]).expect("parses");
        assert!(
            matches!(cli.command, Some(Command::Check { file }) if file == Path::new("x.yaml"))
        );
    }

    #[test]
    fn admin_tls_needs_both_files() {
        let cli = Cli::try_parse_from([
            "tollgate",
            "--admin-tls-cert",
            "c.pem",
            "--admin-tls-key",
            "k.pem",
        ])
        .expect("parses");
        assert_eq!(
            cli.run.admin_tls(),
            Some((Path::new("c.pem"), Path::new("k.pem")))
        );
        let err = Cli::try_parse_from(["tollgate", "--admin-tls-cert", "c.pem"])
            .expect_err("a certificate without its key");
        assert!(err.to_string().contains("--admin-tls-key"), "{err}");
    }

    #[test]
    fn import_takes_replace() {
        let cli =
            Cli::try_parse_from(["tollgate", "import", "x.yaml", "--replace"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Import { replace: true, .. })
        ));
    }
}
