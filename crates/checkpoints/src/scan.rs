//! Reading a workspace into objects: one pass over the tree that stores new file contents,
//! symlink targets and directory listings, and returns the root tree's hash.
//!
//! Every step goes through a directory file descriptor with `O_NOFOLLOW` (`openat`,
//! `statat`, `readlinkat`), so a symlink, or a directory swapped for one while the scan
//! runs, is recorded as a link and never followed out of the workspace.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::{CheckpointError, Result};
use crate::exclude::Excludes;
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
    stats: ScanStats,
    buf: Vec<u8>,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(
        workspace: &'a Path,
        objects: &'a Objects,
        excludes: &'a Excludes,
        old: &'a Index,
        scan_start: (i64, u64),
    ) -> Self {
        Scanner {
            workspace,
            objects,
            excludes,
            old,
            new: Index { workspace: workspace.to_path_buf(), entries: Default::default() },
            scan_start,
            stats: ScanStats::default(),
            buf: Vec::new(),
        }
    }

    /// Scans the whole workspace; returns the root tree, what was done, and the new stat cache.
    pub(crate) fn run(mut self) -> Result<(ObjectHash, ScanStats, Index)> {
        let root = rfs::open(
            self.workspace,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR | Errno::NOENT => {
                CheckpointError::NotADirectory(self.workspace.to_path_buf())
            }
            e => CheckpointError::io("open", self.workspace, e),
        })?;
        let mut rel = Vec::new();
        let hash = self.directory(&root, &mut rel)?;
        Ok((hash, self.stats, self.new))
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

    fn directory(&mut self, dir: &OwnedFd, rel: &mut Vec<u8>) -> Result<ObjectHash> {
        let names = read_names(dir).map_err(|e| CheckpointError::io("list", self.path(rel), e))?;
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let entry = self.entry(dir, &name, rel);
            rel.truncate(len);
            if let Some(entry) = entry? {
                entries.push(entry);
            }
        }
        let bytes = tree::encode(&entries);
        let hash = ObjectHash::of(&bytes);
        let stored = self.objects.put_bytes(&hash, &bytes)?;
        self.count(stored);
        Ok(hash)
    }

    fn entry(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        rel: &mut Vec<u8>,
    ) -> Result<Option<TreeEntry>> {
        if self.excludes.is_excluded(rel) {
            return Ok(None);
        }
        let stat = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Deleted since the directory was listed: it is not part of this checkpoint.
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(CheckpointError::io("stat", self.path(rel), e)),
        };
        let mode = stat.st_mode & 0o7777;
        let name_bytes = name.to_bytes().to_vec();
        let entry = match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => {
                let Some((hash, size)) = self.file(dir, name, rel, &stat)? else { return Ok(None) };
                self.stats.files += 1;
                self.stats.bytes += size;
                // Set-user-ID and set-group-ID bits are not kept: a restore by root would
                // otherwise turn the agent's files into set-user-ID-root programs.
                let mode = mode & !0o6000;
                TreeEntry { name: name_bytes, kind: EntryKind::File, mode, size, hash }
            }
            FileType::Directory => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let (sub, restore_mode) =
                    match self.open_at(dir, name, rel, flags, stat.st_mode, 0o500)? {
                        Some(opened) => opened,
                        None => return Ok(None),
                    };
                let hash = self.directory(&sub, rel);
                // A directory we had to open up is closed again only now: its search
                // permission was needed for every lookup inside it.
                if let Some(mode) = restore_mode {
                    rfs::fchmod(&sub, Mode::from_raw_mode(mode))
                        .map_err(|e| CheckpointError::io("chmod", self.path(rel), e))?;
                }
                self.stats.directories += 1;
                TreeEntry {
                    name: name_bytes,
                    kind: EntryKind::Directory,
                    mode,
                    size: 0,
                    hash: hash?,
                }
            }
            FileType::Symlink => {
                let target = match rfs::readlinkat(dir, name, Vec::new()) {
                    Ok(target) => target.into_bytes(),
                    Err(Errno::NOENT) => return Ok(None),
                    Err(e) => return Err(CheckpointError::io("read link", self.path(rel), e)),
                };
                let hash = ObjectHash::of(&target);
                let stored = self.objects.put_bytes(&hash, &target)?;
                self.count(stored);
                self.stats.symlinks += 1;
                TreeEntry {
                    name: name_bytes,
                    kind: EntryKind::Symlink,
                    mode: 0o777,
                    size: target.len() as u64,
                    hash,
                }
            }
            _ => {
                self.stats.special_skipped += 1;
                return Ok(None);
            }
        };
        Ok(Some(entry))
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
                rfs::chmodat(dir, name, Mode::from_raw_mode(mode | needed), AtFlags::empty())
                    .map_err(|_| CheckpointError::io("open", self.path(rel), Errno::ACCESS))?;
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

    fn read_content(
        &mut self,
        file: &mut File,
        rel: &[u8],
        size_hint: i64,
    ) -> Result<(ObjectHash, u64)> {
        file.seek(SeekFrom::Start(0))
            .map_err(|e| CheckpointError::io("read", self.path(rel), e))?;
        if size_hint <= SMALL_FILE {
            self.buf.clear();
            file.read_to_end(&mut self.buf)
                .map_err(|e| CheckpointError::io("read", self.path(rel), e))?;
            let hash = ObjectHash::of(&self.buf);
            let stored = self.objects.put_bytes(&hash, &self.buf)?;
            self.count(stored);
            return Ok((hash, self.buf.len() as u64));
        }
        let (temp_path, mut temp) = self.objects.temp_file()?;
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        self.buf.resize(CHUNK, 0);
        loop {
            let n = match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = std::fs::remove_file(&temp_path);
                    return Err(CheckpointError::io("read", self.path(rel), e));
                }
            };
            hasher.update(&self.buf[..n]);
            if let Err(e) = temp.write_all(&self.buf[..n]) {
                let _ = std::fs::remove_file(&temp_path);
                return Err(CheckpointError::io("write", &temp_path, e));
            }
            total += n as u64;
        }
        drop(temp);
        let hash = ObjectHash::from(hasher.finalize());
        let stored = self.objects.put_temp(&temp_path, &hash, total)?;
        self.count(stored);
        Ok((hash, total))
    }
}

/// The names in a directory, without `.` and `..`, sorted by their bytes.
pub(crate) fn read_names(dir: &OwnedFd) -> std::io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}
