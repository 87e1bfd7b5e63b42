//! The resolved target list of a pool: one [`Target`] per address (an IP-literal target
//! has one, a host name as many as it resolves to), the balancing selection built over
//! them, and [`Targets::replace`], which builds the list that follows a new DNS answer.
//!
//! A list never changes once built: the pool swaps in a new one (`ArcSwap`), so a request
//! reads one consistent list without a lock. A target whose address stays is the same
//! `Arc<Target>` in the next list, so its health, ejection and in-flight count carry over.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use storage::Balancing;

use super::select::Selector;

/// One backend address of a pool.
#[derive(Debug)]
pub struct Target {
    /// The address as configured (`host:port`), used in labels, status and the access log.
    pub name: String,
    pub addr: SocketAddr,
    /// Which configured target (index in the spec's `targets`) this address belongs to.
    pub(super) spec_index: usize,
    /// Pool-unique and never reused: what a request's `tried` list holds, so a retry is not
    /// confused when the list is replaced between two tries.
    pub(super) id: usize,
    /// SNI for TLS upstreams.
    pub(super) sni: String,
    pub(super) weight: u32,
    /// The active check's verdict (true until it says otherwise).
    pub(super) healthy: AtomicBool,
    /// Set when a connect failure took the target down; the next successful check clears it.
    pub(super) passive_down: AtomicBool,
    /// Monotonic ms until which the target is skipped (pools without active check).
    pub(super) ejected_until_ms: AtomicU64,
    pub(super) in_flight: AtomicUsize,
}

impl Target {
    pub(super) fn new(
        name: &str,
        spec_index: usize,
        id: usize,
        addr: SocketAddr,
        sni: &str,
        weight: u32,
    ) -> Target {
        Target {
            name: name.to_owned(),
            addr,
            spec_index,
            id,
            sni: sni.to_owned(),
            weight: weight.max(1),
            healthy: AtomicBool::new(true),
            passive_down: AtomicBool::new(false),
            ejected_until_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Whether the target is in service at `now_ms`.
    pub fn is_available(&self, now_ms: u64) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && self.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    /// Pool-unique and never reused; what a request's `tried` list holds.
    pub fn id(&self) -> usize {
        self.id
    }
}

/// A pool's targets at one moment, with the balancing selection built over them.
#[derive(Debug)]
pub struct Targets {
    list: Box<[Arc<Target>]>,
    selector: Selector,
    /// Rotates the starting point of least-connections ties.
    tie_breaker: AtomicUsize,
}

/// The answer for one configured target in a refresh round.
pub(super) struct Answer<'a> {
    pub spec_index: usize,
    pub name: &'a str,
    pub sni: String,
    pub weight: u32,
    /// `None`: the lookup failed; the target keeps the addresses it has.
    pub addrs: Option<Vec<SocketAddr>>,
}

impl Targets {
    pub(super) fn build(balancing: Balancing, list: Vec<Arc<Target>>) -> Targets {
        let selector = Selector::build(balancing, &list);
        Targets {
            list: list.into_boxed_slice(),
            selector,
            tie_breaker: AtomicUsize::new(0),
        }
    }

    /// The list that follows `answers` (ordered by spec index, addresses sorted): targets
    /// of configured targets without an answer stay; an address that stays keeps its
    /// `Arc<Target>`; a new address gets a target with an id from `next_id`. `None` when
    /// nothing changes.
    pub(super) fn replace(
        &self,
        balancing: Balancing,
        answers: &[Answer<'_>],
        mut next_id: impl FnMut() -> usize,
    ) -> Option<Targets> {
        let mut list: Vec<Arc<Target>> = Vec::with_capacity(self.list.len());
        let mut changed = false;
        let mut spec_indices: Vec<usize> = self.list.iter().map(|t| t.spec_index).collect();
        spec_indices.extend(answers.iter().map(|a| a.spec_index));
        spec_indices.sort_unstable();
        spec_indices.dedup();
        for k in spec_indices {
            let old: Vec<&Arc<Target>> = self.list.iter().filter(|t| t.spec_index == k).collect();
            let answer = answers.iter().find(|a| a.spec_index == k);
            // An empty answer counts as a failed lookup: it keeps the addresses the target has.
            let fresh = answer.and_then(|a| Some((a, a.addrs.as_ref().filter(|v| !v.is_empty())?)));
            match fresh {
                Some((a, addrs)) => {
                    let mut addrs = addrs.clone();
                    addrs.sort_unstable();
                    addrs.dedup();
                    let before: Vec<SocketAddr> = old.iter().map(|t| t.addr).collect();
                    changed |= before != addrs;
                    for addr in addrs {
                        match old.iter().find(|t| t.addr == addr) {
                            Some(t) => list.push(Arc::clone(t)),
                            None => list.push(Arc::new(Target::new(
                                a.name,
                                k,
                                next_id(),
                                addr,
                                &a.sni,
                                a.weight,
                            ))),
                        }
                    }
                }
                None => list.extend(old.into_iter().cloned()),
            }
        }
        changed.then(|| Targets::build(balancing, list))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.list.iter()
    }

    pub fn get(&self, position: usize) -> Option<&Arc<Target>> {
        self.list.get(position)
    }

    /// Picks the position of an available target whose id is not in `tried`. `key` is the
    /// consistent-hash key (ignored by other algorithms). `None`: no target is left (or the
    /// list is empty: no address resolved yet).
    pub fn select(&self, key: &[u8], tried: &[usize], now_ms: u64) -> Option<usize> {
        if self.list.is_empty() {
            return None;
        }
        let ok = |i: usize| {
            self.list
                .get(i)
                .is_some_and(|t| !tried.contains(&t.id) && t.is_available(now_ms))
        };
        match &self.selector {
            Selector::LeastConnections => self.least_loaded(ok),
            s => s.pick(key, self.list.len(), ok),
        }
    }

    /// Picks the position of a target whose id is not in `tried`, healthy or not (panic
    /// mode: the caller has seen that none is available). `None`: every target was tried.
    pub fn select_any(&self, key: &[u8], tried: &[usize]) -> Option<usize> {
        let ok = |i: usize| self.list.get(i).is_some_and(|t| !tried.contains(&t.id));
        match &self.selector {
            Selector::LeastConnections => self.least_loaded(ok),
            s => s.pick(key, self.list.len(), ok),
        }
    }

    /// Whether the list has targets and none of them is in service at `now_ms`.
    pub fn is_all_down(&self, now_ms: u64) -> bool {
        !self.list.is_empty() && !self.list.iter().any(|t| t.is_available(now_ms))
    }

    /// Whether a target whose id is not in `tried` could be chosen now.
    pub fn has_candidate(&self, tried: &[usize], now_ms: u64) -> bool {
        self.list
            .iter()
            .any(|t| !tried.contains(&t.id) && t.is_available(now_ms))
    }

    fn least_loaded(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.list.len();
        if n == 0 {
            return None;
        }
        let start = self.tie_breaker.fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<(usize, usize, u32)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !ok(i) {
                continue;
            }
            let t = &self.list[i];
            let load = t.in_flight.load(Ordering::Relaxed);
            // Compare load/weight without division: a/wa < b/wb  <=>  a*wb < b*wa.
            let better = match best {
                None => true,
                Some((_, bl, bw)) => {
                    (load as u128) * (bw as u128) < (bl as u128) * (t.weight as u128)
                }
            };
            if better {
                best = Some((i, load, t.weight));
            }
        }
        best.map(|(i, _, _)| i)
    }
}
