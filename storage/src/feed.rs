//! The config feed's store side: a bounded in-memory history of what each revision changed
//! ([`Delta`]), the answer to "what changed after revision R" ([`Feed`]), and applying what
//! a follower receives ([`Replica`]) at the control node's own revision numbers.
//!
//! The history lives in memory only: a restarted store knows no change before its current
//! revision, and a follower behind it gets the whole config again. It is bounded by
//! revisions ([`MAX_REVISIONS`]) and by objects ([`MAX_OBJECTS`]): a 100,000-key import
//! is not kept at all (it empties the history), so no import can pin memory.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::spec::{
    CertificateSpec, Config, ConsumerSpec, CredentialRecord, JwtIssuerSpec, KeyRecord, PlanSpec,
    RouteSpec, UpstreamSpec,
};
use crate::trees::Entity;
use crate::{Kind, Object};

/// Revisions the history keeps at most.
pub const MAX_REVISIONS: usize = 1024;
/// Objects (upserted or deleted) the history keeps at most, over all its revisions.
pub const MAX_OBJECTS: usize = 10_000;

/// What one revision changed: the objects it wrote (whole) and the ids it removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// The revision this change produced.
    pub revision: u64,
    /// As in the audit log: `create route orders`.
    pub action: String,
    pub upserts: Vec<Object>,
    pub deletes: Vec<Deleted>,
}

/// One removed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub kind: Kind,
    pub id: String,
}

impl Delta {
    fn objects(&self) -> usize {
        // An empty change still takes a slot.
        (self.upserts.len() + self.deletes.len()).max(1)
    }
}

/// The answer to "what changed after revision R" ([`crate::Store::changes_after`]).
#[derive(Debug, Clone)]
pub enum Feed {
    /// Nothing: R is the current revision.
    Current { revision: u64 },
    /// Every change after R, in order, up to `revision` (no revision skipped).
    Changes {
        revision: u64,
        deltas: Vec<Arc<Delta>>,
    },
    /// The history does not reach back to R (or R is ahead of this store): the whole
    /// config at `revision`.
    Whole { revision: u64, config: Arc<Config> },
}

/// What a follower received, to apply with [`crate::Store::apply_replica`].
#[derive(Debug, Clone)]
pub enum Replica {
    /// The whole config at `revision` (replaces everything, whatever the local revision).
    Whole { revision: u64, config: Config },
    /// Changes following the local revision without a gap.
    Changes(Vec<Delta>),
}

/// The bounded history. `floor` is the revision it starts after: it knows every change in
/// `(floor, last]`.
#[derive(Debug)]
pub(crate) struct History {
    floor: u64,
    last: u64,
    deltas: VecDeque<Arc<Delta>>,
    objects: usize,
    max_revisions: usize,
    max_objects: usize,
}

impl History {
    /// An empty history at `revision` (nothing known before it).
    pub fn new(revision: u64) -> Self {
        Self::with_bounds(revision, MAX_REVISIONS, MAX_OBJECTS)
    }

    pub fn with_bounds(revision: u64, max_revisions: usize, max_objects: usize) -> Self {
        Self {
            floor: revision,
            last: revision,
            deltas: VecDeque::new(),
            objects: 0,
            max_revisions: max_revisions.max(1),
            max_objects: max_objects.max(1),
        }
    }

    /// Forgets everything: the history starts after `revision`.
    pub fn reset(&mut self, revision: u64) {
        self.floor = revision;
        self.last = revision;
        self.deltas.clear();
        self.objects = 0;
    }

    /// The most objects one change may hold to be kept.
    pub fn max_objects(&self) -> usize {
        self.max_objects
    }

    /// Records revision `revision` as the result of `delta`, or, without one (too big to
    /// keep), forgets everything before it.
    pub fn record(&mut self, revision: u64, delta: Option<Delta>) {
        match delta {
            Some(delta) => self.push(delta),
            None => self.reset(revision),
        }
    }

