//! Reading a workspace into objects: one pass over the tree that stores new file contents,
//! symlink targets and directory listings, and returns the root tree's hash.
//!
//! Every step goes through a directory file descriptor with `O_NOFOLLOW` (`openat`,
//! `statat`, `readlinkat`), so a symlink, or a directory swapped for one while the scan
//! runs, is recorded as a link and never followed out of the workspace. The walk is a loop
//! over an explicit stack of open directories, at most [`MAX_DEPTH`] below the workspace and
//! at most `max_entries` names in all, so no workspace can exhaust the thread's stack, the
//! process's descriptors or the server's memory.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::MAX_DEPTH;
use crate::error::{CheckpointError, Result};
use crate::exclude::Excludes;
use crate::fd::{DIR_FLAGS, chmod_nofollow, join, read_names};
use crate::hash::ObjectHash;
use crate::index::{Index, IndexEntry, StatKey};
use crate::objects::{Objects, Stored};
use crate::tree::{self, EntryKind, TreeEntry};

/// Files up to this size are read into memory and hashed before anything is written, so an
/// unchanged content costs no write; larger ones stream through a temporary object file.
const SMALL_FILE: i64 = 1 << 20;
const CHUNK: usize = 1 << 20;
/// Reads of a file that changed while it was read are retried this many times.
const ATTEMPTS: usize = 3;
/// What a hole in a sparse file reads as, hashed without reading it.
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// What one scan found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanStats {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    /// Total size of the files' contents.
    pub bytes: u64,
    /// Sockets, FIFOs and device files, which are not stored.
    pub special_skipped: u64,
    /// Files whose content was read (the others were known unchanged from the stat cache).
    pub files_read: u64,
    pub bytes_read: u64,
    /// Objects (contents, link targets, directory listings) this scan added to the store.
    pub new_objects: u64,
    pub new_bytes: u64,
}

pub(crate) struct Scanner<'a> {
    workspace: &'a Path,
    objects: &'a Objects,
    excludes: &'a Excludes,
    old: &'a Index,
    new: Index,
    /// The store clock's time when the scan began (see `StatKey::is_racy`).
    scan_start: (i64, u64),
    /// How many names the scan may list in all, and how many it has listed.
    max_entries: usize,
    listed: usize,
    stats: ScanStats,
    buf: Vec<u8>,
}

/// A directory being scanned: its descriptor, the names still to look at and the entries
/// found so far. Its tree is stored, and its entry added to its parent, once the names run out.
struct Frame {
    dir: OwnedFd,
    names: std::vec::IntoIter<CString>,
    entries: Vec<TreeEntry>,
    /// Where this directory's path ends in the walk's `rel`.
    rel_len: usize,
    /// Its name and permission bits in its parent (unused for the workspace itself).
    name: Vec<u8>,
    mode: u32,
    /// The mode to put back when done, if the scan had to give itself access.
    restore_mode: Option<u32>,
}

/// What one name in a directory turned out to be.
enum Found {
    Entry(TreeEntry),
    /// A directory to descend into, opened, with its mode and the mode to put back.
    Directory {
        dir: OwnedFd,
        mode: u32,
        restore_mode: Option<u32>,
    },
    /// Excluded, skipped (a socket, FIFO or device) or gone since the listing.
    Nothing,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(
        workspace: &'a Path,
        objects: &'a Objects,
        excludes: &'a Excludes,
        old: &'a Index,
        scan_start: (i64, u64),
        max_entries: usize,
    ) -> Self {
        Scanner {
            workspace,
            objects,
            excludes,
            old,
            new: Index { workspace: workspace.to_path_buf(), entries: Default::default() },
            scan_start,
            max_entries,
            listed: 0,
            stats: ScanStats::default(),
            buf: Vec::new(),
        }
    }

