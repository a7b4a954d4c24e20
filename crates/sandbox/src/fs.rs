//! File operations confined to a sandbox's home directory, done from the host.
//!
//! Every path is resolved by the kernel relative to the home directory with `openat2`'s
//! `RESOLVE_BENEATH`: `..` that climbs out, absolute symlinks and symlinks leading outside
//! fail with `EXDEV` instead of reaching the host, with no window between a check and a use
//! (a symlink the agent swaps in at the wrong moment is still refused). The last component
//! is never followed when it is removed, renamed or inspected, so a planted symlink is
//! handled as a link. New files and directories are given to the sandbox's user.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

use crate::{Result, SandboxError};

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
    /// too; refusing early gives a clearer error).
    pub fn relative(&self, path: &str) -> Result<PathBuf> {
        if path.contains('\0') {
            return Err(SandboxError::InvalidPath("the path contains a NUL byte".into()));
        }
        let trimmed = if let Some(rest) = path.strip_prefix(&self.inside) {
            if !(rest.is_empty() || rest.starts_with('/')) {
                return Err(SandboxError::PathOutside(path.to_owned()));
            }
            rest.trim_start_matches('/')
        } else if path.starts_with('/') {
            return Err(SandboxError::PathOutside(path.to_owned()));
        } else {
            path
        };
        let mut relative = PathBuf::new();
        for component in Path::new(trimmed).components() {
            match component {
                Component::Normal(part) => relative.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(SandboxError::PathOutside(path.to_owned()));
                }
            }
        }
        Ok(relative)
    }

    fn root_fd(&self) -> Result<OwnedFd> {
        Ok(rustix::fs::open(
            &self.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Open `relative` (which may be empty: the home itself) beneath the home.
    fn open(&self, relative: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd> {
        let root = self.root_fd()?;
        let target: &Path = if relative.as_os_str().is_empty() { Path::new(".") } else { relative };
        rustix::fs::openat2(&root, target, flags | OFlags::CLOEXEC, mode, RESOLVE)
            .map_err(|err| map_errno(err, relative))
    }

    /// The directory holding `relative`'s last component, and that component.
    fn parent_of<'a>(&self, relative: &'a Path) -> Result<(OwnedFd, &'a OsStr)> {
        let name = relative.file_name().ok_or_else(|| {
            SandboxError::InvalidPath("the home directory itself cannot be changed".into())
        })?;
        let parent = relative.parent().unwrap_or(Path::new(""));
        let dir = self.open(parent, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
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
        let fd = self.open(&relative, OFlags::RDONLY | OFlags::NOCTTY, Mode::empty())?;
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            return Err(SandboxError::IsADirectory(path.to_owned()));
        }
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(SandboxError::InvalidPath(format!("{path} is not a regular file")));
        }
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        if size > max {
            return Err(SandboxError::TooLarge { size, max });
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        std::fs::File::from(fd).take(max + 1).read_to_end(&mut data)?;
        if data.len() as u64 > max {
            return Err(SandboxError::TooLarge { size: data.len() as u64, max });
        }
        Ok(data)
    }

    /// Replace (or create) a file with `data`, atomically: readers see the old or the new
    /// contents, never a mix. Missing parent directories are created.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<FileInfo> {
        let relative = self.relative(path)?;
        if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.mkdir_all(parent)?;
        }
        let (dir, name) = self.parent_of(&relative)?;
        let dir = rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if let Ok(stat) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => return Err(SandboxError::IsADirectory(path.to_owned())),
                // Through a link only to a file that is inside too, written in place.
                FileType::Symlink => {
                    let fd = self.open(
                        &relative,
                        OFlags::WRONLY | OFlags::TRUNC | OFlags::NOCTTY,
                        Mode::empty(),
                    )?;
                    let mut file = std::fs::File::from(fd);
                    file.write_all(data)?;
                    file.sync_all()?;
                    return self.stat(path);
                }
                _ => {}
            }
        }
        let temp = format!(".{}.agentbox-upload-{}", name.to_string_lossy(), std::process::id());
        let fd = rustix::fs::openat(
            &dir,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let written = (|| -> Result<()> {
            self.give_to_owner(&fd)?;
            let mut file = std::fs::File::from(fd);
            file.write_all(data)?;
            file.sync_all()?;
            rustix::fs::renameat(&dir, temp.as_str(), &dir, name)?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
        }
        written?;
        self.stat(path)
    }

    /// A file's metadata; a symlink is described, not followed.
    pub fn stat(&self, path: &str) -> Result<FileInfo> {
        let relative = self.relative(path)?;
        if relative.as_os_str().is_empty() {
            let fd = self.open(&relative, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
            let stat = rustix::fs::fstat(&fd)?;
            return Ok(info("", Path::new(""), &stat, None));
        }
        let (dir, name) = self.parent_of(&relative)?;
        let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|err| map_errno(err, &relative))?;
        let target = link_target(&dir, name, &stat);
        Ok(info(&name.to_string_lossy(), &relative, &stat, target))
    }

    /// The entries of a directory, sorted: directories first, then by name.
    pub fn list(&self, path: &str) -> Result<Vec<FileInfo>> {
        let relative = self.relative(path)?;
        let fd = self.open(&relative, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).map_err(
            |err| match err {
                SandboxError::Io(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    SandboxError::NotADirectory(path.to_owned())
                }
                other => other,
            },
        )?;
        let mut entries = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let Ok(stat) = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let target = link_target(&fd, name, &stat);
            entries.push(info(&name.to_string_lossy(), &relative.join(name), &stat, target));
        }
        entries.sort_by(|a, b| {
            (a.kind != FileKind::Dir, &a.name).cmp(&(b.kind != FileKind::Dir, &b.name))
        });
        Ok(entries)
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
            let (dir, name) = {
                let parent = self.open(&done, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
                (parent, part.as_os_str())
            };
            match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let created = rustix::fs::openat2(
                        &dir,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                        Mode::empty(),
                        RESOLVE,
                    )?;
                    self.give_to_owner(&created)?;
                }
                Err(rustix::io::Errno::EXIST) => {
                    // It exists: fine if it is a directory, or a link to one that stays inside.
                    rustix::fs::openat2(
                        &dir,
                        name,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                        RESOLVE,
                    )
                    .map_err(|err| map_errno(err, &done.join(name)))?;
                }
                Err(err) => return Err(map_errno(err, &done.join(name))),
            }
            done.push(name);
        }
        Ok(())
    }

    /// Remove a file, a link (not what it points to) or a directory with its contents.
    pub fn remove(&self, path: &str) -> Result<()> {
        let relative = self.relative(path)?;
        let (dir, name) = self.parent_of(&relative)?;
        let dir = rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        remove_at(&dir, name).map_err(|err| match err {
            SandboxError::Io(e) if e.kind() == io::ErrorKind::NotFound => {
                SandboxError::NotFound(path.to_owned())
            }
            other => other,
        })
    }

    /// Move or rename; an existing file at `to` is replaced, a directory is not.
    pub fn rename(&self, from: &str, to: &str) -> Result<FileInfo> {
        let from_relative = self.relative(from)?;
        let to_relative = self.relative(to)?;
        let (from_dir, from_name) = self.parent_of(&from_relative)?;
        let (to_dir, to_name) = self.parent_of(&to_relative)?;
        rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)
            .map_err(|err| map_errno(err, &from_relative))?;
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
    pub size: u64,
    pub link_target: Option<String>,
    pub file: Option<std::fs::File>,
}

