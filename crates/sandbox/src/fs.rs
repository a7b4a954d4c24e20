//! File operations confined to a sandbox's home directory, done from the host.
//!
//! Every path is resolved by the kernel relative to the home directory with `openat2`'s
//! `RESOLVE_BENEATH`: `..` that climbs out, absolute symlinks and symlinks leading outside
//! fail with `EXDEV` instead of reaching the host, with no window between a check and a use
//! (a symlink the agent swaps in at the wrong moment is still refused). The last component
//! is never followed when it is removed, renamed or inspected, so a planted symlink is
//! handled as a link. New files and directories are given to the sandbox's user.
//!
//! The agent controls everything in the workspace, so nothing here may block, recurse or
//! grow without bound on what it finds there:
//! - every open is `O_NONBLOCK | O_NOCTTY` (and `O_NOFOLLOW` where a link must not be
//!   followed), and whatever is not a regular file, a directory or a link (a FIFO, a socket,
//!   a device) is refused with [`SandboxError::NotARegularFile`] before any byte is read or
//!   written;
//! - walks ([`Workspace::walk`], [`Workspace::survey`], the disk quota's size check) are
//!   iterative, go at most [`MAX_DEPTH`] directory levels below their start and meet at most
//!   [`MAX_ENTRIES`] entries, and hold two directory descriptors at a time whatever the
//!   depth (they climb back through `..`, checked against the directory they left);
//! - removal works at any depth with a handful of descriptors: it empties a directory by
//!   moving the subdirectories of its children up into it instead of descending;
//! - a listing returns at most [`LIST_LIMIT`] entries and stats only those;
//! - every errno is turned into an error in one place, [`map_errno`], so that what the client
//!   caused (a name too long, a move into itself, a full disk) is never reported as the
//!   server's own failure ([`SandboxError::Io`]).

use std::collections::BinaryHeap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::{Result, SandboxError};

/// How many directory levels below its start a walk descends. A directory nested deeper
/// makes the walk fail with [`SandboxError::TooDeep`]; removal has no such limit.
pub const MAX_DEPTH: usize = 1024;

/// How many entries one walk (or one workspace size check) meets before it fails with
/// [`SandboxError::TooManyEntries`]; also how many entries of one directory a listing reads.
pub const MAX_ENTRIES: u64 = 1_000_000;

/// How many entries a listing returns: the first ones in its order (directories first, then
/// by name). [`Listing::total`] says how many there are.
pub const LIST_LIMIT: usize = 10_000;

/// The longest name of one directory entry, and of a path the kernel resolves (Linux's
/// `NAME_MAX` and `PATH_MAX` less its NUL).
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4095;

/// What a directory entry is. Symlinks are reported as links, never followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One file's metadata; `path` is relative to the home directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    /// Seconds since the Unix epoch.
    pub modified: i64,
    /// Where a symlink points (as written in the link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// A directory's entries, at most [`LIST_LIMIT`] of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// Directories first, then by name (as bytes).
    pub entries: Vec<FileInfo>,
    /// How many entries the directory has (counted up to [`MAX_ENTRIES`]); more than
    /// `entries.len()` when the listing was cut.
    pub total: u64,
}

/// What [`Workspace::survey`] found below a directory, without opening any file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Survey {
    pub entries: u64,
    /// The length in bytes of the longest path met, relative to the surveyed directory.
    pub longest_path: usize,
}

/// A home directory on the host and the user its new files belong to.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    /// The path the sandbox itself sees the directory at (`/home/user`); absolute paths
    /// under it are accepted.
    inside: String,
    owner: Option<(u32, u32)>,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// Flags of every open of something in a workspace: never wait (a FIFO), never take a
/// controlling terminal (a tty), never leak into a child process.
const SAFE: OFlags = OFlags::CLOEXEC.union(OFlags::NONBLOCK).union(OFlags::NOCTTY);

/// A directory opened for reading its entries, the last component not followed.
const DIR_NOFOLLOW: OFlags =
    OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(SAFE);

/// What an errno is turned into depends a little on the operation that met it.
#[derive(Clone, Copy)]
enum Op<'a> {
    /// Anything but a rename.
    Access,
    /// A rename to this path.
    Rename { to: &'a Path },
}

impl Workspace {
    pub fn new(
        root: impl Into<PathBuf>,
        inside: impl Into<String>,
        owner: Option<(u32, u32)>,
    ) -> Self {
        Self { root: root.into(), inside: inside.into(), owner }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The user (and group) new files are given to, if not the server's.
    pub fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }

