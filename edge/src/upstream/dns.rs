//! Host-name targets: looking them up ([`Resolve`], injected so tests need no DNS), the
//! retry schedule of a failed lookup ([`Backoff`]) and the refresh task of a pool.
//!
//! Like nginx's `resolver` and Envoy's `dns_refresh_rate`: every `dns_refresh_secs` the
//! names are looked up again and a changed answer replaces the pool's targets, without a
//! config reload. A failed lookup is retried after 1 s, doubling up to 30 s (never slower
//! than the refresh), and keeps the addresses the name had: a DNS outage is not an
//! upstream outage. Lookups run on the blocking pool of the admin runtime, never on the
//! request path. The task holds a `Weak` to its pool and is aborted when the pool drops.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Pool;

/// The first retry of a failed lookup.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between retries of a failed lookup.
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// At most this many addresses of one name become targets (the lowest, in address order),
/// so one answer cannot make thousands of targets and health checks.
pub const MAX_ADDRS_PER_NAME: usize = 64;

/// Looks host names up. Called on a blocking thread.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    /// Every address of `host` with `port`. `Err` (the reason) when the lookup fails.
    fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String>;
}

/// The system resolver (`getaddrinfo`: `/etc/hosts`, then DNS as `nsswitch.conf` says).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemDns;

impl Resolve for SystemDns {
    fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        (host, port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| e.to_string())
    }
}

/// A configured target address: an IP literal, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(SocketAddr),
    Name { host: String, port: u16 },
}

impl Host {
    /// `None` when `addr` is not `host:port` (the store refuses such targets).
    pub fn parse(addr: &str) -> Option<Host> {
        if let Ok(a) = addr.parse::<SocketAddr>() {
            return Some(Host::Ip(a));
        }
        let (host, port) = addr.rsplit_once(':')?;
        let port = port.parse().ok()?;
        (!host.is_empty()).then(|| Host::Name {
            host: host.to_owned(),
            port,
        })
    }
}

/// Looks `host` up with `resolver`: the sorted, distinct addresses, at most
/// [`MAX_ADDRS_PER_NAME`]. `Err` when the lookup fails or finds no address.
pub fn lookup(resolver: &dyn Resolve, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let mut addrs = resolver.lookup(host, port)?;
    addrs.sort_unstable();
    addrs.dedup();
    addrs.truncate(MAX_ADDRS_PER_NAME);
    if addrs.is_empty() {
        return Err("no address".to_owned());
    }
    Ok(addrs)
}

/// At most this many lookups run at once when a snapshot compiles.
const PREFETCH_THREADS: usize = 16;

/// Answers looked up in advance by [`prefetch`]; other names are asked of `fallback`.
#[derive(Debug)]
pub struct Known {
    answers: HashMap<(String, u16), Result<Vec<SocketAddr>, String>>,
    fallback: Arc<dyn Resolve>,
}

impl Resolve for Known {
    fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        match self.answers.get(&(host.to_owned(), port)) {
            Some(answer) => answer.clone(),
            None => self.fallback.lookup(host, port),
        }
    }
}

/// Looks every name of `names` up at once (up to 16 at a time, on threads of their own),
/// so a config whose names all time out (DNS down at a restart) waits about one timeout,
/// not one per name. Blocking: call it off the request path.
pub fn prefetch(resolver: &Arc<dyn Resolve>, mut names: Vec<(String, u16)>) -> Known {
    names.sort_unstable();
    names.dedup();
    let mut answers = HashMap::with_capacity(names.len());
    for batch in names.chunks(PREFETCH_THREADS) {
        std::thread::scope(|scope| {
            let running: Vec<_> = batch
                .iter()
                .map(|(host, port)| {
                    let r = &**resolver;
                    (host, port, scope.spawn(move || r.lookup(host, *port)))
                })
                .collect();
            for (host, port, handle) in running {
                let answer = handle
                    .join()
                    .unwrap_or_else(|_| Err("the lookup panicked".to_owned()));
                answers.insert((host.clone(), *port), answer);
            }
        });
    }
    Known {
        answers,
        fallback: resolver.clone(),
    }
}

/// The names among the targets of `spec`.
pub fn names_of(spec: &storage::UpstreamSpec) -> impl Iterator<Item = (String, u16)> + '_ {
    spec.targets
        .iter()
        .filter_map(|t| match Host::parse(&t.addr)? {
            Host::Name { host, port } => Some((host, port)),
            Host::Ip(_) => None,
        })
}

/// The wait before the next lookup round.
#[derive(Debug, Clone)]
pub struct Backoff {
    refresh: Duration,
    next_retry: Duration,
}

impl Backoff {
    pub fn new(refresh: Duration) -> Backoff {
        Backoff {
            refresh,
            next_retry: FIRST_RETRY.min(refresh),
        }
    }

    /// The wait after a round: the refresh interval when every name answered, else the
    /// next retry delay (1 s, 2 s, 4 s, … up to the lesser of 30 s and the refresh).
    pub fn after(&mut self, all_answered: bool) -> Duration {
        if all_answered {
            self.next_retry = FIRST_RETRY.min(self.refresh);
            return self.refresh;
        }
        let wait = self.next_retry;
        self.next_retry = (wait * 2).min(MAX_RETRY).min(self.refresh);
        wait
    }
}

/// One name of a pool to look up: its index in the spec's targets, host and port.
#[derive(Debug, Clone)]
pub(super) struct Name {
    pub spec_index: usize,
    pub host: String,
    pub port: u16,
    /// Whether its last lookup failed (so a failure is logged once, not every retry).
    pub failing: bool,
}

/// Starts the refresh task of `pool` on `rt`, the first round after `first_wait`.
pub(super) fn spawn(
    pool: &Arc<Pool>,
    names: Vec<Name>,
    resolver: Arc<dyn Resolve>,
    mut backoff: Backoff,
    first_wait: Duration,
    rt: &tokio::runtime::Handle,
) -> tokio::task::AbortHandle {
    let weak: Weak<Pool> = Arc::downgrade(pool);
    let mut names = names;
    rt.spawn(async move {
        let mut wait = first_wait;
        loop {
            tokio::time::sleep(wait).await;
            let names2 = names.clone();
            let resolver2 = resolver.clone();
            let answers = tokio::task::spawn_blocking(move || {
                names2
                    .iter()
                    .map(|n| (n.spec_index, lookup(&*resolver2, &n.host, n.port)))
                    .collect::<Vec<_>>()
            })
            .await;
            // A panicking resolver counts as a failed round.
            let answers = answers.unwrap_or_default();
            let Some(pool) = weak.upgrade() else {
                return;
            };
            let all_answered =
                answers.len() == names.len() && answers.iter().all(|(_, a)| a.is_ok());
            for (name, (_, answer)) in names.iter_mut().zip(&answers) {
                match answer {
                    Err(reason) if !name.failing => tracing::warn!(
                        upstream = %pool.id(), host = %name.host, %reason,
                        "cannot resolve the target; keeping its last addresses, retrying"
                    ),
                    Ok(_) if name.failing => tracing::info!(
                        upstream = %pool.id(), host = %name.host, "the target resolves again"
                    ),
                    _ => {}
                }
                name.failing = answer.is_err();
            }
            pool.apply_lookups(&answers);
            drop(pool);
            wait = backoff.after(all_answered);
        }
    })
    .abort_handle()
}

#[cfg(test)]
mod tests;