    /// Records the change that produced `delta.revision`, which must be the next one (else
    /// the history restarts after it). Drops the oldest changes past the bounds.
    pub fn push(&mut self, delta: Delta) {
        if delta.revision != self.last + 1 || delta.objects() > self.max_objects {
            self.reset(delta.revision);
            return;
        }
        self.last = delta.revision;
        self.objects += delta.objects();
        self.deltas.push_back(Arc::new(delta));
        while self.deltas.len() > self.max_revisions || self.objects > self.max_objects {
            match self.deltas.pop_front() {
                Some(old) => {
                    self.objects -= old.objects();
                    self.floor = old.revision;
                }
                None => break,
            }
        }
    }

    /// The changes after `after`, if the history knows them all (`None`: it does not reach
    /// back that far, or `after` is not a revision it has seen yet). Empty when `after` is
    /// the last revision.
    pub fn after(&self, after: u64) -> Option<Vec<Arc<Delta>>> {
        if after < self.floor || after > self.last {
            return None;
        }
        let skip = usize::try_from(after - self.floor).ok()?;
        Some(self.deltas.iter().skip(skip).cloned().collect())
    }

    /// The revision of the last change it knows.
    pub fn last(&self) -> u64 {
        self.last
    }
}

/// What turns `old` into `new` (both sorted by id), as upserts and deletes; `None` once it
/// passes `limit` objects (what the history would not keep is not built: a 100,000-key
/// import would clone every key for nothing).
pub(crate) fn delta(
    old: &Config,
    new: &Config,
    revision: u64,
    action: String,
    limit: usize,
) -> Option<Delta> {
    fn kind<T: Entity + IntoObject>(
        old: &Config,
        new: &Config,
        delta: &mut Delta,
        limit: usize,
    ) -> Option<()> {
        let (mut b, mut a) = (
            T::list(old).iter().peekable(),
            T::list(new).iter().peekable(),
        );
        loop {
            if delta.upserts.len() + delta.deletes.len() > limit {
                return None;
            }
            let order = match (b.peek(), a.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(old), Some(new)) => old.id().cmp(new.id()),
            };
            match order {
                Ordering::Less => delta.deletes.extend(b.next().map(|o| Deleted {
                    kind: T::KIND,
                    id: o.id().to_owned(),
                })),
                Ordering::Greater => delta
                    .upserts
                    .extend(a.next().map(|o| o.clone().into_object())),
                Ordering::Equal => {
                    if let (Some(old), Some(new)) = (b.next(), a.next()) {
                        if old != new {
                            delta.upserts.push(new.clone().into_object());
                        }
                    }
                }
            }
        }
        Some(())
    }
    let mut out = Delta {
        revision,
        action,
        upserts: Vec::new(),
        deletes: Vec::new(),
    };
    kind::<UpstreamSpec>(old, new, &mut out, limit)?;
    kind::<RouteSpec>(old, new, &mut out, limit)?;
    kind::<ConsumerSpec>(old, new, &mut out, limit)?;
    kind::<PlanSpec>(old, new, &mut out, limit)?;
    kind::<JwtIssuerSpec>(old, new, &mut out, limit)?;
    kind::<CertificateSpec>(old, new, &mut out, limit)?;
    kind::<KeyRecord>(old, new, &mut out, limit)?;
    kind::<CredentialRecord>(old, new, &mut out, limit)?;
    (out.upserts.len() + out.deletes.len() <= limit).then_some(out)
}

/// Applies `delta` to `config` in memory (kept sorted by id).
pub(crate) fn replay(config: &mut Config, delta: Delta) {
    for Deleted { kind, id } in delta.deletes {
        crate::change::delete(config, kind, &id);
    }
    for object in delta.upserts {
        crate::change::upsert(config, object);
    }
}

trait IntoObject {
    fn into_object(self) -> Object;
}

macro_rules! into_object {
    ($($ty:ty => $variant:ident),*) => {
        $(impl IntoObject for $ty {
            fn into_object(self) -> Object {
                Object::$variant(self)
            }
        })*
    };
}

into_object!(
    UpstreamSpec => Upstream,
    RouteSpec => Route,
    ConsumerSpec => Consumer,
    PlanSpec => Plan,
    JwtIssuerSpec => JwtIssuer,
    CertificateSpec => Certificate,
    KeyRecord => Key,
    CredentialRecord => Credential
);

#[cfg(test)]
mod tests;