    /// A path as the API receives it, made relative to the home directory: `""`, `.` and
    /// the home itself are the home; `a/b` and `/home/user/a/b` are `a/b`. Any `..`, NUL
    /// byte, or absolute path elsewhere is refused outright (the kernel would refuse it
    /// too; refusing early gives a clearer error), and so is a name longer than 255 bytes
    /// or a path longer than 4095.
    pub fn relative(&self, path: &str) -> Result<PathBuf> {
        if path.contains('\0') {
            return Err(SandboxError::InvalidPath("the path contains a NUL byte".into()));
        }
        let trimmed = if let Some(rest) = path.strip_prefix(&self.inside) {
            if !(rest.is_empty() || rest.starts_with('/')) {
                return Err(SandboxError::PathOutside(shown(Path::new(path))));
            }
            rest.trim_start_matches('/')
        } else if path.starts_with('/') {
            return Err(SandboxError::PathOutside(shown(Path::new(path))));
        } else {
            path
        };
        let mut relative = PathBuf::new();
        for component in Path::new(trimmed).components() {
            match component {
                Component::Normal(part) if part.len() > NAME_MAX => {
                    return Err(SandboxError::NameTooLong(shown(Path::new(path))));
                }
                Component::Normal(part) => relative.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(SandboxError::PathOutside(shown(Path::new(path))));
                }
            }
        }
        if relative.as_os_str().len() > PATH_MAX {
            return Err(SandboxError::NameTooLong(shown(Path::new(path))));
        }
        Ok(relative)
    }

    fn root_fd(&self) -> Result<OwnedFd> {
        Ok(rustix::fs::open(
            &self.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Open `relative` (which may be empty: the home itself) beneath the home. Links inside
    /// the home are followed unless `flags` has `O_NOFOLLOW`.
    fn open(&self, relative: &Path, flags: OFlags) -> Result<OwnedFd> {
        let root = self.root_fd()?;
        let target: &Path = if relative.as_os_str().is_empty() { Path::new(".") } else { relative };
        // `openat2` refuses flags that mean nothing to an `O_PATH` descriptor.
        let flags =
            if flags.contains(OFlags::PATH) { flags | OFlags::CLOEXEC } else { flags | SAFE };
        rustix::fs::openat2(&root, target, flags, Mode::empty(), RESOLVE)
            .map_err(|err| map_errno(err, Op::Access, relative))
    }

    /// The directory holding `relative`'s last component, and that component.
    fn parent_of<'a>(&self, relative: &'a Path) -> Result<(OwnedFd, &'a OsStr)> {
        let name = relative.file_name().ok_or_else(|| {
            SandboxError::InvalidPath("the home directory itself cannot be changed".into())
        })?;
        let parent = relative.parent().unwrap_or(Path::new(""));
        let dir = self.open(parent, OFlags::PATH | OFlags::DIRECTORY)?;
        Ok((dir, name))
    }

    fn give_to_owner(&self, fd: impl AsFd) -> Result<()> {
        if let Some((uid, gid)) = self.owner {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )?;
        }
        Ok(())
    }

    /// The contents of a regular file, if it is at most `max` bytes.
    pub fn read(&self, path: &str, max: u64) -> Result<Vec<u8>> {
        let relative = self.relative(path)?;
        let fd = self.open(&relative, OFlags::RDONLY)?;
        let size = regular_size(&fd, &relative)?;
        if size > max {
            return Err(SandboxError::TooLarge { size, max });
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        std::fs::File::from(fd)
            .take(max + 1)
            .read_to_end(&mut data)
            .map_err(|err| map_io(err, &relative))?;
        if data.len() as u64 > max {
            return Err(SandboxError::TooLarge { size: data.len() as u64, max });
        }
        Ok(data)
    }

    /// Replace (or create) a file with `data`, atomically: readers see the old or the new
    /// contents, never a mix. Missing parent directories are created. The new contents go
    /// to a temporary file of an unpredictable name first, created with `O_EXCL` (another
    /// name is tried if one exists), so nothing the agent planted is followed or reused.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<FileInfo> {
        let relative = self.relative(path)?;
        if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.mkdir_all(parent)?;
        }
        let (dir, name) = self.parent_of(&relative)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => {}
                FileType::Directory => return Err(SandboxError::IsADirectory(shown(&relative))),
                // Through a link only to a file that is inside too, written in place.
                FileType::Symlink => return self.write_through_link(path, &relative, data),
                _ => return Err(SandboxError::NotARegularFile(shown(&relative))),
            },
            Err(Errno::NOENT) => {}
            Err(err) => return Err(map_errno(err, Op::Access, &relative)),
        }
        let (temp, fd) = create_temporary(&dir, ".agentbox-upload-")
            .map_err(|err| map_errno(err, Op::Access, &relative))?;
        let written = (|| -> Result<()> {
            self.give_to_owner(&fd)?;
            let mut file = std::fs::File::from(fd);
            file.write_all(data).map_err(|err| map_io(err, &relative))?;
            file.sync_all().map_err(|err| map_io(err, &relative))?;
            rustix::fs::renameat(&dir, temp.as_str(), &dir, name)
                .map_err(|err| map_errno(err, Op::Access, &relative))?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
        }
        written?;
        self.stat(path)
    }

    fn write_through_link(&self, path: &str, relative: &Path, data: &[u8]) -> Result<FileInfo> {
        // Without O_TRUNC: the file is truncated only once it is known to be a regular one.
        let fd = self.open(relative, OFlags::WRONLY)?;
        regular_size(&fd, relative)?;
        rustix::fs::ftruncate(&fd, 0).map_err(|err| map_errno(err, Op::Access, relative))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(data).map_err(|err| map_io(err, relative))?;
        file.sync_all().map_err(|err| map_io(err, relative))?;
        self.stat(path)
    }

    /// A file's metadata; a symlink is described, not followed.
    pub fn stat(&self, path: &str) -> Result<FileInfo> {
        let relative = self.relative(path)?;
        if relative.as_os_str().is_empty() {
            let fd = self.open(&relative, OFlags::PATH | OFlags::DIRECTORY)?;
            let stat = rustix::fs::fstat(&fd)?;
            return Ok(info("", Path::new(""), &stat, None));
        }
        let (dir, name) = self.parent_of(&relative)?;
        let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|err| map_errno(err, Op::Access, &relative))?;
        let target = link_target(&dir, name, &stat);
        Ok(info(&name.to_string_lossy(), &relative, &stat, target))
    }

    /// The entries of a directory, sorted: directories first, then by name. Only the first
    /// [`LIST_LIMIT`] are returned, and only they are stat'ed: the order comes from the
    /// entries' types as the directory itself records them (`d_type`).
    pub fn list(&self, path: &str) -> Result<Listing> {
        let relative = self.relative(path)?;
        let fd = self.open(&relative, OFlags::RDONLY | OFlags::DIRECTORY)?;
        // The first LIST_LIMIT keys in order; the largest on top, to be dropped first.
        let mut first: BinaryHeap<(bool, Vec<u8>)> = BinaryHeap::new();
        let mut total = 0u64;
        for entry in
            rustix::fs::Dir::read_from(&fd).map_err(|err| map_errno(err, Op::Access, &relative))?
        {
            let entry = entry.map_err(|err| map_errno(err, Op::Access, &relative))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if total == MAX_ENTRIES {
                break;
            }
            total += 1;
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                FileType::Unknown => {
                    rustix::fs::statat(&fd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
                }
                _ => false,
            };
            let key = (!is_dir, name.to_vec());
            if first.len() < LIST_LIMIT {
                first.push(key);
            } else if first.peek().is_some_and(|largest| key < *largest) {
                first.pop();
                first.push(key);
            }
        }
        let mut entries = Vec::with_capacity(first.len());
        for (_, name) in first.into_sorted_vec() {
            let name = OsStr::from_bytes(&name);
            // An entry removed since it was read is left out.
            let Ok(stat) = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let target = link_target(&fd, name, &stat);
            entries.push(info(&name.to_string_lossy(), &relative.join(name), &stat, target));
        }
        Ok(Listing { entries, total })
    }

    /// Create a directory and any missing parents.
    pub fn mkdir(&self, path: &str) -> Result<FileInfo> {
        let relative = self.relative(path)?;
        self.mkdir_all(&relative)?;
        self.stat(path)
    }

    fn mkdir_all(&self, relative: &Path) -> Result<()> {
        let mut done = PathBuf::new();
        for part in relative.components() {
            let name = part.as_os_str();
            let dir = self.open(&done, OFlags::PATH | OFlags::DIRECTORY)?;
            done.push(name);
            match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let created =
                        rustix::fs::openat2(&dir, name, DIR_NOFOLLOW, Mode::empty(), RESOLVE)
                            .map_err(|err| map_errno(err, Op::Access, &done))?;
                    self.give_to_owner(&created)?;
                }
                Err(Errno::EXIST) => {
                    // It exists: fine if it is a directory, or a link to one that stays inside.
                    rustix::fs::openat2(
                        &dir,
                        name,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                        RESOLVE,
                    )
                    .map_err(|err| map_errno(err, Op::Access, &done))?;
                }
                Err(err) => return Err(map_errno(err, Op::Access, &done)),
            }
        }
        Ok(())
    }

    /// Remove a file, a link (not what it points to) or a directory with its contents, at
    /// any depth.
    pub fn remove(&self, path: &str) -> Result<()> {
        let relative = self.relative(path)?;
        let (dir, name) = self.parent_of(&relative)?;
        remove_entry(&dir, name).map_err(|err| map_errno(err, Op::Access, &relative))
    }

    /// Move or rename; an existing file at `to` is replaced, a directory is not.
    pub fn rename(&self, from: &str, to: &str) -> Result<FileInfo> {
        let from_relative = self.relative(from)?;
        let to_relative = self.relative(to)?;
        let (from_dir, from_name) = self.parent_of(&from_relative)?;
        let (to_dir, to_name) = self.parent_of(&to_relative)?;
        rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)
            .map_err(|err| map_errno(err, Op::Rename { to: &to_relative }, &from_relative))?;
        self.stat(to)
    }
}

