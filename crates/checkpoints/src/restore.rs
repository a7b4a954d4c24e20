//! Writing a checkpoint's tree into a directory: only the entries that differ from what the
//! directory holds now, without ever following a symlink found there.
//!
//! Files are copied out of the store (`copy_file_range`, which shares extents on file
//! systems that can, and skips holes), never hard-linked: a link would let the agent change
//! the store by writing to its own files. Each file and symlink is written to a temporary
//! name and renamed over the old entry, so a reader sees the old or the new one, never half
//! of one.
//!
//! The walk is a loop over an explicit stack with one open directory per level of the
//! checkpoint's tree (at most [`MAX_DEPTH`]). What the directory holds now is either the
//! tree a scan just recorded ([`Present::Known`]) or, when the workspace was beyond what a
//! scan takes, looked at entry by entry ([`Present::Unknown`]). Removing a directory works
//! at any depth with two descriptors: the subdirectories of the one being emptied are moved
//! up into it instead of being descended into.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::MAX_DEPTH;
use crate::error::{CheckpointError, Result};
use crate::exclude::Excludes;
use crate::fd::{DIR_FLAGS, c_name, chmod_nofollow, for_each_name, join};
use crate::hash::ObjectHash;
use crate::index::{Index, StatKey};
use crate::objects::Objects;
use crate::tree::{self, EntryKind, TreeEntry};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Objects up to this size are copied in one go, without looking for holes (the scan
/// writes files up to this size from memory, whole).
const SMALL_OBJECT: u64 = 1 << 20;

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

/// What a directory holds before the restore writes into it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Present {
    /// The tree a scan recorded just before (`None`: the directory is empty).
    Known(Option<ObjectHash>),
    /// Not known, because the scan was refused: every entry is looked at, whatever it is,
    /// and what the checkpoint lacks is removed (excluded paths stay).
    Unknown,
}

/// One thing to do in a directory, in order.
enum Step {
    /// Remove this entry, which the scan recorded and the checkpoint lacks.
    Remove(Vec<u8>),
    /// Remove every entry but these names (and excluded paths).
    Prune(HashSet<Vec<u8>>),
    /// Write this entry of the checkpoint; `now` is what the scan recorded at its name.
    Write { entry: TreeEntry, now: Option<TreeEntry> },
}

/// A directory being restored.
struct Frame {
    dir: OwnedFd,
    /// Where its path ends in the walk's `rel`.
    rel_len: usize,
    steps: std::vec::IntoIter<Step>,
    /// True when what it holds is not known (see [`Present::Unknown`]).
    unknown: bool,
    /// The checkpoint's mode for it, set once its entries are in place (none for the
    /// workspace itself, whose mode a restore leaves alone).
    mode: Option<u32>,
}

pub(crate) struct Restorer<'a> {
    objects: &'a Objects,
    workspace: &'a Path,
    owner: Option<Owner>,
    excludes: &'a Excludes,
    /// The stat cache of the last scan, which spares rewriting unchanged files when what
    /// the workspace holds is not known.
    index: Option<&'a Index>,
    pub(crate) stats: RestoreStats,
}

