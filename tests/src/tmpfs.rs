//! A small tmpfs mounted for one test (a disk that fills up on demand), always unmounted
//! when dropped. Mounting needs root: [`Tmpfs::mount`] answers `None` otherwise, and the
//! test skips (CI runs as root).

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

/// A mounted tmpfs; unmounted (lazily if busy) and its mount point removed on drop.
pub struct Tmpfs {
    /// Declared before `_mount_point`: unmounted before the directory goes.
    path: PathBuf,
    _mount_point: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `megabytes` on a new temporary directory. `Ok(None)` when not
    /// root.
    pub fn mount(megabytes: u32) -> Result<Option<Tmpfs>> {
        if std::fs::metadata("/proc/self")?.uid() != 0 {
            return Ok(None);
        }
        let mount_point = tempfile::Builder::new()
            .prefix("tollgate-tmpfs-")
            .tempdir()?;
        let path = mount_point.path().to_owned();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m")])
            .arg("tmpfs")
            .arg(&path)
            .status()
            .context("running mount")?;
        if !status.success() {
            bail!("mount -t tmpfs on {} failed: {status}", path.display());
        }
        Ok(Some(Tmpfs {
            path,
            _mount_point: mount_point,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` until the file system is full (every last byte). Returns its size.
    pub fn fill(&self, name: &str) -> Result<u64> {
        let path = self.path.join(name);
        let mut file =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut written = 0u64;
        for chunk in [64 * 1024, 4096, 1] {
            let buf = vec![0x5a_u8; chunk];
            loop {
                match file.write(&buf) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("filling the tmpfs"),
                }
            }
        }
        Ok(written)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process that has not exited yet): detach it now, freed when
            // the last user goes.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
