//! The SQLite file under the store's feet. A file deleted or replaced while SQLite has it open
//! does not fail anything by itself: the open connections go on reading and writing the old,
//! unlinked file, and everything written from then on vanishes at the next start. So the file's
//! identity (device and inode) is recorded when it is opened and checked before every use; no
//! connection is ever opened on a file that is not the recorded one (the pool opens with
//! `mode=rw`, never creating, and checks the identity first), since two connections of one
//! process on two files at one path share, and clobber, the journal and WAL files named after it;
//! and when the file has gone, [`crate::Store::recover`] copies the database from a connection
//! still open on it (`VACUUM INTO`), closes every old connection, and only then opens the copy put
//! back in place.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Result, StoreError};

/// Which file a path names: the same identity means the same file, even if it was renamed
/// and renamed back; a new file at the path has another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file at `path` now.
pub(crate) fn identity(path: &Path) -> io::Result<FileId> {
    let meta = std::fs::metadata(path)?;
    Ok(file_id(&meta))
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId { dev: meta.dev(), ino: meta.ino() }
}

/// Without inodes, only a missing file is noticed.
#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> FileId {
    FileId { dev: 0, ino: 0 }
}

/// What became of the file the store opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Still the file that was opened.
    Intact,
    /// Nothing at the path any more (the file or its directory was deleted).
    Deleted,
    /// Another file at the path (replaced or moved over).
    Replaced(FileId),
}

/// A SQLite file opened by the store, and the identity it was opened with.
pub(crate) struct Watch {
    /// Absolute, as SQLite resolves it.
    pub(crate) path: PathBuf,
    expected: Mutex<FileId>,
    /// The WAL file the store's connections have open, as of the last open. SQLite leaves it
    /// behind when its database was moved away, and it must then not be read as the new file's.
    wal: Mutex<Option<FileId>>,
    /// One recovery at a time.
    pub(crate) recovering: tokio::sync::Mutex<()>,
}

impl Watch {
    pub(crate) fn new(path: PathBuf, id: FileId) -> Watch {
        let watch =
            Watch { path, expected: Mutex::new(id), wal: Mutex::new(None), recovering: tokio::sync::Mutex::new(()) };
        watch.note_wal();
        watch
    }

    /// Records the identity of the WAL file now at the path (the store's own, once it has
    /// opened the database).
    pub(crate) fn note_wal(&self) {
        let [wal, _, _] = self.companions();
        *self.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = identity(&wal).ok();
    }

    /// Whether the WAL file at the path is the one the store's connections had open.
    pub(crate) fn wal_is_ours(&self) -> bool {
        let [wal, _, _] = self.companions();
        let ours = *self.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ours.is_some() && identity(&wal).ok() == ours
    }

    pub(crate) fn expected(&self) -> FileId {
        *self.expected.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set_expected(&self, id: FileId) {
        *self.expected.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = id;
    }

    pub(crate) fn state(&self) -> Result<State> {
        match identity(&self.path) {
            Ok(id) if id == self.expected() => Ok(State::Intact),
            Ok(id) => Ok(State::Replaced(id)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::Deleted),
            Err(e) => Err(StoreError::Unavailable(format!(
                "cannot check SQLite database {}: {e}; check that its directory is readable",
                self.path.display()
            ))),
        }
    }

    /// Ok while the file is the one opened; otherwise an error saying what happened, so that
    /// nothing is written to a file that is no longer there.
    pub(crate) fn check(&self) -> Result<()> {
        match self.state()? {
            State::Intact => Ok(()),
            State::Deleted => Err(StoreError::Unavailable(format!(
                "SQLite database {} was deleted while sluice had it open; sluice restores it from its open \
                 connection and keeps spend in memory until then",
                self.path.display()
            ))),
            State::Replaced(_) => Err(StoreError::Unavailable(format!(
                "SQLite database {} was replaced by another file while sluice had it open; sluice switches to the \
                 new file and keeps spend in memory until then",
                self.path.display()
            ))),
        }
    }

    /// The database's companion files, named after it: they belong to whichever database was
    /// last opened at the path.
    pub(crate) fn companions(&self) -> [PathBuf; 3] {
        ["-wal", "-shm", "-journal"].map(|suffix| {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            p.into()
        })
    }

    /// Where a copy is made before it is put in place.
    pub(crate) fn restore_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".restoring");
        p.into()
    }
}

/// Creates an empty file at `path` if there is none (an empty file is an empty SQLite
/// database), so the pool can open it without the right to create one, and returns its identity.
pub(crate) fn create(path: &Path) -> io::Result<FileId> {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    identity(path)
}

/// Removes `path`, which may not exist.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
