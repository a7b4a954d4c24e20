//! Writing a checkpoint's tree into a directory: only the entries that differ from what the
//! directory holds now, without ever following a symlink found there.
//!
//! Files are copied out of the store (`copy_file_range`, which shares extents on file
//! systems that can), never hard-linked: a link would let the agent change the store by
//! writing to its own files. Each file and symlink is written to a temporary name and
//! renamed over the old entry, so a reader sees the old or the new one, never half of one.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{CheckpointError, Result};
use crate::hash::ObjectHash;
use crate::objects::Objects;
use crate::scan::read_names;
use crate::tree::{self, EntryKind, TreeEntry};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What a restore changed in the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreStats {
    pub files_written: u64,
    pub bytes_written: u64,
    pub symlinks_written: u64,
    pub directories_created: u64,
    /// Files, symlinks and directories removed (every path counts).
    pub removed: u64,
}

/// The user and group that restored files, directories and symlinks are given: the
/// sandbox's user when it is not the server's. `None` leaves them to the restoring user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    fn ids(self) -> (Option<rfs::Uid>, Option<rfs::Gid>) {
        // -1 means "leave unchanged" to chown(2); rustix refuses to build it.
        let uid = (self.uid != u32::MAX).then(|| rfs::Uid::from_raw(self.uid));
        let gid = (self.gid != u32::MAX).then(|| rfs::Gid::from_raw(self.gid));
        (uid, gid)
    }
}

pub(crate) struct Restorer<'a> {
    objects: &'a Objects,
    workspace: &'a Path,
    owner: Option<Owner>,
    pub(crate) stats: RestoreStats,
}

impl<'a> Restorer<'a> {
    pub(crate) fn new(objects: &'a Objects, workspace: &'a Path, owner: Option<Owner>) -> Self {
        Restorer { objects, workspace, owner, stats: RestoreStats::default() }
    }

    /// Gives an entry this restore created to `owner`. Before any chmod: a chown by root
    /// clears set-user-ID bits.
    pub(crate) fn chown(&self, fd: &OwnedFd, rel: &[u8]) -> Result<()> {
        let Some(owner) = self.owner else { return Ok(()) };
        let (uid, gid) = owner.ids();
        rfs::fchown(fd, uid, gid).map_err(|e| CheckpointError::io("chown", self.path(rel), e))
    }

    fn path(&self, rel: &[u8]) -> PathBuf {
        self.workspace.join(OsStr::from_bytes(rel))
    }

    fn tree(&self, hash: &ObjectHash) -> Result<Vec<TreeEntry>> {
        tree::decode(hash, &self.objects.read(hash)?)
    }

    /// Makes the directory `dir` (at `rel`) hold exactly the tree `target`, given that it
    /// holds the tree `current` now (`None`: it is empty).
    pub(crate) fn apply(
        &mut self,
        dir: &OwnedFd,
        rel: &mut Vec<u8>,
        current: Option<&ObjectHash>,
        target: &ObjectHash,
    ) -> Result<()> {
        if current == Some(target) {
            return Ok(());
        }
        let current_entries = match current {
            Some(hash) => self.tree(hash)?,
            None => Vec::new(),
        };
        let target_entries = self.tree(target)?;
        let wanted: HashMap<&[u8], &TreeEntry> =
            target_entries.iter().map(|e| (e.name.as_slice(), e)).collect();
        let present: HashMap<&[u8], &TreeEntry> =
            current_entries.iter().map(|e| (e.name.as_slice(), e)).collect();

        for entry in &current_entries {
            if !wanted.contains_key(entry.name.as_slice()) {
                let name = c_name(&entry.name)?;
                self.with_child(rel, &entry.name, |this, rel| this.remove(dir, &name, rel))?;
            }
        }
        for entry in &target_entries {
            let now = present.get(entry.name.as_slice()).copied();
            if now.is_some_and(|now| now.same_as(entry)) {
                continue;
            }
            // A file whose mode alone differs is written again too: a chmod by name could
            // follow a symlink put there since the scan, a new file is safe to chmod.
            let name = c_name(&entry.name)?;
            self.with_child(rel, &entry.name, |this, rel| match entry.kind {
                EntryKind::File => this.write_file(dir, &name, rel, entry),
                EntryKind::Symlink => this.write_symlink(dir, &name, rel, entry),
                EntryKind::Directory => this.write_directory(dir, &name, rel, now, entry),
            })?;
        }
        Ok(())
    }