    /// Scans the whole workspace; returns the root tree, what was done, and the new stat cache.
    pub(crate) fn run(mut self) -> Result<(ObjectHash, ScanStats, Index)> {
        let root = rfs::open(
            self.workspace,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR | Errno::NOENT => {
                CheckpointError::NotADirectory(self.workspace.to_path_buf())
            }
            e => CheckpointError::io("open", self.workspace, e),
        })?;
        let mut stack = vec![Frame {
            dir: root,
            names: Vec::new().into_iter(),
            entries: Vec::new(),
            rel_len: 0,
            name: Vec::new(),
            mode: 0,
            restore_mode: None,
        }];
        let walked = self.walk(&mut stack);
        // After a failure, the directories still open get back the modes the scan changed.
        for frame in stack.iter().rev() {
            if let Some(mode) = frame.restore_mode {
                let _ = rfs::fchmod(&frame.dir, Mode::from_raw_mode(mode));
            }
        }
        Ok((walked?, self.stats, self.new))
    }

    /// The walk: the top of `stack` is the directory being listed; a subdirectory is pushed
    /// when found and popped, into its parent's entries, when all of it has been seen.
    fn walk(&mut self, stack: &mut Vec<Frame>) -> Result<ObjectHash> {
        let mut rel = Vec::new();
        if let Some(root) = stack.last_mut() {
            root.names = self.list(&root.dir, &rel)?.into_iter();
        }
        loop {
            let depth = stack.len();
            let Some(frame) = stack.last_mut() else {
                return Err(CheckpointError::Corrupt("the scan lost its place".into()));
            };
            if let Some(name) = frame.names.next() {
                join(&mut rel, frame.rel_len, name.as_bytes());
                match self.entry(&frame.dir, &name, &rel, depth)? {
                    Found::Entry(entry) => frame.entries.push(entry),
                    Found::Nothing => {}
                    Found::Directory { dir, mode, restore_mode } => {
                        stack.push(Frame {
                            dir,
                            names: Vec::new().into_iter(),
                            entries: Vec::new(),
                            rel_len: rel.len(),
                            name: name.into_bytes(),
                            mode,
                            restore_mode,
                        });
                        // Listed once on the stack, so that a failure puts its mode back.
                        if let Some(sub) = stack.last_mut() {
                            sub.names = self.list(&sub.dir, &rel)?.into_iter();
                        }
                    }
                }
                continue;
            }
            let Some(done) = stack.pop() else { continue };
            rel.truncate(done.rel_len);
            let bytes = tree::encode(&done.entries);
            let hash = ObjectHash::of(&bytes);
            let stored = self.objects.put_bytes(&hash, &bytes)?;
            self.count(stored);
            // A directory the scan had to open up is closed again only now: its search
            // permission was needed for every lookup inside it.
            if let Some(mode) = done.restore_mode {
                rfs::fchmod(&done.dir, Mode::from_raw_mode(mode))
                    .map_err(|e| CheckpointError::io("chmod", self.path(&rel), e))?;
            }
            let Some(parent) = stack.last_mut() else { return Ok(hash) };
            self.stats.directories += 1;
            parent.entries.push(TreeEntry {
                name: done.name,
                kind: EntryKind::Directory,
                mode: done.mode,
                size: 0,
                hash,
            });
        }
    }

    /// The names in `dir` (at `rel`), counted against the entry limit.
    fn list(&mut self, dir: &OwnedFd, rel: &[u8]) -> Result<Vec<CString>> {
        let left = self.max_entries.saturating_sub(self.listed);
        let names = read_names(dir, left)
            .map_err(|e| CheckpointError::io("list", self.path(rel), e))?
            .ok_or(CheckpointError::TooManyEntries { limit: self.max_entries })?;
        self.listed += names.len();
        Ok(names)
    }

    fn path(&self, rel: &[u8]) -> PathBuf {
        self.workspace.join(OsStr::from_bytes(rel))
    }

    fn count(&mut self, stored: Stored) {
        if let Stored::New(bytes) = stored {
            self.stats.new_objects += 1;
            self.stats.new_bytes += bytes;
        }
    }

    /// Looks at `name` in `dir` (at `rel`, `depth` levels below the workspace).
    fn entry(&mut self, dir: &OwnedFd, name: &CStr, rel: &[u8], depth: usize) -> Result<Found> {
        if self.excludes.is_excluded(rel) {
            return Ok(Found::Nothing);
        }
        let stat = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Deleted since the directory was listed: it is not part of this checkpoint.
            Err(Errno::NOENT) => return Ok(Found::Nothing),
            Err(e) => return Err(CheckpointError::io("stat", self.path(rel), e)),
        };
        let mode = stat.st_mode & 0o7777;
        let entry = match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => {
                let Some((hash, size)) = self.file(dir, name, rel, &stat)? else {
                    return Ok(Found::Nothing);
                };
                self.stats.files += 1;
                self.stats.bytes += size;
                // Set-user-ID and set-group-ID bits are not kept: a restore by root would
                // otherwise turn the agent's files into set-user-ID-root programs.
                let mode = mode & !0o6000;
                let name = name.to_bytes().to_vec();
                TreeEntry { name, kind: EntryKind::File, mode, size, hash }
            }
            FileType::Directory => {
                if depth > MAX_DEPTH {
                    return Err(CheckpointError::TooDeep {
                        path: PathBuf::from(OsStr::from_bytes(rel)),
                        limit: MAX_DEPTH,
                    });
                }
                return Ok(match self.open_at(dir, name, rel, DIR_FLAGS, stat.st_mode, 0o500)? {
                    Some((dir, restore_mode)) => Found::Directory { dir, mode, restore_mode },
                    None => Found::Nothing,
                });
            }
            FileType::Symlink => {
                let target = match rfs::readlinkat(dir, name, Vec::new()) {
                    Ok(target) => target.into_bytes(),
                    Err(Errno::NOENT) => return Ok(Found::Nothing),
                    Err(e) => return Err(CheckpointError::io("read link", self.path(rel), e)),
                };
                let hash = ObjectHash::of(&target);
                let stored = self.objects.put_bytes(&hash, &target)?;
                self.count(stored);
                self.stats.symlinks += 1;
                TreeEntry {
                    name: name.to_bytes().to_vec(),
                    kind: EntryKind::Symlink,
                    mode: 0o777,
                    size: target.len() as u64,
                    hash,
                }
            }
            _ => {
                self.stats.special_skipped += 1;
                return Ok(Found::Nothing);
            }
        };
        Ok(Found::Entry(entry))
    }

    /// Opens `name` without following a symlink. A file or directory whose owner took away
    /// its own read permission is opened by granting it for a moment: the agent runs as the
    /// same user and could otherwise make every checkpoint fail. Returns the mode to put
    /// back, if one was changed, or `None` when the entry has vanished.
    fn open_at(
        &self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &[u8],
        flags: OFlags,
        st_mode: u32,
        needed: u32,
    ) -> Result<Option<(OwnedFd, Option<u32>)>> {
        match rfs::openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some((fd, None))),
            Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => Ok(None),
            Err(Errno::ACCESS) => {
                let mode = st_mode & 0o7777;
                match chmod_nofollow(dir, name, mode | needed) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                        return Ok(None);
                    }
                    Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
                        return Ok(None);
                    }
                    Err(_) => {
                        return Err(CheckpointError::io("open", self.path(rel), Errno::ACCESS));
                    }
                }
                let fd = rfs::openat(dir, name, flags, Mode::empty())
                    .map_err(|e| CheckpointError::io("open", self.path(rel), e))?;
                Ok(Some((fd, Some(mode))))
            }
            Err(e) => Err(CheckpointError::io("open", self.path(rel), e)),
        }
    }

    /// The content hash and size of a regular file: from the stat cache when its metadata is
    /// unchanged, otherwise by reading it (and storing the content if it is new).
    fn file(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &[u8],
        stat: &Stat,
    ) -> Result<Option<(ObjectHash, u64)>> {
        let key = StatKey::of(stat);
        if let Some(cached) = self.old.entries.get(rel)
            && cached.key == key
        {
            self.new.entries.insert(rel.to_vec(), *cached);
            return Ok(Some((cached.hash, cached.size)));
        }
        // O_NONBLOCK: if the file was replaced by a FIFO since `statat`, opening it must not
        // wait for a writer. It has no effect on reading a regular file.
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let Some((fd, restore_mode)) = self.open_at(dir, name, rel, flags, stat.st_mode, 0o400)?
        else {
            return Ok(None);
        };
        if let Some(mode) = restore_mode {
            // Permission is checked at open; the open descriptor keeps working.
            rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| CheckpointError::io("chmod", self.path(rel), e))?;
        }
        let mut file = File::from(fd);
        for attempt in 1..=ATTEMPTS {
            let before =
                rfs::fstat(&file).map_err(|e| CheckpointError::io("stat", self.path(rel), e))?;
            if FileType::from_raw_mode(before.st_mode) != FileType::RegularFile {
                return Ok(None);
            }
            let (hash, size) = self.read_content(&mut file, rel, before.st_size)?;
            let after =
                rfs::fstat(&file).map_err(|e| CheckpointError::io("stat", self.path(rel), e))?;
            let key = StatKey::of(&after);
            // A file that changed while it was read is read again; after the last attempt
            // its content is kept as read, and it is left out of the stat cache (its change
            // time is after the scan began) so the next checkpoint reads it once more.
            if key == StatKey::of(&before) || attempt == ATTEMPTS {
                if !key.is_racy(self.scan_start) {
                    self.new.entries.insert(rel.to_vec(), IndexEntry { key, hash, size });
                }
                self.stats.files_read += 1;
                self.stats.bytes_read += size;
                return Ok(Some((hash, size)));
            }
        }
        Ok(None)
    }

    /// Reads the file's content, no more than the `size` it had when the read began: a
    /// process appending to it as fast as it is read cannot keep the scan going.
    fn read_content(
        &mut self,
        file: &mut File,
        rel: &[u8],
        size: i64,
    ) -> Result<(ObjectHash, u64)> {
        let size = u64::try_from(size).unwrap_or(0);
        if size <= SMALL_FILE as u64 {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| CheckpointError::io("read", self.path(rel), e))?;
            self.buf.clear();
            Read::take(&mut *file, size)
                .read_to_end(&mut self.buf)
                .map_err(|e| CheckpointError::io("read", self.path(rel), e))?;
            let hash = ObjectHash::of(&self.buf);
            let stored = self.objects.put_bytes(&hash, &self.buf)?;
            self.count(stored);
            return Ok((hash, self.buf.len() as u64));
        }
        let (temp_path, temp) = self.objects.temp_file()?;
        let streamed = self.stream(file, &temp, &temp_path, rel, size);
        drop(temp);
        let (hash, total) = match streamed {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&temp_path);
                return Err(e);
            }
        };
        let stored = self.objects.put_temp(&temp_path, &hash, total)?;
        self.count(stored);
        Ok((hash, total))
    }

    /// Copies up to `size` bytes of a large file into the temporary object `temp` and hashes
    /// them. Holes (found with `SEEK_DATA`) and runs of zeros are hashed as zeros but not
    /// written, so a sparse file of any apparent size stays sparse in the store.
    fn stream(
        &mut self,
        file: &File,
        temp: &File,
        temp_path: &Path,
        rel: &[u8],
        size: u64,
    ) -> Result<(ObjectHash, u64)> {
        let mut hasher = blake3::Hasher::new();
        self.buf.resize(CHUNK, 0);
        let mut pos = 0u64;
        'extents: while pos < size {
            let data = match rfs::seek(file, rfs::SeekFrom::Data(pos)) {
                Ok(data) => data.min(size),
                // No data after `pos`: the rest is one hole.
                Err(Errno::NXIO) => size,
                // A file system without hole support: everything is data.
                Err(_) => pos,
            };
            while pos < data {
                let n = usize::try_from(data - pos).unwrap_or(CHUNK).min(CHUNK);
                hasher.update(&ZEROS[..n]);
                pos += n as u64;
            }
            let end = match rfs::seek(file, rfs::SeekFrom::Hole(pos)) {
                Ok(hole) if hole > pos => hole.min(size),
                _ => size,
            };
            while pos < end {
                let want = usize::try_from(end - pos).unwrap_or(CHUNK).min(CHUNK);
                let n = match file.read_at(&mut self.buf[..want], pos) {
                    // Shorter than it was: what was read is the content.
                    Ok(0) => break 'extents,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(CheckpointError::io("read", self.path(rel), e)),
                };
                let chunk = &self.buf[..n];
                hasher.update(chunk);
                if chunk.iter().any(|&b| b != 0) {
                    temp.write_all_at(chunk, pos)
                        .map_err(|e| CheckpointError::io("write", temp_path, e))?;
                }
                pos += n as u64;
            }
        }
        temp.set_len(pos).map_err(|e| CheckpointError::io("write", temp_path, e))?;
        Ok((ObjectHash::from(hasher.finalize()), pos))
    }
}
