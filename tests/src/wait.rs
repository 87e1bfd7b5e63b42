//! Bounded waits on observable conditions: the only synchronisation the tests use.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How often a condition is probed.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Probes `probe` every [`POLL_INTERVAL`] until it returns `Ok(Some(value))`, and returns
/// that value. `Err` when `timeout` passes first (naming `what` and the last probe error),
/// so a condition that never holds fails the test instead of hanging it.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = Some(err),
        }
        if Instant::now() >= deadline {
            match last_error {
                Some(err) => {
                    bail!("timed out after {timeout:?} waiting for {what}: last error: {err:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