impl Workspace {
    /// Visit everything below `path` once, a directory before its contents, through directory
    /// descriptors opened with `O_NOFOLLOW`: a directory the agent swaps for a symlink while
    /// the walk runs cannot lead it outside.
    pub fn walk(&self, path: &str, mut visit: impl FnMut(WalkEntry) -> Result<()>) -> Result<()> {
        let relative = self.relative(path)?;
        let start = self.open(&relative, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let mut stack: Vec<(OwnedFd, PathBuf)> = vec![(start, PathBuf::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let mut names: Vec<Vec<u8>> = rustix::fs::Dir::read_from(&dir)?
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_bytes().to_vec())
                .filter(|n| n != b"." && n != b"..")
                .collect();
            names.sort();
            for name in names.iter().rev() {
                let name = OsStr::from_bytes(name);
                let Ok(stat) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                    continue;
                };
                let mut entry = info(
                    &name.to_string_lossy(),
                    &prefix.join(name),
                    &stat,
                    link_target(&dir, name, &stat),
                );
                match entry.kind {
                    FileKind::Dir => {
                        let Ok(child) = rustix::fs::openat(
                            &dir,
                            name,
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        ) else {
                            continue;
                        };
                        stack.push((child, prefix.join(name)));
                        visit(WalkEntry {
                            path: prefix.join(name),
                            kind: entry.kind,
                            mode: entry.mode,
                            size: 0,
                            link_target: None,
                            file: None,
                        })?;
                    }
                    FileKind::File => {
                        let Ok(fd) = rustix::fs::openat(
                            &dir,
                            name,
                            OFlags::RDONLY
                                | OFlags::NOFOLLOW
                                | OFlags::NOCTTY
                                | OFlags::NONBLOCK
                                | OFlags::CLOEXEC,
                            Mode::empty(),
                        ) else {
                            continue;
                        };
                        visit(WalkEntry {
                            path: prefix.join(name),
                            kind: entry.kind,
                            mode: entry.mode,
                            size: entry.size,
                            link_target: None,
                            file: Some(std::fs::File::from(fd)),
                        })?;
                    }
                    FileKind::Symlink => {
                        visit(WalkEntry {
                            path: prefix.join(name),
                            kind: entry.kind,
                            mode: entry.mode,
                            size: 0,
                            link_target: entry.link_target.take(),
                            file: None,
                        })?;
                    }
                    FileKind::Other => {}
                }
            }
        }
        Ok(())
    }
}

fn remove_at(dir: &OwnedFd, name: &OsStr) -> Result<()> {
    let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io::Error::from)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
        return Ok(());
    }
    let child = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let names: Vec<Vec<u8>> = rustix::fs::Dir::read_from(&child)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect();
    for entry in names {
        remove_at(&child, OsStr::from_bytes(&entry))?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
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

fn map_errno(err: rustix::io::Errno, relative: &Path) -> SandboxError {
    let path = relative.display().to_string();
    match err {
        rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => SandboxError::PathOutside(path),
        rustix::io::Errno::NOENT => SandboxError::NotFound(path),
        rustix::io::Errno::NOTDIR => SandboxError::NotADirectory(path),
        rustix::io::Errno::ISDIR => SandboxError::IsADirectory(path),
        rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY => SandboxError::AlreadyExists(path),
        other => SandboxError::Io(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
        let names: Vec<String> = ws.list("").unwrap().into_iter().map(|i| i.name).collect();
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
}