/// One entry met by [`Workspace::walk`]. A regular file comes with an open handle, so what
/// is read is what was listed.
pub struct WalkEntry {
    /// Relative to the walked directory.
    pub path: PathBuf,
    pub kind: FileKind,
    pub mode: u32,
    /// For a file, its size when it was opened; read at most this much of `file`.
    pub size: u64,
    pub link_target: Option<String>,
    pub file: Option<std::fs::File>,
}

impl Workspace {
    /// Visit everything below `path` once, a directory before its contents, each
    /// directory's entries by name, through directory descriptors opened with `O_NOFOLLOW`:
    /// a directory the agent swaps for a symlink while the walk runs cannot lead it outside.
    /// FIFOs, sockets and devices are skipped (a file swapped for one after it was listed
    /// too: what is handed out is checked to be a regular file). Fails with
    /// [`SandboxError::TooDeep`] or [`SandboxError::TooManyEntries`] past the limits.
    pub fn walk(&self, path: &str, mut visit: impl FnMut(WalkEntry) -> Result<()>) -> Result<()> {
        let relative = self.relative(path)?;
        let start = self.open(&relative, OFlags::RDONLY | OFlags::DIRECTORY)?;
        walk_tree(start, &relative, true, MAX_DEPTH, |dir, name, _, path| {
            let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                return Ok(false);
            };
            let mode = stat.st_mode & 0o7777;
            let entry = match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => WalkEntry {
                    path: path.to_owned(),
                    kind: FileKind::Dir,
                    mode,
                    size: 0,
                    link_target: None,
                    file: None,
                },
                FileType::RegularFile => {
                    let Ok(fd) = rustix::fs::openat(
                        dir,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | SAFE,
                        Mode::empty(),
                    ) else {
                        return Ok(false);
                    };
                    let Ok(size) = regular_size(&fd, path) else { return Ok(false) };
                    WalkEntry {
                        path: path.to_owned(),
                        kind: FileKind::File,
                        mode,
                        size,
                        link_target: None,
                        file: Some(std::fs::File::from(fd)),
                    }
                }
                FileType::Symlink => WalkEntry {
                    path: path.to_owned(),
                    kind: FileKind::Symlink,
                    mode,
                    size: 0,
                    link_target: link_target(dir, name, &stat),
                    file: None,
                },
                _ => return Ok(false),
            };
            let descend = entry.kind == FileKind::Dir;
            visit(entry)?;
            Ok(descend)
        })
    }

    /// Count what is below `path` without opening or stat'ing anything but directories
    /// (types come from `d_type`): a cheap check that a [`Workspace::walk`] of it stays
    /// within the limits, made before anything is sent.
    pub fn survey(&self, path: &str) -> Result<Survey> {
        let relative = self.relative(path)?;
        let start = self.open(&relative, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut survey = Survey { entries: 0, longest_path: 0 };
        walk_tree(start, &relative, false, MAX_DEPTH, |dir, name, file_type, path| {
            survey.entries += 1;
            survey.longest_path = survey.longest_path.max(path.as_os_str().len());
            Ok(match file_type {
                FileType::Directory => true,
                FileType::Unknown => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory),
                _ => false,
            })
        })?;
        Ok(survey)
    }
}

/// One directory on a walk's way down: what is left of its entries (last first) and its
/// identity, to check that `..` leads back to it.
struct Level {
    id: (u64, u64),
    names: Vec<(Vec<u8>, FileType)>,
}

