//! The open-file limit: raised at start from the soft limit to the hard one, as nginx's
//! `worker_rlimit_nofile` and Envoy's start-up scripts do. Every client and upstream
//! connection is a file descriptor; at a soft limit of 1024 (the usual default) a few
//! hundred idle clients starve the listeners, the admin API and the store of descriptors.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft limit on open files to the hard limit. Returns `(before, after)`.
/// `Err` when the limits cannot be read or set (the process keeps the limit it had).
pub fn raise() -> nix::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (after, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok((soft, after))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let (_, after) = super::raise().expect("limits readable and settable");
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .expect("readable");
        assert_eq!((after, soft), (hard, hard));
    }
}