impl<'a> Restorer<'a> {
    pub(crate) fn new(
        objects: &'a Objects,
        workspace: &'a Path,
        owner: Option<Owner>,
        excludes: &'a Excludes,
        index: Option<&'a Index>,
    ) -> Self {
        Restorer { objects, workspace, owner, excludes, index, stats: RestoreStats::default() }
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

    /// Makes the directory `dir` (the workspace, or a fork's new one) hold exactly the tree
    /// `target`, given what it holds now.
    pub(crate) fn apply(
        &mut self,
        dir: OwnedFd,
        present: Present,
        target: &ObjectHash,
    ) -> Result<()> {
        let Some(steps) = self.plan(present, target)? else { return Ok(()) };
        let unknown = matches!(present, Present::Unknown);
        let mut stack = vec![Frame { dir, rel_len: 0, steps, unknown, mode: None }];
        let mut rel = Vec::new();
        loop {
            let depth = stack.len();
            let Some(frame) = stack.last_mut() else { break };
            let Some(step) = frame.steps.next() else {
                if let Some(done) = stack.pop()
                    && let Some(mode) = done.mode
                {
                    rel.truncate(done.rel_len);
                    rfs::fchmod(&done.dir, Mode::from_raw_mode(mode))
                        .map_err(|e| CheckpointError::io("chmod", self.path(&rel), e))?;
                }
                continue;
            };
            let (dir, unknown, rel_len) = (&frame.dir, frame.unknown, frame.rel_len);
            let child = match step {
                Step::Prune(keep) => {
                    rel.truncate(rel_len);
                    self.prune(dir, &mut rel, &keep)?;
                    None
                }
                Step::Remove(name) => {
                    join(&mut rel, rel_len, &name);
                    self.remove(dir, &c_name(&name)?, &rel)?;
                    None
                }
                Step::Write { entry, now } => {
                    join(&mut rel, rel_len, &entry.name);
                    let name = c_name(&entry.name)?;
                    match entry.kind {
                        EntryKind::File => {
                            if !(unknown && self.unchanged_file(dir, &name, &rel, &entry)) {
                                self.write_file(dir, &name, &rel, &entry)?;
                            }
                            None
                        }
                        EntryKind::Symlink => {
                            if !(unknown && unchanged_link(dir, &name, &entry)) {
                                self.write_symlink(dir, &name, &rel, &entry)?;
                            }
                            None
                        }
                        EntryKind::Directory => {
                            self.enter(dir, &name, &rel, depth, unknown, now.as_ref(), &entry)?
                        }
                    }
                }
            };
            if let Some(child) = child {
                stack.push(child);
            }
        }
        Ok(())
    }

    /// The steps that make a directory holding `present` hold `target`; `None` when it
    /// already does.
    fn plan(
        &self,
        present: Present,
        target: &ObjectHash,
    ) -> Result<Option<std::vec::IntoIter<Step>>> {
        let target_entries = match present {
            Present::Known(Some(current)) if current == *target => return Ok(None),
            _ => self.tree(target)?,
        };
        let mut steps = Vec::new();
        match present {
            Present::Known(current) => {
                let current_entries = match current {
                    Some(hash) => self.tree(&hash)?,
                    None => Vec::new(),
                };
                let wanted: HashSet<&[u8]> =
                    target_entries.iter().map(|e| e.name.as_slice()).collect();
                let mut now: HashMap<Vec<u8>, TreeEntry> = HashMap::new();
                for entry in current_entries {
                    if wanted.contains(entry.name.as_slice()) {
                        now.insert(entry.name.clone(), entry);
                    } else {
                        steps.push(Step::Remove(entry.name));
                    }
                }
                for entry in target_entries {
                    let now = now.remove(&entry.name);
                    // A file whose mode alone differs is written again too: a chmod by name
                    // could follow a symlink put there since the scan, a new file is safe
                    // to chmod.
                    if now.as_ref().is_some_and(|now| now.same_as(&entry)) {
                        continue;
                    }
                    steps.push(Step::Write { entry, now });
                }
            }
            Present::Unknown => {
                let keep = target_entries.iter().map(|e| e.name.clone()).collect();
                steps.push(Step::Prune(keep));
                steps.extend(
                    target_entries.into_iter().map(|entry| Step::Write { entry, now: None }),
                );
            }
        }
        Ok(Some(steps.into_iter()))
    }

    /// Makes `name` in `dir` (at `rel`, `depth` levels down) a directory with the mode of
    /// `entry`; returns its frame when its entries still have to be written.
    #[allow(clippy::too_many_arguments)]
    fn enter(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &[u8],
        depth: usize,
        unknown: bool,
        now: Option<&TreeEntry>,
        entry: &TreeEntry,
    ) -> Result<Option<Frame>> {
        if depth > MAX_DEPTH {
            return Err(CheckpointError::CheckpointTooDeep {
                path: PathBuf::from(OsStr::from_bytes(rel)),
                limit: MAX_DEPTH,
            });
        }
        // The directory there is kept when the scan saw one, or, not knowing, when there is
        // one: opened with O_NOFOLLOW, a symlink or anything else fails and is replaced.
        let existing = if unknown || now.is_some_and(|now| now.kind == EntryKind::Directory) {
            match rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => Some(fd),
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => None,
                Err(e) => return Err(CheckpointError::io("open", self.path(rel), e)),
            }
        } else {
            None
        };
        let (sub, present) = match existing {
            Some(fd) if unknown => (fd, Present::Unknown),
            Some(fd) => (fd, Present::Known(now.map(|now| now.hash))),
            None => {
                self.remove(dir, name, rel)?;
                rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| CheckpointError::io("create directory", self.path(rel), e))?;
                self.stats.directories_created += 1;
                let fd = rfs::openat(dir, name, DIR_FLAGS, Mode::empty())
                    .map_err(|e| CheckpointError::io("open", self.path(rel), e))?;
                self.chown(&fd, rel)?;
                (fd, Present::Known(None))
            }
        };
        let chmod = |fd: &OwnedFd, mode: u32| {
            rfs::fchmod(fd, Mode::from_raw_mode(mode))
                .map_err(|e| CheckpointError::io("chmod", self.path(rel), e))
        };
        let Some(steps) = self.plan(present, &entry.hash)? else {
            chmod(&sub, entry.mode)?;
            return Ok(None);
        };
        // The owner needs write and search permission while entries change inside; the
        // checkpoint's mode (perhaps read-only) is set once they are in place.
        chmod(&sub, entry.mode | 0o700)?;
        Ok(Some(Frame {
            dir: sub,
            rel_len: rel.len(),
            steps,
            unknown: matches!(present, Present::Unknown),
            mode: Some(entry.mode),
        }))
    }

    /// Removes every entry of `dir` (at `rel`) that is not in `keep` and not excluded.
    fn prune(&mut self, dir: &OwnedFd, rel: &mut Vec<u8>, keep: &HashSet<Vec<u8>>) -> Result<()> {
        let len = rel.len();
        let dir_path = self.path(rel);
        for_each_name(
            dir,
            |e| CheckpointError::io("list", dir_path.clone(), e),
            |name, _| {
                if keep.contains(name.to_bytes()) {
                    return Ok(());
                }
                join(rel, len, name.to_bytes());
                if self.excludes.is_excluded(rel) {
                    return Ok(());
                }
                self.remove(dir, name, rel)
            },
        )?;
        rel.truncate(len);
        Ok(())
    }

    /// True when the file at `name` is the checkpoint's `entry` already, by the stat cache:
    /// the same inode, size, times and mode as when a scan hashed it to the same content.
    fn unchanged_file(&self, dir: &OwnedFd, name: &CStr, rel: &[u8], entry: &TreeEntry) -> bool {
        let Some(cached) = self.index.and_then(|index| index.entries.get(rel)) else {
            return false;
        };
        let Ok(stat) = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else { return false };
        FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
            && stat.st_mode & 0o7777 == entry.mode
            && cached.hash == entry.hash
            && cached.key == StatKey::of(&stat)
    }

    fn write_file(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &[u8],
        entry: &TreeEntry,
    ) -> Result<()> {
        let (source, len) = self.objects.open(&entry.hash)?;
        let temp = temp_name();
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let fd = rfs::openat(dir, &temp, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| CheckpointError::io("create", self.path(rel), e))?;
        let chowned = self.chown(&fd, rel);
        let file = File::from(fd);
        let written = chowned
            .and_then(|()| {
                copy_object(&source, len, &file)
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
        rel: &[u8],
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

    /// Renames `temp` over `name`; whatever `name` is now (even a directory) is replaced.
    fn replace(&mut self, dir: &OwnedFd, temp: &CStr, name: &CStr, rel: &[u8]) -> Result<()> {
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

    /// Removes `name` from `dir` (at `rel`) whatever it is, a directory with everything in
    /// it included, at any depth. A directory is emptied level by level: each of its
    /// subdirectories is emptied of files, its own subdirectories are moved up into the
    /// directory being removed, and it goes. No more than two of its directories are open at
    /// a time, and every one is moved once.
    pub(crate) fn remove(&mut self, dir: &OwnedFd, name: &CStr, rel: &[u8]) -> Result<()> {
        let stat = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(CheckpointError::io("stat", self.path(rel), e)),
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return match rfs::unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) => {
                    self.stats.removed += 1;
                    Ok(())
                }
                Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(CheckpointError::io("remove", self.path(rel), e)),
            };
        }
        let fail = |op: &'static str, e: std::io::Error| CheckpointError::io(op, self.path(rel), e);
        let top = match open_for_removal(dir, name) {
            Ok(Some(top)) => top,
            Ok(None) => return Ok(()),
            Err(e) => return Err(fail("open", e)),
        };
        let mut removed = 0;
        loop {
            let mut seen = false;
            for_each_name(
                &top,
                |e| fail("list", e),
                |child, is_dir| {
                    seen = true;
                    removed +=
                        remove_shallow(&top, child, is_dir).map_err(|e| fail("remove", e))?;
                    Ok(())
                },
            )?;
            if !seen {
                break;
            }
        }
        drop(top);
        self.stats.removed += removed;
        match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(CheckpointError::io("remove", self.path(rel), e)),
        }
        self.stats.removed += 1;
        Ok(())
    }
}

