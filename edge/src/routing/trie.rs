//! The segment tries of all host buckets, in one arena: nodes by id, literal edges in one
//! [`EdgeTable`], candidate lists in one vector. The host index lives in the same table:
//! exact hosts and wildcard suffixes are edges out of two reserved nodes.

use std::collections::HashMap;

use super::methods::MethodSet;
use super::pattern::{next_segment, PathClass, PathPattern, Segment};
use super::rank::Rank;
use super::table::EdgeTable;

/// No such node.
const NONE: u32 = u32::MAX;

/// One (route, host, path pattern) that ends at a trie node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    pub(super) rank: Rank,
    /// Index into the router's compiled routes.
    pub(super) slot: u32,
    /// The route's methods, so that most candidates are judged without the route.
    pub(super) methods: MethodSet,
    /// The route lists headers: the route must be consulted.
    pub(super) has_headers: bool,
    /// See [`PathPattern::needs_more`].
    pub(super) needs_more: bool,
}

/// A frozen node: its `{param}` child and its candidates, `prefix` ones (prefix and params
/// patterns ending here: they match this path and anything below) in
/// `candidates[start..mid]`, `=` ones (match only when the path ends here) in
/// `candidates[mid..end]`, each best first.
#[derive(Debug, Clone, Copy)]
struct Node {
    param: u32,
    start: u32,
    mid: u32,
    end: u32,
}

#[derive(Debug)]
pub(super) struct Trie {
    nodes: Box<[Node]>,
    edges: EdgeTable,
    candidates: Box<[Candidate]>,
    exact_hosts: usize,
    wildcard_hosts: usize,
}

/// Where a bucket's root hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bucket<'a> {
    AnyHost,
    ExactHost(&'a str),
    WildcardSuffix(&'a str),
}

const ANY_HOST: u32 = 0;
const EXACT_HOSTS: u32 = 1;
const WILDCARD_HOSTS: u32 = 2;

#[derive(Debug, Default)]
struct NodeBuild {
    param: Option<u32>,
    prefix: Vec<Candidate>,
    exact: Vec<Candidate>,
}

/// Collects patterns, then freezes them into a [`Trie`].
#[derive(Debug)]
pub(super) struct TrieBuilder {
    nodes: Vec<NodeBuild>,
    edges: HashMap<(u32, Box<str>), u32>,
}

impl TrieBuilder {
    pub(super) fn new() -> TrieBuilder {
        TrieBuilder {
            // The any-host root and the parents of the exact and wildcard host roots.
            nodes: (0..3).map(|_| NodeBuild::default()).collect(),
            edges: HashMap::new(),
        }
    }

    /// Adds `pattern` for `candidate` to the trie of `bucket`. `None` once the trie is
    /// full (over four billion nodes), when the pattern is left out.
    pub(super) fn insert(
        &mut self,
        bucket: Bucket<'_>,
        pattern: &PathPattern<'_>,
        candidate: Candidate,
    ) -> Option<()> {
        let mut node = match bucket {
            Bucket::AnyHost => ANY_HOST,
            Bucket::ExactHost(host) => self.literal(EXACT_HOSTS, host)?,
            Bucket::WildcardSuffix(suffix) => self.literal(WILDCARD_HOSTS, suffix)?,
        };
        for segment in &pattern.segments {
            node = match segment {
                Segment::Literal(text) => self.literal(node, text)?,
                Segment::Param => self.param(node)?,
            };
        }
        let node = self.nodes.get_mut(node as usize)?;
        match pattern.class {
            PathClass::Exact => node.exact.push(candidate),
            PathClass::Prefix | PathClass::Params => node.prefix.push(candidate),
        }
        Some(())
    }

    fn new_node(&mut self) -> Option<u32> {
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&id| id != NONE)?;
        self.nodes.push(NodeBuild::default());
        Some(id)
    }

    fn literal(&mut self, parent: u32, text: &str) -> Option<u32> {
        let key = (parent, Box::from(text));
        if let Some(&child) = self.edges.get(&key) {
            return Some(child);
        }
        let child = self.new_node()?;
        self.edges.insert(key, child);
        Some(child)
    }

    fn param(&mut self, parent: u32) -> Option<u32> {
        if let Some(child) = self.nodes.get(parent as usize)?.param {
            return Some(child);
        }
        let child = self.new_node()?;
        self.nodes.get_mut(parent as usize)?.param = Some(child);
        Some(child)
    }

    /// Sorts every candidate list best first and freezes the lot.
    pub(super) fn build(self) -> Trie {
        let mut candidates = Vec::new();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for mut node in self.nodes {
            node.prefix
                .sort_unstable_by_key(|c| std::cmp::Reverse(c.rank));
            node.exact
                .sort_unstable_by_key(|c| std::cmp::Reverse(c.rank));
            let start = offset(&candidates);
            candidates.extend(node.prefix);
            let mid = offset(&candidates);
            candidates.extend(node.exact);
            let end = offset(&candidates);
            nodes.push(Node {
                param: node.param.unwrap_or(NONE),
                start,
                mid,
                end,
            });
        }
        let hosts_under = |parent| self.edges.keys().filter(|(p, _)| *p == parent).count();
        Trie {
            nodes: nodes.into_boxed_slice(),
            exact_hosts: hosts_under(EXACT_HOSTS),
            wildcard_hosts: hosts_under(WILDCARD_HOSTS),
            edges: EdgeTable::build(&self.edges),
            candidates: candidates.into_boxed_slice(),
        }
    }
}

