//! Gives memory the gateway freed back to the OS.
//!
//! mimalloc (the gateway's allocator) returns freed pages to the OS ("purges" them) a
//! second after they are freed, but only when some thread frees a page of its own later:
//! the purge runs from that path, not from a timer. A gateway that loaded a large config
//! and then serves small requests from pages it keeps reusing may never take that path, so
//! the memory of a reload (the old snapshot, the store's reading buffers) stays resident:
//! 20-30 MB with 100,000 keys. Freeing a block larger than mimalloc's largest size class
//! frees a page of its own at once, and with it runs the purge of whatever is due; one
//! thread does that every [`EVERY`].
//!
//! The delay itself shapes memory too: while a large config loads, memory freed and not
//! yet purged is not reused, so the load spreads its live objects over more pages (peak
//! 126 MB with 100,000 keys) and they stay resident (104 MB after it). With a delay of
//! [`PURGE_DELAY_MS`] the same load peaks at 105 MB and settles at 90 MB, for one purge
//! (`madvise`) per ~125 requests under load. mimalloc reads the delay once, from the
//! environment, before `main` runs, and its C API is `unsafe`: so [`purge_promptly`]
//! re-executes the process once with `MIMALLOC_PURGE_DELAY` set, unless the operator set it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::time::Duration;

/// How often the purge is run (what it purges was freed at least [`PURGE_DELAY_MS`] ago).
pub const EVERY: Duration = Duration::from_secs(1);

/// Above mimalloc's largest size class (512 KiB): allocated as a page of its own and
/// freed as one. Only reserved, never written, so it costs no resident memory.
const BLOCK: usize = 1 << 20;

/// mimalloc's purge delay Tollgate runs with, in milliseconds (mimalloc's own: 1,000).
pub const PURGE_DELAY_MS: &str = "100";

const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// Replaces the process by itself with `MIMALLOC_PURGE_DELAY` set (same pid, arguments and
/// descriptors) when it is not set yet; returns only when it is set already, or with the
/// error when the re-execution failed (the process then goes on with mimalloc's delay).
/// Call it first thing, before any thread starts.
pub fn purge_promptly() -> std::io::Result<()> {
    if std::env::var_os(PURGE_DELAY_VAR).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("tollgate"));
    Err(std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(PURGE_DELAY_VAR, PURGE_DELAY_MS)
        .exec())
}

/// Starts the thread; it lives as long as the process.
pub fn start() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tollgate-trim".into())
        .spawn(|| loop {
            std::thread::sleep(EVERY);
            release_freed();
        })
        .map(drop)
}

/// One allocation and free of a page-sized block: the free runs mimalloc's purge.
pub fn release_freed() {
    let block: Vec<u8> = Vec::with_capacity(BLOCK);
    std::hint::black_box(&block);
}
