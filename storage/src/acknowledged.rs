//! The last acknowledged revision, kept outside sled: a store whose data file lost its
//! tail (a truncated copy, a disk that dropped writes) would otherwise open at an older
//! revision, or empty, and serve that config as if nothing had happened, then overwrite
//! the damaged part for good. With this file beside it, [`Store::open`](crate::Store::open)
//! refuses such a store instead ([`StoreError::Behind`](crate::StoreError::Behind)).
//!
//! The file holds the revision in decimal. It is replaced whole (a temporary file written
//! and fsynced, renamed over it, the directory fsynced) after every change sled has
//! flushed, so it never names a revision sled had not made durable first.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the file in the data directory.
pub const FILE_NAME: &str = "acknowledged-revision";

/// The path of the file in data directory `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The revision recorded in `dir`, `None` when there is no file (a new store, or one
/// written before the file existed). `Err` when it exists but cannot be read or does not
/// hold a number.
pub fn read(dir: &Path) -> io::Result<Option<u64>> {
    let text = match fs::read_to_string(path(dir)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    text.trim().parse().map(Some).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold a revision: {text:?}", path(dir).display()),
        )
    })
}

/// Records `revision` as acknowledged in `dir`, durably (see the module doc).
pub fn write(dir: &Path, revision: u64) -> io::Result<()> {
    let target = path(dir);
    let temporary = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = File::create(&temporary)?;
    writeln!(file, "{revision}")?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, &target)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_revision_reads_back_and_a_missing_file_is_none() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(read(dir.path())?, None);
        write(dir.path(), 51)?;
        assert_eq!(read(dir.path())?, Some(51));
        write(dir.path(), 52)?;
        assert_eq!(read(dir.path())?, Some(52));
        assert!(!dir.path().join(format!("{FILE_NAME}.tmp")).exists());
        Ok(())
    }

    #[test]
    fn a_file_without_a_number_is_an_error() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(path(dir.path()), "garbage")?;
        assert_eq!(
            read(dir.path()).map_err(|e| e.kind()),
            Err(io::ErrorKind::InvalidData)
        );
        Ok(())
    }
}
