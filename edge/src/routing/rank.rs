//! The precedence of one (route, host, path pattern) candidate, as one totally ordered key.

use std::cmp::Reverse;

use super::pattern::{PathClass, PathPattern};

/// What kind of host entry put the candidate in its bucket, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum HostClass {
    Any,
    Wildcard,
    Exact,
}

/// Greater is better. Fields are compared in declaration order, which is the precedence
/// documented on [`super::Router`]; counts saturate (only absurd specs reach the caps, and
/// then config order decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rank {
    priority: i32,
    path_class: PathClass,
    literal_prefix_len: u16,
    literal_segments: u16,
    segments: u16,
    host_class: HostClass,
    /// Length of the exact host or of the wildcard suffix: `*.eu.example.org` beats
    /// `*.example.org`.
    host_len: u16,
    has_methods: bool,
    header_count: u16,
    config_order: Reverse<u32>,
}

/// The route-level inputs of a [`Rank`].
#[derive(Debug, Clone, Copy)]
pub(super) struct RouteTraits {
    pub(super) priority: i32,
    pub(super) has_methods: bool,
    pub(super) header_count: usize,
    pub(super) config_order: u32,
}

impl Rank {
    pub(super) fn new(
        route: RouteTraits,
        host_class: HostClass,
        host_len: usize,
        path: &PathPattern<'_>,
    ) -> Rank {
        Rank {
            priority: route.priority,
            path_class: path.class,
            literal_prefix_len: saturate(path.literal_prefix_len),
            literal_segments: saturate(path.literal_segments()),
            segments: saturate(path.segments.len()),
            host_class,
            host_len: saturate(host_len),
            has_methods: route.has_methods,
            header_count: saturate(route.header_count),
            config_order: Reverse(route.config_order),
        }
    }

    /// The route's index in the compiled specs.
    pub(super) fn config_order(&self) -> u32 {
        self.config_order.0
    }
}

fn saturate(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