impl Trie {
    /// The root of a bucket's trie, if any route uses that bucket.
    pub(super) fn root(&self, bucket: Bucket<'_>) -> Option<u32> {
        match bucket {
            Bucket::AnyHost => Some(ANY_HOST),
            Bucket::ExactHost(host) if self.exact_hosts > 0 => self.edges.get(EXACT_HOSTS, host),
            Bucket::WildcardSuffix(suffix) if self.wildcard_hosts > 0 => {
                self.edges.get(WILDCARD_HOSTS, suffix)
            }
            Bucket::ExactHost(_) | Bucket::WildcardSuffix(_) => None,
        }
    }

    pub(super) fn has_host_buckets(&self) -> bool {
        self.exact_hosts > 0 || self.wildcard_hosts > 0
    }

    pub(super) fn has_wildcards(&self) -> bool {
        self.wildcard_hosts > 0
    }

    /// Sizes for `Debug`: (exact hosts, wildcard suffixes, nodes, edges).
    pub(super) fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.exact_hosts,
            self.wildcard_hosts,
            self.nodes.len(),
            self.edges.len(),
        )
    }

    /// Walks the path segments in `rest` (shape of [`super::pattern::segments_of`]) from
    /// `node` and replaces `best` with any matching candidate that ranks higher and that
    /// `accepts` (method, headers). Recursion depth is bounded by the trie's depth, not
    /// the path's.
    pub(super) fn walk(
        &self,
        node: u32,
        rest: Option<&str>,
        accepts: &impl Fn(&Candidate) -> bool,
        best: &mut Option<Candidate>,
    ) {
        let Some(&Node {
            param,
            start,
            mid,
            end,
        }) = self.nodes.get(node as usize)
        else {
            return;
        };
        let prefix = self.slice(start, mid);
        consider(prefix, rest.is_some(), accepts, best);
        let Some(rest) = rest else {
            consider(self.slice(mid, end), false, accepts, best);
            return;
        };
        let (segment, rest) = next_segment(rest);
        if let Some(child) = self.edges.get(node, segment) {
            self.walk(child, rest, accepts, best);
        }
        if param != NONE && !segment.is_empty() {
            self.walk(param, rest, accepts, best);
        }
    }

    fn slice(&self, start: u32, end: u32) -> &[Candidate] {
        self.candidates
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }
}

/// Position of the next candidate pushed (saturating: four billion candidates do not fit
/// in memory anyway).
fn offset(candidates: &[Candidate]) -> u32 {
    u32::try_from(candidates.len()).unwrap_or(u32::MAX)
}

/// Takes the first candidate of `list` (sorted best first) that beats `best` and is
/// accepted; stops at the first one that cannot beat `best`.
fn consider(
    list: &[Candidate],
    has_more: bool,
    accepts: &impl Fn(&Candidate) -> bool,
    best: &mut Option<Candidate>,
) {
    for candidate in list {
        if best.is_some_and(|b| candidate.rank <= b.rank) {
            return;
        }
        if candidate.needs_more && !has_more {
            continue;
        }
        if accepts(candidate) {
            *best = Some(*candidate);
            return;
        }
    }
}
