//! The benchmark floor: a minimal `ProxyHttp` that sends every request to one upstream,
//! with the same thread flag as `tollgate` and nothing else (no routing, no policies, no
//! metrics, no log). Two binaries run it: `bare-pingora`, Pingora as it ships (the system
//! allocator), the floor the gateway is held to; and `bare-pingora-mimalloc`, the same with
//! `tollgate`'s allocator, to show what the allocator alone is worth.

use std::net::SocketAddr;

use async_trait::async_trait;
use clap::Parser;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

#[derive(Debug, Parser)]
#[command(about = "Minimal Pingora proxy to one upstream")]
struct Args {
    /// Listener.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The one upstream (`ip:port`).
    #[arg(long, env = "BARE_UPSTREAM")]
    upstream: SocketAddr,
    /// Worker threads (default: the number of cores).
    #[arg(long, env = "TOLLGATE_THREADS")]
    threads: Option<usize>,
}

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_core::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

/// Runs the proxy; `name` is the binary's, for its messages.
pub fn main(name: &str) {
    let args = Args::parse();
    let threads = args
        .threads
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(2),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(
        &server.configuration,
        Bare {
            upstream: args.upstream,
        },
    );
    service.add_tcp(&args.listen.to_string());
    server.add_service(service);
    eprintln!("{name}: listening on {} -> {}", args.listen, args.upstream);
    server.run_forever();
}