/// True when `name` is already a symlink to the target `entry` stores.
fn unchanged_link(dir: &OwnedFd, name: &CStr, entry: &TreeEntry) -> bool {
    rfs::readlinkat(dir, name, Vec::new())
        .is_ok_and(|target| ObjectHash::of(target.as_bytes()) == entry.hash)
}

/// Opens the directory `name` to empty it, making it writable and searchable; `None` when
/// it has gone. A directory its owner made unreadable is opened up first.
fn open_for_removal(dir: &OwnedFd, name: &CStr) -> std::io::Result<Option<OwnedFd>> {
    let fd = match rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::ACCESS) => {
            chmod_nofollow(dir, name, 0o700)?;
            rfs::openat(dir, name, DIR_FLAGS, Mode::empty())?
        }
        Err(e) => return Err(e.into()),
    };
    // A read-only directory's entries cannot be removed until it is writable.
    let _ = rfs::fchmod(&fd, Mode::from_raw_mode(0o700));
    Ok(Some(fd))
}

/// Removes `name` from `top`: a file at once; a directory after removing its files and
/// moving its subdirectories up into `top`, where the caller's next pass finds them.
/// Returns how many paths went.
fn remove_shallow(top: &OwnedFd, name: &CStr, is_dir: Option<bool>) -> std::io::Result<u64> {
    if is_dir != Some(true) {
        match rfs::unlinkat(top, name, AtFlags::empty()) {
            Ok(()) => return Ok(1),
            Err(Errno::NOENT) => return Ok(0),
            Err(Errno::ISDIR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let sub = match open_for_removal(top, name) {
        Ok(Some(sub)) => sub,
        Ok(None) => return Ok(0),
        // Listed as a directory, but not one (any more): it goes like a file.
        Err(e) if matches!(Errno::from_io_error(&e), Some(Errno::NOTDIR | Errno::LOOP)) => {
            rfs::unlinkat(top, name, AtFlags::empty())?;
            return Ok(1);
        }
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    loop {
        let mut seen = false;
        for_each_name(
            &sub,
            |e| e,
            |child, is_dir| {
                seen = true;
                if is_dir != Some(true) {
                    match rfs::unlinkat(&sub, child, AtFlags::empty()) {
                        Ok(()) => {
                            removed += 1;
                            return Ok(());
                        }
                        Err(Errno::NOENT) => return Ok(()),
                        Err(Errno::ISDIR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                hoist(&sub, child, top)
            },
        )?;
        if !seen {
            break;
        }
    }
    drop(sub);
    match rfs::unlinkat(top, name, AtFlags::REMOVEDIR) {
        Ok(()) => Ok(removed + 1),
        Err(Errno::NOENT) => Ok(removed),
        Err(e) => Err(e.into()),
    }
}

/// Moves the directory `name` from `from` into `top` under a new name.
fn hoist(from: &OwnedFd, name: &CStr, top: &OwnedFd) -> std::io::Result<()> {
    let mut opened_up = false;
    loop {
        let new = removal_name();
        match rfs::renameat(from, name, top, &new) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            // A name of ours that the tree happens to hold already: another one.
            Err(Errno::EXIST | Errno::NOTEMPTY | Errno::NOTDIR | Errno::ISDIR) => continue,
            // Moving a directory to another parent rewrites its `..`, which needs write
            // permission on it when the restore does not run as root.
            Err(Errno::ACCESS) if !opened_up => {
                chmod_nofollow(from, name, 0o700)?;
                opened_up = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Copies an object of `len` bytes into the new, empty file `dest` without writing its holes.
fn copy_object(source: &File, len: u64, dest: &File) -> std::io::Result<u64> {
    // Objects the scan held in memory were written whole and have no holes to look for.
    if len <= SMALL_OBJECT {
        copy_range(source, dest, 0, len)?;
        return Ok(len);
    }
    let mut pos = 0;
    while pos < len {
        let data = match rfs::seek(source, rfs::SeekFrom::Data(pos)) {
            Ok(data) => data,
            Err(Errno::NXIO) => break,
            // No hole support: the rest is data.
            Err(_) => pos,
        };
        if data >= len {
            break;
        }
        let end = match rfs::seek(source, rfs::SeekFrom::Hole(data)) {
            Ok(hole) if hole > data => hole.min(len),
            _ => len,
        };
        copy_range(source, dest, data, end)?;
        pos = end;
    }
    // A file that ends in a hole gets its length without writing the hole.
    if pos < len {
        dest.set_len(len)?;
    }
    Ok(len)
}

/// Copies bytes `from..to` of `source` to the same place in `dest`.
fn copy_range(source: &File, dest: &File, mut from: u64, to: u64) -> std::io::Result<()> {
    while from < to {
        let (mut off_in, mut off_out) = (from, from);
        let want = usize::try_from(to - from).unwrap_or(1 << 30).min(1 << 30);
        match rfs::copy_file_range(source, Some(&mut off_in), dest, Some(&mut off_out), want) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => from += n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                return copy_range_by_reading(source, dest, from, to);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn copy_range_by_reading(
    source: &File,
    dest: &File,
    mut from: u64,
    to: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0; 1 << 20];
    while from < to {
        let want = usize::try_from(to - from).unwrap_or(buf.len()).min(buf.len());
        let n = source.read_at(&mut buf[..want], from)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        dest.write_all_at(&buf[..n], from)?;
        from += n as u64;
    }
    Ok(())
}

/// A name for a file being restored, in the directory it will be renamed within.
fn temp_name() -> CString {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(".agentbox-restore-{}-{n}", std::process::id());
    CString::new(name).unwrap_or_default()
}

/// A name for a directory moved up while a tree is removed.
fn removal_name() -> CString {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(".agentbox-remove-{}-{n}", std::process::id());
    CString::new(name).unwrap_or_default()
}
