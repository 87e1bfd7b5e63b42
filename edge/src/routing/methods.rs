//! A route's `methods` as a bit set, so that most candidates are checked without touching
//! the route itself.

use http::Method;

/// The methods with a bit, in bit order.
const STANDARD: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::CONNECT,
    Method::TRACE,
];
/// Set when the route lists no method: any method matches.
const ANY: u16 = 1 << 15;
/// Set when the route lists a method outside [`STANDARD`]: check its full list.
const EXTENSION: u16 = 1 << 14;

/// The bit of a request's method: `0` for an extension method (`PURGE`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MethodBit(u16);

impl MethodBit {
    pub(super) fn of(method: &Method) -> MethodBit {
        MethodBit(
            STANDARD
                .iter()
                .position(|m| m == method)
                .map_or(0, |i| 1 << i),
        )
    }
}

/// Which methods a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MethodSet(u16);

/// What [`MethodSet::check`] can tell without the route's full list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Accepts,
    Rejects,
    /// Only the route's list of methods can tell.
    CheckList,
}

impl MethodSet {
    pub(super) fn of(methods: &[Method]) -> MethodSet {
        if methods.is_empty() {
            return MethodSet(ANY);
        }
        MethodSet(methods.iter().fold(0, |set, m| match MethodBit::of(m).0 {
            0 => set | EXTENSION,
            bit => set | bit,
        }))
    }

    pub(super) fn check(self, method: MethodBit) -> Verdict {
        if self.0 & (ANY | method.0) != 0 {
            Verdict::Accepts
        } else if method.0 == 0 && self.0 & EXTENSION != 0 {
            Verdict::CheckList
        } else {
            Verdict::Rejects
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_set_accepts_every_method() {
        let set = MethodSet::of(&[]);
        assert_eq!(set.check(MethodBit::of(&Method::GET)), Verdict::Accepts);
        let purge = Method::from_bytes(b"PURGE").expect("token");
        assert_eq!(set.check(MethodBit::of(&purge)), Verdict::Accepts);
    }

    #[test]
    fn standard_methods_are_decided_by_the_set() {
        let set = MethodSet::of(&[Method::GET, Method::TRACE]);
        assert_eq!(set.check(MethodBit::of(&Method::GET)), Verdict::Accepts);
        assert_eq!(set.check(MethodBit::of(&Method::TRACE)), Verdict::Accepts);
        assert_eq!(set.check(MethodBit::of(&Method::HEAD)), Verdict::Rejects);
        let purge = Method::from_bytes(b"PURGE").expect("token");
        assert_eq!(set.check(MethodBit::of(&purge)), Verdict::Rejects);
    }

    #[test]
    fn extension_methods_defer_to_the_list() {
        let purge = Method::from_bytes(b"PURGE").expect("token");
        let set = MethodSet::of(std::slice::from_ref(&purge));
        assert_eq!(set.check(MethodBit::of(&purge)), Verdict::CheckList);
        assert_eq!(set.check(MethodBit::of(&Method::GET)), Verdict::Rejects);
    }
}