/// Walk the tree below the directory `start` depth first, iteratively. `visit` gets the
/// directory an entry is in, the entry's name, its type as the directory records it
/// (`d_type`, possibly `Unknown`), and its path relative to `start`; it answers whether to
/// descend into it. Descending opens the entry `O_NOFOLLOW | O_DIRECTORY` (an entry that is
/// no directory by then is passed over). Only the current directory's descriptor is kept
/// open: the walk climbs back up through `..` and checks that it arrives where it came
/// from. `shown_start` (relative to the workspace) is for error messages. Directories more
/// than `max_depth` levels below `start` are refused ([`SandboxError::TooDeep`]); whatever
/// `max_depth` is, the walk's memory stays bounded by [`MAX_ENTRIES`] (each level is an entry)
/// and it holds one descriptor.
pub(crate) fn walk_tree(
    start: OwnedFd,
    shown_start: &Path,
    sorted: bool,
    max_depth: usize,
    mut visit: impl FnMut(&OwnedFd, &OsStr, FileType, &Path) -> Result<bool>,
) -> Result<()> {
    let mut entries = 0u64;
    let mut path = PathBuf::new();
    let mut current = start;
    let first = Level {
        id: identity(&current, shown_start)?,
        names: read_level(&current, sorted, &mut entries, shown_start)?,
    };
    let mut levels = vec![first];
    while let Some(level) = levels.last_mut() {
        let Some((name, file_type)) = level.names.pop() else {
            levels.pop();
            let Some(parent) = levels.last() else { break };
            path.pop();
            let up = rustix::fs::openat(&current, "..", DIR_NOFOLLOW, Mode::empty())
                .map_err(|err| map_errno(err, Op::Access, &shown_start.join(&path)))?;
            if identity(&up, shown_start)? != parent.id {
                return Err(SandboxError::Changed(shown(&shown_start.join(&path))));
            }
            current = up;
            continue;
        };
        let name = OsStr::from_bytes(&name);
        path.push(name);
        if !visit(&current, name, file_type, &path)? {
            path.pop();
            continue;
        }
        if levels.len() > max_depth {
            return Err(SandboxError::TooDeep {
                path: shown(&shown_start.join(&path)),
                limit: max_depth,
            });
        }
        let child = match rustix::fs::openat(&current, name, DIR_NOFOLLOW, Mode::empty()) {
            Ok(child) => child,
            // Removed, or swapped for something else, since it was listed.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {
                path.pop();
                continue;
            }
            Err(err) => return Err(map_errno(err, Op::Access, &shown_start.join(&path))),
        };
        let shown_path = shown_start.join(&path);
        let level = Level {
            id: identity(&child, &shown_path)?,
            names: read_level(&child, sorted, &mut entries, &shown_path)?,
        };
        levels.push(level);
        current = child;
    }
    Ok(())
}

fn identity(fd: &OwnedFd, shown_path: &Path) -> Result<(u64, u64)> {
    let stat = rustix::fs::fstat(fd).map_err(|err| map_errno(err, Op::Access, shown_path))?;
    Ok((stat.st_dev, stat.st_ino))
}

/// A directory's entry names and types, in reverse order when `sorted` (a walk pops them),
/// counted against [`MAX_ENTRIES`].
fn read_level(
    dir: &OwnedFd,
    sorted: bool,
    entries: &mut u64,
    shown_path: &Path,
) -> Result<Vec<(Vec<u8>, FileType)>> {
    let mut names = Vec::new();
    let reader =
        rustix::fs::Dir::read_from(dir).map_err(|err| map_errno(err, Op::Access, shown_path))?;
    for entry in reader {
        let entry = entry.map_err(|err| map_errno(err, Op::Access, shown_path))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return Err(SandboxError::TooManyEntries {
                path: shown(shown_path),
                limit: MAX_ENTRIES,
            });
        }
        names.push((name.to_vec(), entry.file_type()));
    }
    if sorted {
        names.sort_by(|a, b| b.0.cmp(&a.0));
    }
    Ok(names)
}

/// Remove the tree at `path`, a host path the server owns (a sandbox's directory), the way
/// [`Workspace::remove`] removes one: at any depth, with a handful of descriptors, never
/// following a link. `std::fs::remove_dir_all` recurses and overflows a thread's stack on a
/// chain some ten thousand levels deep, which an agent can build in its workspace. Removing
/// what does not exist is not an error.
pub fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(SandboxError::InvalidPath(format!("{} cannot be removed", path.display())));
    };
    let dir = match rustix::fs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(dir) => dir,
        Err(Errno::NOENT) => return Ok(()),
        Err(err) => return Err(map_errno(err, Op::Access, parent)),
    };
    match remove_entry(&dir, name) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(err) => Err(map_errno(err, Op::Access, path)),
    }
}

/// How many names a removal reads from a directory at a time.
const REMOVE_BATCH: usize = 4096;

/// Remove `name` from `dir`, whatever it is and however deep it goes. A directory is
/// emptied without descending: the subdirectories of its children are moved up into it
/// (under fresh names) until every child is empty or gone, so at most four descriptors are
/// open at any depth and every directory is moved at most once.
fn remove_entry(dir: &OwnedFd, name: &OsStr) -> std::result::Result<(), Errno> {
    // Each round starts over when the entry turned out to be something else than it was
    // (the agent may swap it while it is removed).
    loop {
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
                Err(Errno::ISDIR) => continue,
                other => return other,
            }
        }
        let target = match rustix::fs::openat(dir, name, DIR_NOFOLLOW, Mode::empty()) {
            Ok(target) => target,
            Err(Errno::NOTDIR | Errno::LOOP) => continue,
            Err(err) => return Err(err),
        };
        loop {
            let batch = read_batch(&target)?;
            if batch.is_empty() {
                break;
            }
            for (child, file_type) in batch {
                clear_child(&target, OsStr::from_bytes(&child), file_type)?;
            }
        }
        match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            // Something was added while it was emptied, or it was swapped: again.
            Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR) => continue,
            other => return other,
        }
    }
}

/// Remove `name` from `dir` if it is not a directory or an empty one; else remove what is
/// in it and move its non-empty subdirectories up into `dir`, then remove it.
fn clear_child(dir: &OwnedFd, name: &OsStr, file_type: FileType) -> std::result::Result<(), Errno> {
    match remove_shallow(dir, name, file_type)? {
        Shallow::Gone => return Ok(()),
        Shallow::NotEmpty => {}
    }
    let child = match rustix::fs::openat(dir, name, DIR_NOFOLLOW, Mode::empty()) {
        Ok(child) => child,
        // Swapped for a non-directory or removed: the next batch sees what it is now.
        Err(Errno::NOTDIR | Errno::LOOP | Errno::NOENT) => return Ok(()),
        Err(err) => return Err(err),
    };
    loop {
        let batch = read_batch(&child)?;
        if batch.is_empty() {
            break;
        }
        for (grandchild, file_type) in batch {
            let grandchild = OsStr::from_bytes(&grandchild);
            if let Shallow::NotEmpty = remove_shallow(&child, grandchild, file_type)? {
                move_up(&child, grandchild, dir)?;
            }
        }
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        // Refilled meanwhile: the next batch of `dir` meets it again.
        Ok(()) | Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOENT) => Ok(()),
        Err(err) => Err(err),
    }
}

enum Shallow {
    Gone,
    NotEmpty,
}