    fn with_child<T>(
        &mut self,
        rel: &mut Vec<u8>,
        name: &[u8],
        f: impl FnOnce(&mut Self, &mut Vec<u8>) -> Result<T>,
    ) -> Result<T> {
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name);
        let out = f(self, rel);
        rel.truncate(len);
        out
    }

    fn write_file(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &mut Vec<u8>,
        entry: &TreeEntry,
    ) -> Result<()> {
        let mut source = self.objects.open(&entry.hash)?;
        let temp = temp_name();
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(dir, &temp, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| CheckpointError::io("create", self.path(rel), e))?;
        let chowned = self.chown(&fd, rel);
        let mut file = File::from(fd);
        let written = chowned
            .and_then(|()| {
                std::io::copy(&mut source, &mut file)
                    .map_err(|e| CheckpointError::io("write", self.path(rel), e))
            })
            .and_then(|n| {
                rfs::fchmod(&file, Mode::from_raw_mode(entry.mode))
                    .map_err(|e| CheckpointError::io("chmod", self.path(rel), e))?;
                Ok(n)
            });
        drop(file);
        let written = match written {
            Ok(n) => n,
            Err(e) => {
                let _ = rfs::unlinkat(dir, &temp, AtFlags::empty());
                return Err(e);
            }
        };
        self.replace(dir, &temp, name, rel)?;
        self.stats.files_written += 1;
        self.stats.bytes_written += written;
        Ok(())
    }

    fn write_symlink(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &mut Vec<u8>,
        entry: &TreeEntry,
    ) -> Result<()> {
        let target = self.objects.read(&entry.hash)?;
        let temp = temp_name();
        rfs::symlinkat(target.as_slice(), dir, &temp)
            .map_err(|e| CheckpointError::io("create symlink", self.path(rel), e))?;
        if let Some(owner) = self.owner {
            let (uid, gid) = owner.ids();
            if let Err(e) = rfs::chownat(dir, &temp, uid, gid, AtFlags::SYMLINK_NOFOLLOW) {
                let _ = rfs::unlinkat(dir, &temp, AtFlags::empty());
                return Err(CheckpointError::io("chown", self.path(rel), e));
            }
        }
        self.replace(dir, &temp, name, rel)?;
        self.stats.symlinks_written += 1;
        Ok(())
    }

    fn write_directory(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &mut Vec<u8>,
        now: Option<&TreeEntry>,
        entry: &TreeEntry,
    ) -> Result<()> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let existing = match now {
            Some(now) if now.kind == EntryKind::Directory => {
                match rfs::openat(dir, name, flags, Mode::empty()) {
                    Ok(fd) => Some((fd, now.hash)),
                    // The directory changed since the scan; it is replaced below.
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => None,
                    Err(e) => return Err(CheckpointError::io("open", self.path(rel), e)),
                }
            }
            _ => None,
        };
        let (sub, current) = match existing {
            Some((fd, hash)) => (fd, Some(hash)),
            None => {
                self.remove(dir, name, rel)?;
                rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| CheckpointError::io("create directory", self.path(rel), e))?;
                self.stats.directories_created += 1;
                let fd = rfs::openat(dir, name, flags, Mode::empty())
                    .map_err(|e| CheckpointError::io("open", self.path(rel), e))?;
                self.chown(&fd, rel)?;
                (fd, None)
            }
        };
        // The owner needs write and search permission while entries change inside; the
        // checkpoint's mode (perhaps read-only) is set once they are in place.
        if current.as_ref() != Some(&entry.hash) {
            rfs::fchmod(&sub, Mode::from_raw_mode(entry.mode | 0o700))
                .map_err(|e| CheckpointError::io("chmod", self.path(rel), e))?;
            self.apply(&sub, rel, current.as_ref(), &entry.hash)?;
        }
        rfs::fchmod(&sub, Mode::from_raw_mode(entry.mode))
            .map_err(|e| CheckpointError::io("chmod", self.path(rel), e))
    }

    /// Renames `temp` over `name`; whatever `name` is now (even a directory) is replaced.
    fn replace(
        &mut self,
        dir: &OwnedFd,
        temp: &CStr,
        name: &CStr,
        rel: &mut Vec<u8>,
    ) -> Result<()> {
        let outcome = match rfs::renameat(dir, temp, dir, name) {
            // `name` is a directory now, which a rename cannot replace: it goes first.
            Err(Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) => {
                self.remove(dir, name, rel).and_then(|()| {
                    rfs::renameat(dir, temp, dir, name)
                        .map_err(|e| CheckpointError::io("rename", self.path(rel), e))
                })
            }
            other => other.map_err(|e| CheckpointError::io("rename", self.path(rel), e)),
        };
        if outcome.is_err() {
            let _ = rfs::unlinkat(dir, temp, AtFlags::empty());
        }
        outcome
    }

    /// Removes `name` from `dir` whatever it is, a directory with everything in it included.
    pub(crate) fn remove(&mut self, dir: &OwnedFd, name: &CStr, rel: &mut Vec<u8>) -> Result<()> {
        let stat = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(CheckpointError::io("stat", self.path(rel), e)),
        };
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let sub = rfs::openat(dir, name, flags, Mode::empty())
                .map_err(|e| CheckpointError::io("open", self.path(rel), e))?;
            // A read-only directory's entries cannot be removed until it is writable.
            let _ = rfs::fchmod(&sub, Mode::from_raw_mode(0o700));
            let names =
                read_names(&sub).map_err(|e| CheckpointError::io("list", self.path(rel), e))?;
            for child in names {
                self.with_child(rel, child.as_bytes(), |this, rel| this.remove(&sub, &child, rel))?;
            }
            rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
                .map_err(|e| CheckpointError::io("remove", self.path(rel), e))?;
        } else {
            match rfs::unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(CheckpointError::io("remove", self.path(rel), e)),
            }
        }
        self.stats.removed += 1;
        Ok(())
    }
}

fn c_name(name: &[u8]) -> Result<CString> {
    // Tree decoding already refuses names with NUL bytes.
    CString::new(name).map_err(|_| CheckpointError::Corrupt("entry name with a NUL byte".into()))
}

/// A name for a file being restored, in the directory it will be renamed within.
fn temp_name() -> CString {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(".agentbox-restore-{}-{n}", std::process::id());
    CString::new(name).unwrap_or_default()
}
