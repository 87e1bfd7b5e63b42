//! The balancing algorithms over a pool's targets. Round robin, random and ketama are
//! `pingora-load-balancing` selections built over the targets (each backend carries its
//! target index in `ext`); least connections is decided by the pool from in-flight counts.

use std::collections::BTreeSet;
use std::sync::Arc;

use pingora_load_balancing::selection::{
    BackendIter, BackendSelection, Consistent, Random, RoundRobin,
};
use pingora_load_balancing::Backend;
use storage::Balancing;

use super::targets::Target;

pub(super) enum Selector {
    RoundRobin(Arc<RoundRobin>),
    Random(Arc<Random>),
    Consistent(Arc<Consistent>),
    LeastConnections,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Selector::RoundRobin(_) => "RoundRobin",
            Selector::Random(_) => "Random",
            Selector::Consistent(_) => "Consistent",
            Selector::LeastConnections => "LeastConnections",
        })
    }
}

impl Selector {
    pub(super) fn build(balancing: Balancing, targets: &[Arc<Target>]) -> Selector {
        let backends = || -> BTreeSet<Backend> {
            targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut b = Backend {
                        addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(t.addr),
                        weight: t.weight as usize,
                        ext: Default::default(),
                    };
                    b.ext.insert(i);
                    b
                })
                .collect()
        };
        match balancing {
            Balancing::RoundRobin => Selector::RoundRobin(Arc::new(RoundRobin::build(&backends()))),
            Balancing::Random => Selector::Random(Arc::new(Random::build(&backends()))),
            Balancing::ConsistentHash => {
                Selector::Consistent(Arc::new(Consistent::build(&backends())))
            }
            Balancing::LeastConnections => Selector::LeastConnections,
        }
    }

    /// The first target the algorithm proposes for `key` that `ok` accepts; when the
    /// algorithm's own walk finds none in a bounded number of steps, the first acceptable
    /// target in order (so a retry always finds a remaining target).
    pub(super) fn pick(&self, key: &[u8], n: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let steps = 2 * n + 8;
        let found = match self {
            Selector::RoundRobin(s) => walk(s.iter(key), steps, &ok),
            Selector::Random(s) => walk(s.iter(key), steps, &ok),
            Selector::Consistent(s) => walk(s.iter(key), steps, &ok),
            Selector::LeastConnections => None,
        };
        found.or_else(|| (0..n).find(|i| ok(*i)))
    }
}

fn walk(mut it: impl BackendIter, steps: usize, ok: &impl Fn(usize) -> bool) -> Option<usize> {
    for _ in 0..steps {
        let b = it.next()?;
        if let Some(i) = b.ext.get::<usize>() {
            if ok(*i) {
                return Some(*i);
            }
        }
    }
    None
}