/// Unlink a non-directory or remove an empty directory; a non-empty directory is left.
fn remove_shallow(
    dir: &OwnedFd,
    name: &OsStr,
    file_type: FileType,
) -> std::result::Result<Shallow, Errno> {
    let mut as_dir = file_type == FileType::Directory;
    // A few rounds at most: the type recorded in the directory may be stale or unknown.
    for _ in 0..3 {
        let flags = if as_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        match rustix::fs::unlinkat(dir, name, flags) {
            Ok(()) | Err(Errno::NOENT) => return Ok(Shallow::Gone),
            Err(Errno::ISDIR) if !as_dir => as_dir = true,
            Err(Errno::NOTDIR) if as_dir => as_dir = false,
            Err(Errno::NOTEMPTY | Errno::EXIST) if as_dir => return Ok(Shallow::NotEmpty),
            Err(err) => return Err(err),
        }
    }
    Ok(Shallow::NotEmpty)
}

/// Move `name` from `from` into `to` under a fresh name that replaces nothing.
fn move_up(from: &OwnedFd, name: &OsStr, to: &OwnedFd) -> std::result::Result<(), Errno> {
    loop {
        let fresh = format!(".agentbox-removing-{:016x}", rand::random::<u64>());
        match rustix::fs::renameat_with(from, name, to, fresh.as_str(), RenameFlags::NOREPLACE) {
            Err(Errno::EXIST) => continue,
            // Gone already.
            Err(Errno::NOENT) => return Ok(()),
            other => return other,
        }
    }
}

/// Up to [`REMOVE_BATCH`] entry names of `dir`, read from its start.
fn read_batch(dir: &OwnedFd) -> std::result::Result<Vec<(Vec<u8>, FileType)>, Errno> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push((name.to_vec(), entry.file_type()));
        if names.len() == REMOVE_BATCH {
            break;
        }
    }
    Ok(names)
}

/// Create a file named `prefix` and 16 random hex digits in `dir` with `O_EXCL`, trying
/// other names while one exists.
fn create_temporary(dir: &OwnedFd, prefix: &str) -> std::result::Result<(String, OwnedFd), Errno> {
    let mut attempts = 0;
    loop {
        let name = format!("{prefix}{:016x}", rand::random::<u64>());
        match rustix::fs::openat(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | SAFE,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) if attempts < 16 => attempts += 1,
            Err(err) => return Err(err),
        }
    }
}

/// The size of the regular file open at `fd`; anything else is refused.
fn regular_size(fd: &OwnedFd, relative: &Path) -> Result<u64> {
    let stat = rustix::fs::fstat(fd).map_err(|err| map_errno(err, Op::Access, relative))?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok(u64::try_from(stat.st_size).unwrap_or(0)),
        FileType::Directory => Err(SandboxError::IsADirectory(shown(relative))),
        _ => Err(SandboxError::NotARegularFile(shown(relative))),
    }
}

fn link_target(dir: &OwnedFd, name: &OsStr, stat: &rustix::fs::Stat) -> Option<String> {
    (FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
        .then(|| rustix::fs::readlinkat(dir, name, Vec::new()).ok())
        .flatten()
        .map(|target| target.to_string_lossy().into_owned())
}

fn info(
    name: &str,
    relative: &Path,
    stat: &rustix::fs::Stat,
    link_target: Option<String>,
) -> FileInfo {
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    };
    FileInfo {
        name: name.to_owned(),
        path: relative.to_string_lossy().into_owned(),
        kind,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        mode: stat.st_mode & 0o7777,
        modified: stat.st_mtime,
        link_target,
    }
}

/// A path for a message: as it is, or its first 200 characters when longer (a hostile
/// workspace's paths can be hundreds of kilobytes); the empty path is the home itself.
fn shown(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        return "the home directory".to_owned();
    }
    let text = path.to_string_lossy();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.into_owned(),
    }
}

/// An I/O error of a file operation on `relative`, by its errno like any other.
fn map_io(err: io::Error, relative: &Path) -> SandboxError {
    match err.raw_os_error() {
        Some(code) => map_errno(Errno::from_raw_os_error(code), Op::Access, relative),
        None => SandboxError::Io(err),
    }
}

