//! A private `/etc/hosts` for one gateway process: the binary starts in its own mount
//! namespace (`unshare -m`) with a temporary file bind-mounted over `/etc/hosts`, so a test
//! decides which names resolve and can change that while the gateway runs. Needs root and
//! the `unshare` and `mount` tools; [`PrivateHosts::new`] says why when it cannot work.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

/// The hosts file of the gateways started through [`PrivateHosts::wrapper`].
pub struct PrivateHosts {
    _dir: TempDir,
    path: PathBuf,
}

impl PrivateHosts {
    /// `Ok(None)` with the reason printed when this machine cannot give a process its own
    /// `/etc/hosts` (not root, or no `unshare`); the file starts with `localhost` only.
    pub fn new() -> Result<Option<PrivateHosts>> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .context("running id -u")?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("skipped: a private /etc/hosts needs root (unshare -m and mount --bind)");
            return Ok(None);
        }
        let probe = Command::new("unshare")
            .args(["-m", "sh", "-c", "mount --bind /etc/hosts /etc/hosts"])
            .output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => bail!(
                "unshare -m with mount --bind failed as root: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => {
                eprintln!("skipped: cannot run unshare: {e}");
                return Ok(None);
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("tollgate-hosts-")
            .tempdir()?;
        let hosts = PrivateHosts {
            path: dir.path().join("hosts"),
            _dir: dir,
        };
        hosts.set(&[])?;
        Ok(Some(hosts))
    }

    /// Replaces the file's entries (`(ip, name)`) after `localhost`. Writes into the same
    /// inode (truncate, write): a bind mount of a file follows the inode, not the name.
    pub fn set(&self, entries: &[(&str, &str)]) -> Result<()> {
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for (ip, name) in entries {
            text.push_str(&format!("{ip} {name}\n"));
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(())
    }

    /// The `GatewayOptions::wrapper` that starts the binary with this file as `/etc/hosts`.
    pub fn wrapper(&self) -> Vec<String> {
        vec![
            "unshare".into(),
            "-m".into(),
            "sh".into(),
            "-c".into(),
            format!(
                "mount --bind '{}' /etc/hosts && exec \"$0\" \"$@\"",
                self.path.display()
            ),
        ]
    }
}
