//! Directory-descriptor helpers shared by the scan and the restore: how directories are
//! opened and listed, and how a path relative to the workspace grows and shrinks as a walk
//! moves.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::{self as rfs, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

/// How every directory inside a workspace is opened: never through a symlink, and without
/// waiting (a FIFO swapped in for the directory fails with `ENOTDIR` instead of blocking).
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// The names in a directory, without `.` and `..`, sorted by their bytes; `None` when there
/// are more than `max` of them (the listing stops there, so a huge directory costs no more
/// memory than the limit allows).
pub(crate) fn read_names(dir: &OwnedFd, max: usize) -> std::io::Result<Option<Vec<CString>>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            if names.len() == max {
                return Ok(None);
            }
            names.push(name.to_owned());
        }
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(Some(names))
}

/// Calls `each` with every name in `dir` (not `.` and `..`) and whether it is a directory
/// (`None`: the file system did not say), while reading the listing, so that a directory of
/// any size costs constant memory. `each` may remove entries; it may see an entry added
/// meanwhile, or not. A failure to read the listing becomes an error by `list_error`.
pub(crate) fn for_each_name<E>(
    dir: &OwnedFd,
    list_error: impl Fn(std::io::Error) -> E,
    mut each: impl FnMut(&CStr, Option<bool>) -> Result<(), E>,
) -> Result<(), E> {
    let listing = Dir::read_from(dir).map_err(|e| list_error(e.into()))?;
    for entry in listing {
        let entry = entry.map_err(|e| list_error(e.into()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Unknown => None,
            kind => Some(kind == FileType::Directory),
        };
        each(name, is_dir)?;
    }
    Ok(())
}

/// Sets the mode of `name` in `dir` without following it if it is a symlink (`chmodat`
/// would follow one swapped in since the caller looked). The entry is pinned with an
/// `O_PATH` descriptor, which opens nothing and needs no permission, and changed through
/// `/proc/self/fd`, which names that very inode.
pub(crate) fn chmod_nofollow(dir: &OwnedFd, name: &CStr, mode: u32) -> std::io::Result<()> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let pinned = rfs::openat(dir, name, flags, Mode::empty())?;
    if FileType::from_raw_mode(rfs::fstat(&pinned)?.st_mode) == FileType::Symlink {
        return Err(Errno::LOOP.into());
    }
    let path = format!("/proc/self/fd/{}", pinned.as_raw_fd());
    rfs::chmod(path.as_str(), Mode::from_raw_mode(mode))?;
    Ok(())
}

/// Makes `rel` the path of `name` inside the directory whose path is `rel[..len]`.
pub(crate) fn join(rel: &mut Vec<u8>, len: usize, name: &[u8]) {
    rel.truncate(len);
    if len > 0 {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
}

/// A name as a C string; tree decoding already refuses names with NUL bytes.
pub(crate) fn c_name(name: &[u8]) -> crate::Result<CString> {
    CString::new(name)
        .map_err(|_| crate::CheckpointError::Corrupt("entry name with a NUL byte".into()))
}