/// The one place where an errno of a file operation on `relative` becomes an error: what
/// the client or the agent caused becomes the fitting variant, and only what is left (the
/// server's own faults: out of descriptors or memory, an I/O error of the disk) is
/// [`SandboxError::Io`].
fn map_errno(err: Errno, op: Op<'_>, relative: &Path) -> SandboxError {
    let path = shown(relative);
    let target = || match op {
        Op::Rename { to } => shown(to),
        Op::Access => shown(relative),
    };
    match err {
        Errno::XDEV => SandboxError::PathOutside(path),
        Errno::LOOP => {
            SandboxError::InvalidPath(format!("{path}: too many levels of symbolic links"))
        }
        Errno::NOENT => SandboxError::NotFound(path),
        Errno::NOTDIR => SandboxError::NotADirectory(target()),
        Errno::ISDIR => SandboxError::IsADirectory(target()),
        Errno::EXIST | Errno::NOTEMPTY => SandboxError::AlreadyExists(target()),
        Errno::NAMETOOLONG => SandboxError::NameTooLong(path),
        // open(2) of a socket, or of a FIFO for writing that no one reads.
        Errno::NXIO => SandboxError::NotARegularFile(path),
        Errno::INVAL if matches!(op, Op::Rename { .. }) => {
            SandboxError::InvalidMove { from: path, to: target() }
        }
        Errno::NOSPC | Errno::DQUOT | Errno::FBIG => SandboxError::DiskFull(path),
        Errno::ACCESS | Errno::PERM | Errno::ROFS => SandboxError::PermissionDenied(path),
        Errno::TXTBSY | Errno::BUSY => SandboxError::Busy(path),
        Errno::MLINK => SandboxError::TooManyLinks(target()),
        other => SandboxError::Io(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, symlink};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Run `work` on a thread of its own and fail, instead of hanging, if it has not
    /// answered within a generous time: the operations under test must return at once.
    fn answers<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(work());
        });
        receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what} did not return: it blocks"))
    }

    /// `depth` nested directories named `name` under `dir` (made through descriptors: the
    /// chain is longer than any path), with a file at the bottom.
    fn chain(dir: &Path, name: &str, depth: usize) {
        let mut current =
            rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        for _ in 0..depth {
            rustix::fs::mkdirat(&current, name, Mode::from_raw_mode(0o755)).unwrap();
            current = rustix::fs::openat(&current, name, DIR_NOFOLLOW, Mode::empty()).unwrap();
        }
        let file = rustix::fs::openat(
            &current,
            "bottom",
            OFlags::WRONLY | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        rustix::io::write(&file, b"deep").unwrap();
    }

    /// How many of this process's descriptors point below `dir`.
    fn open_below(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(dir)))
            .count()
    }

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("secret"), "host secret").unwrap();
        let ws = Workspace::new(dir.path().join("home"), "/home/user", None);
        (dir, ws)
    }

    #[test]
    fn paths_are_made_relative_or_refused() {
        let (_dir, ws) = workspace();
        assert_eq!(ws.relative("").unwrap(), PathBuf::new());
        assert_eq!(ws.relative("/home/user").unwrap(), PathBuf::new());
        assert_eq!(ws.relative("/home/user/a/./b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(ws.relative("a//b/").unwrap(), PathBuf::from("a/b"));
        for bad in [
            "../secret",
            "a/../../secret",
            "/etc/passwd",
            "/home/username/x",
            "a\0b",
            "/home/user/../x",
        ] {
            assert!(ws.relative(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn write_read_list_stat_rename_remove() {
        let (_dir, ws) = workspace();
        ws.write("src/main.rs", b"fn main() {}").unwrap();
        assert_eq!(ws.read("/home/user/src/main.rs", 1024).unwrap(), b"fn main() {}");
        assert!(matches!(
            ws.read("src/main.rs", 3),
            Err(SandboxError::TooLarge { size: 12, max: 3 })
        ));
        ws.write("src/main.rs", b"changed").unwrap();
        assert_eq!(ws.read("src/main.rs", 1024).unwrap(), b"changed");
        ws.mkdir("empty/nested").unwrap();
        let names: Vec<String> = ws.list("").unwrap().entries.into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["empty", "src"]);
        let info = ws.stat("src/main.rs").unwrap();
        assert_eq!((info.kind, info.size, info.path.as_str()), (FileKind::File, 7, "src/main.rs"));
        ws.rename("src/main.rs", "src/lib.rs").unwrap();
        assert!(matches!(ws.stat("src/main.rs"), Err(SandboxError::NotFound(_))));
        ws.remove("src").unwrap();
        assert!(matches!(ws.list("src"), Err(SandboxError::NotFound(_))));
        assert!(matches!(ws.remove("nothing"), Err(SandboxError::NotFound(_))));
        assert!(matches!(ws.read("empty", 10), Err(SandboxError::IsADirectory(_))));
    }

    #[test]
    fn symlinks_planted_inside_cannot_reach_outside() {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        symlink(dir.path().join("secret"), home.join("abs")).unwrap();
        symlink("../secret", home.join("rel")).unwrap();
        symlink(dir.path(), home.join("outdir")).unwrap();
        symlink("/etc", home.join("etc")).unwrap();
        for path in ["abs", "rel", "outdir/secret", "etc/passwd"] {
            let err = ws.read(path, 1024).unwrap_err();
            assert!(matches!(err, SandboxError::PathOutside(_)), "{path}: {err:?}");
        }
        assert!(matches!(ws.write("outdir/planted", b"x"), Err(SandboxError::PathOutside(_))));
        assert!(matches!(ws.write("abs", b"x"), Err(SandboxError::PathOutside(_))));
        assert!(matches!(ws.write("rel", b"x"), Err(SandboxError::PathOutside(_))));
        assert!(matches!(ws.list("outdir"), Err(SandboxError::PathOutside(_))));
        assert!(!dir.path().join("planted").exists());
        // The links themselves can be inspected and removed, never followed.
        let link = ws.stat("abs").unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
        assert_eq!(link.link_target.as_deref(), Some(dir.path().join("secret").to_str().unwrap()));
        ws.remove("outdir").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("secret")).unwrap(), "host secret");
        // A walk lists links as links and never enters them.
        let mut seen = Vec::new();
        ws.walk("", |entry| {
            seen.push((entry.path.display().to_string(), entry.kind));
            Ok(())
        })
        .unwrap();
        assert!(seen.contains(&("etc".to_owned(), FileKind::Symlink)), "{seen:?}");
        assert!(
            !seen.iter().any(|(p, _)| p.starts_with("etc/") || p.contains("secret")),
            "{seen:?}"
        );
        // A link that stays inside works.
        ws.write("real.txt", b"inside").unwrap();
        symlink("real.txt", home.join("ok")).unwrap();
        assert_eq!(ws.read("ok", 100).unwrap(), b"inside");
        ws.write("ok", b"through the link").unwrap();
        assert_eq!(ws.read("real.txt", 100).unwrap(), b"through the link");
        assert_eq!(ws.stat("ok").unwrap().kind, FileKind::Symlink);
    }

    #[test]
    fn a_chain_ten_thousand_levels_deep_is_removed_with_few_descriptors() {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        std::fs::create_dir(home.join("d")).unwrap();
        chain(&home.join("d"), "a", 10_000);
        // Siblings at several levels, files and empty directories among them.
        std::fs::create_dir_all(home.join("d/a/a/wide/x/y")).unwrap();
        std::fs::write(home.join("d/a/a/wide/x/y/f"), "f").unwrap();
        std::fs::write(home.join("d/a/file"), "f").unwrap();
        std::fs::write(home.join("keep"), "kept").unwrap();
        // A small stack, like a blocking thread's: recursion would overflow it.
        let removed = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn({
                let ws = ws.clone();
                move || ws.remove("d")
            })
            .unwrap()
            .join()
            .expect("the removal overflowed its stack");
        removed.unwrap();
        assert!(!home.join("d").exists());
        assert_eq!(std::fs::read_to_string(home.join("keep")).unwrap(), "kept");
        assert_eq!(std::fs::read_to_string(dir.path().join("secret")).unwrap(), "host secret");
    }

    #[test]
    fn a_sandbox_directory_with_a_deep_chain_is_removed_on_a_small_stack() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir_all(sandbox.join("home")).unwrap();
        chain(&sandbox.join("home"), "a", 10_000);
        symlink(dir.path().join("kept"), sandbox.join("link")).unwrap();
        std::fs::write(dir.path().join("kept"), "kept").unwrap();
        let removed = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn({
                let sandbox = sandbox.clone();
                move || remove_tree(&sandbox)
            })
            .unwrap()
            .join()
            .expect("the removal overflowed its stack");
        removed.unwrap();
        assert!(!sandbox.exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("kept")).unwrap(), "kept");
        remove_tree(&sandbox).unwrap();
        remove_tree(&dir.path().join("missing/parent")).unwrap();
    }

    #[test]
    fn walks_stop_past_the_depth_limit_and_hold_few_descriptors() {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        std::fs::create_dir(home.join("ok")).unwrap();
        std::fs::create_dir(home.join("deep")).unwrap();
        chain(&home.join("ok"), "a", MAX_DEPTH);
        chain(&home.join("deep"), "a", MAX_DEPTH + 1);

        // The chain in `ok` is MAX_DEPTH levels deep: walked to the end, its file included.
        let mut deepest = 0;
        let mut open_at_bottom = usize::MAX;
        let mut files = 0;
        ws.walk("ok", |entry| {
            deepest = deepest.max(entry.path.components().count());
            if let Some(mut file) = entry.file {
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                assert_eq!(text, "deep");
                files += 1;
                // The current directory, the file, and what the walk has just opened.
                open_at_bottom = open_below(dir.path());
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(files, 1);
        assert!(open_at_bottom <= 4, "{open_at_bottom} descriptors open at the bottom");
        assert_eq!(ws.survey("ok").unwrap().entries, MAX_DEPTH as u64 + 1);

        // One level more is refused, by the walk and by the survey, naming the place.
        for result in [ws.walk("deep", |_| Ok(())).map(|_| ()), ws.survey("").map(|_| ())] {
            match result {
                Err(SandboxError::TooDeep { path, limit }) => {
                    assert_eq!(limit, MAX_DEPTH);
                    assert!(path.starts_with("deep/a/a/"), "{path}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(deepest, MAX_DEPTH + 1);
    }

    #[test]
    fn fifos_and_sockets_are_refused_at_once() {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        nix::unistd::mkfifo(&home.join("ff"), nix::sys::stat::Mode::from_bits_truncate(0o644))
            .unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(home.join("sock")).unwrap();
        symlink("ff", home.join("to-ff")).unwrap();
        symlink("sock", home.join("to-sock")).unwrap();
        for path in ["ff", "to-ff", "sock", "to-sock"] {
            let ws = ws.clone();
            let read = answers("read", move || ws.read(path, 1024));
            assert!(matches!(read, Err(SandboxError::NotARegularFile(_))), "{path}: {read:?}");
        }
        for path in ["ff", "to-ff", "sock", "to-sock"] {
            let ws = ws.clone();
            let written = answers("write", move || ws.write(path, b"x"));
            assert!(
                matches!(written, Err(SandboxError::NotARegularFile(_))),
                "{path}: {written:?}"
            );
        }
        // With a reader waiting on the FIFO, a write through the link still writes nothing.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(home.join("ff"))
            .unwrap();
        let written = answers("write", {
            let ws = ws.clone();
            move || ws.write("to-ff", b"x")
        });
        assert!(matches!(written, Err(SandboxError::NotARegularFile(_))), "{written:?}");
        let mut buffer = [0u8; 4];
        assert!(matches!((&reader).read(&mut buffer), Ok(0) | Err(_)));
        // Inspecting them only looks.
        let listing = answers("list", {
            let ws = ws.clone();
            move || ws.list("").unwrap()
        });
        let kinds: Vec<(String, FileKind)> =
            listing.entries.into_iter().map(|e| (e.name, e.kind)).collect();
        assert!(kinds.contains(&("ff".into(), FileKind::Other)), "{kinds:?}");
        assert!(kinds.contains(&("sock".into(), FileKind::Other)), "{kinds:?}");
        assert_eq!(answers("stat", move || ws.stat("ff").unwrap()).kind, FileKind::Other);
    }

    #[test]
    fn a_walk_skips_fifos_and_sockets() {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        ws.write("a/file", b"x").unwrap();
        nix::unistd::mkfifo(&home.join("a/ff"), nix::sys::stat::Mode::from_bits_truncate(0o644))
            .unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(home.join("a/sock")).unwrap();
        let seen = answers("walk", move || {
            let mut seen = Vec::new();
            ws.walk("", |entry| {
                seen.push(entry.path.display().to_string());
                Ok(())
            })
            .unwrap();
            seen
        });
        assert_eq!(seen, ["a", "a/file"]);
    }

    #[test]
    fn long_names_and_paths_are_the_clients_fault() {
        let (dir, ws) = workspace();
        let long = "n".repeat(300);
        assert!(matches!(ws.stat(&long), Err(SandboxError::NameTooLong(_))));
        assert!(matches!(ws.write(&long, b"x"), Err(SandboxError::NameTooLong(_))));
        assert!(matches!(ws.mkdir(&long), Err(SandboxError::NameTooLong(_))));
        let path = vec!["p".repeat(100); 60].join("/");
        for result in [ws.stat(&path).map(|_| ()), ws.write(&path, b"x").map(|_| ())] {
            assert!(matches!(result, Err(SandboxError::NameTooLong(_))), "{result:?}");
        }
        // The kernel's own ENAMETOOLONG is mapped the same way.
        assert!(matches!(
            map_errno(Errno::NAMETOOLONG, Op::Access, Path::new("x")),
            SandboxError::NameTooLong(_)
        ));
        assert_eq!(std::fs::read_dir(dir.path().join("home")).unwrap().count(), 0);
    }

    #[test]
    fn moving_a_directory_into_itself_is_an_invalid_move() {
        let (_dir, ws) = workspace();
        ws.mkdir("d/sub").unwrap();
        let err = ws.rename("d", "d/sub/inner").unwrap_err();
        assert!(matches!(err, SandboxError::InvalidMove { .. }), "{err:?}");
        let err = ws.rename("d", "d/new").unwrap_err();
        assert!(matches!(err, SandboxError::InvalidMove { .. }), "{err:?}");
        assert_eq!(ws.stat("d/sub").unwrap().kind, FileKind::Dir);
    }

    #[test]
    fn a_planted_upload_name_is_neither_followed_nor_reused() {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        // The names uploads used to go through, planted by the agent.
        let pid = std::process::id();
        symlink(dir.path().join("secret"), home.join(format!(".x.agentbox-upload-{pid}"))).unwrap();
        nix::unistd::mkfifo(
            &home.join(format!(".y.agentbox-upload-{pid}")),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        for name in ["x", "y"] {
            let ws = ws.clone();
            answers("write", move || ws.write(name, b"uploaded")).unwrap();
            assert_eq!(std::fs::read(home.join(name)).unwrap(), b"uploaded");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join("secret")).unwrap(), "host secret");
        let mut names: Vec<String> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                format!(".x.agentbox-upload-{pid}"),
                format!(".y.agentbox-upload-{pid}"),
                "x".into(),
                "y".into()
            ]
        );
        // An existing temporary name makes the upload pick another one.
        let root =
            rustix::fs::open(&home, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let (first, _) = create_temporary(&root, ".t-").unwrap();
        let (second, _) = create_temporary(&root, ".t-").unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn a_listing_returns_the_first_entries_and_counts_them_all() {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        let root =
            rustix::fs::open(&home, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        for i in 0..LIST_LIMIT + 10 {
            rustix::fs::openat(
                &root,
                format!("f{i:06}").as_str(),
                OFlags::WRONLY | OFlags::CREATE,
                Mode::from_raw_mode(0o644),
            )
            .unwrap();
        }
        for name in ["zdir", "adir"] {
            std::fs::create_dir(home.join(name)).unwrap();
        }
        let listing = ws.list("").unwrap();
        assert_eq!(listing.total, LIST_LIMIT as u64 + 12);
        assert_eq!(listing.entries.len(), LIST_LIMIT);
        let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(&names[..3], ["adir", "zdir", "f000000"]);
        assert_eq!(names.last(), Some(&format!("f{:06}", LIST_LIMIT - 3).as_str()));
        let small = ws.list("adir").unwrap();
        assert_eq!((small.entries.len(), small.total), (0, 0));
    }

    /// Path strings as a client might send them: the components the hostile workspace of
    /// [`property_world`] has, and arbitrary text.
    fn path_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let component = prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just(String::new()),
            Just("secret".to_owned()),
            Just("abs".to_owned()),
            Just("rel".to_owned()),
            Just("outdir".to_owned()),
            Just("etc".to_owned()),
            Just("ff".to_owned()),
            Just("to-ff".to_owned()),
            Just("loop".to_owned()),
            Just("n".repeat(300)),
            Just("home".to_owned()),
            Just("user".to_owned()),
            "[a-z.\\-\u{e9}\u{0}/ ]{0,6}",
        ];
        prop_oneof![
            proptest::collection::vec(component, 0..5).prop_map(|parts| parts.join("/")),
            proptest::collection::vec(
                prop_oneof![Just("/home/user".to_owned()), Just("/".to_owned())],
                1..2
            )
            .prop_flat_map(|prefix| {
                proptest::collection::vec("[a-z.]{0,3}", 0..3)
                    .prop_map(move |parts| format!("{}/{}", prefix[0], parts.join("/")))
            }),
            any::<String>(),
        ]
    }

    /// A workspace with everything the agent could plant (links out, a FIFO, a loop) and a
    /// secret beside it and in a directory outside it.
    fn property_world() -> (tempfile::TempDir, Workspace) {
        let (dir, ws) = workspace();
        let home = dir.path().join("home");
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), "outside secret").unwrap();
        symlink(dir.path().join("secret"), home.join("abs")).unwrap();
        symlink("../secret", home.join("rel")).unwrap();
        symlink(dir.path().join("outside"), home.join("outdir")).unwrap();
        symlink("/etc", home.join("etc")).unwrap();
        symlink("loop", home.join("loop")).unwrap();
        nix::unistd::mkfifo(&home.join("ff"), nix::sys::stat::Mode::from_bits_truncate(0o644))
            .unwrap();
        symlink("ff", home.join("to-ff")).unwrap();
        std::fs::create_dir_all(home.join("a/b")).unwrap();
        std::fs::write(home.join("a/b/file"), "inside").unwrap();
        (dir, ws)
    }

    /// Everything outside the home, as it must stay.
    fn outside_state(dir: &Path) -> Vec<(String, String)> {
        let mut state = Vec::new();
        for path in ["secret", "outside/secret"] {
            state.push((path.to_owned(), std::fs::read_to_string(dir.join(path)).unwrap()));
        }
        for top in [dir.to_owned(), dir.join("outside")] {
            let mut names: Vec<String> = std::fs::read_dir(&top)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            state.push((top.display().to_string(), names.join(",")));
        }
        state
    }

    #[derive(Clone, Debug)]
    enum FileOp {
        Stat(String),
        Read(String),
        Write(String),
        Mkdir(String),
        List(String),
        Remove(String),
        Rename(String, String),
        Walk(String),
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 200,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn no_path_escapes_panics_or_is_blamed_on_the_server(
            op in {
                use proptest::prelude::*;
                prop_oneof![
                    path_strategy().prop_map(FileOp::Stat),
                    path_strategy().prop_map(FileOp::Read),
                    path_strategy().prop_map(FileOp::Write),
                    path_strategy().prop_map(FileOp::Mkdir),
                    path_strategy().prop_map(FileOp::List),
                    path_strategy().prop_map(FileOp::Remove),
                    (path_strategy(), path_strategy()).prop_map(|(a, b)| FileOp::Rename(a, b)),
                    path_strategy().prop_map(FileOp::Walk),
                ]
            }
        ) {
            let (dir, ws) = property_world();
            let before = outside_state(dir.path());
            let relative = ws.relative(match &op {
                FileOp::Stat(p) | FileOp::Read(p) | FileOp::Write(p) | FileOp::Mkdir(p)
                | FileOp::List(p) | FileOp::Remove(p) | FileOp::Rename(p, _) | FileOp::Walk(p) => p,
            });
            if let Ok(relative) = relative {
                proptest::prop_assert!(relative.is_relative());
                proptest::prop_assert!(!relative.components().any(|c| c == Component::ParentDir));
            }
            let result = answers("a file operation", {
                let op = op.clone();
                move || match op {
                    FileOp::Stat(p) => ws.stat(&p).map(|_| ()),
                    FileOp::Read(p) => ws.read(&p, 1 << 20).map(|_| ()),
                    FileOp::Write(p) => ws.write(&p, b"written").map(|_| ()),
                    FileOp::Mkdir(p) => ws.mkdir(&p).map(|_| ()),
                    FileOp::List(p) => ws.list(&p).map(|_| ()),
                    FileOp::Remove(p) => ws.remove(&p),
                    FileOp::Rename(a, b) => ws.rename(&a, &b).map(|_| ()),
                    FileOp::Walk(p) => ws.walk(&p, |_| Ok(())),
                }
            });
            if let Err(err) = &result {
                proptest::prop_assert!(!matches!(err, SandboxError::Io(_)), "{:?}: {:?}", op, err);
            }
            proptest::prop_assert_eq!(outside_state(dir.path()), before, "{:?}", op);
        }
    }
}
