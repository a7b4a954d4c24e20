//! Content-addressed objects: `objects/ab/cdef…`, one file per distinct content, read-only.
//!
//! An object appears under its final name only complete: it is written to `tmp/` and renamed
//! into place. Objects are made durable in bulk (`syncfs`) before a manifest that names them
//! is written, which is cheaper than one `fsync` per object when a checkpoint adds thousands.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{CheckpointError, Result};
use crate::hash::ObjectHash;

/// Objects never change once written; read-only files make an accidental write fail loudly.
const OBJECT_MODE: u32 = 0o444;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
pub(crate) struct Objects {
    dir: PathBuf,
    tmp: PathBuf,
}

/// What storing one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// The object was already in the store.
    Existing,
    /// The object was written now; this many bytes were added.
    New(u64),
}

impl Objects {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Objects { dir, tmp }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path(&self, hash: &ObjectHash) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join(&hex[..2]).join(&hex[2..])
    }

    /// True when the object exists with the expected length. A wrong length can only be the
    /// remnant of a power loss before the bulk sync; such an object is written again.
    fn present(&self, path: &Path, len: u64) -> bool {
        fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() == len)
    }

    /// A new temporary file in the store's `tmp/` directory, for an object being written.
    pub(crate) fn temp_file(&self) -> Result<(PathBuf, File)> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("object-{}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| CheckpointError::io("create", &path, e))?;
        Ok((path, file))
    }

    /// Stores `bytes` under `hash` (which must be their hash) unless already there.
    pub(crate) fn put_bytes(&self, hash: &ObjectHash, bytes: &[u8]) -> Result<Stored> {
        let path = self.path(hash);
        let len = bytes.len() as u64;
        if self.present(&path, len) {
            return Ok(Stored::Existing);
        }
        let (temp, mut file) = self.temp_file()?;
        file.write_all(bytes).map_err(|e| CheckpointError::io("write", &temp, e))?;
        drop(file);
        self.install(&temp, &path)?;
        Ok(Stored::New(len))
    }

    /// Moves a completely written temporary file into place as the object `hash` of `len`
    /// bytes, or removes it when the store already has that object.
    pub(crate) fn put_temp(&self, temp: &Path, hash: &ObjectHash, len: u64) -> Result<Stored> {
        let path = self.path(hash);
        if self.present(&path, len) {
            fs::remove_file(temp).map_err(|e| CheckpointError::io("remove", temp, e))?;
            return Ok(Stored::Existing);
        }
        self.install(temp, &path)?;
        Ok(Stored::New(len))
    }

    fn install(&self, temp: &Path, path: &Path) -> Result<()> {
        fs::set_permissions(temp, fs::Permissions::from_mode(OBJECT_MODE))
            .map_err(|e| CheckpointError::io("chmod", temp, e))?;
        match fs::rename(temp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // The two-digit fan-out directory is created on first use.
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| CheckpointError::io("create directory", parent, e))?;
                }
                fs::rename(temp, path).map_err(|e| CheckpointError::io("rename", temp, e))
            }
            Err(e) => Err(CheckpointError::io("rename", temp, e)),
        }
    }

    /// The whole content of an object (used for tree objects, which are small).
    pub(crate) fn read(&self, hash: &ObjectHash) -> Result<Vec<u8>> {
        let (mut file, len) = self.open(hash)?;
        let mut content = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut content)
            .map_err(|e| CheckpointError::io("read", self.path(hash), e))?;
        Ok(content)
    }

    /// Opens an object for reading; returns it and its length. Like every open of this
    /// crate, it cannot block or follow a link: whatever sits at an object's name that is not
    /// a regular file is not an object.
    pub(crate) fn open(&self, hash: &ObjectHash) -> Result<(File, u64)> {
        let path = self.path(hash);
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let missing = || CheckpointError::Corrupt(format!("object {hash} is missing"));
        let fd = rfs::open(&path, flags, Mode::empty()).map_err(|e| match e {
            Errno::NOENT => missing(),
            Errno::LOOP => CheckpointError::Corrupt(format!("object {hash} is a symlink")),
            e => CheckpointError::io("open", &path, e),
        })?;
        let stat = rfs::fstat(&fd).map_err(|e| CheckpointError::io("stat", &path, e))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(CheckpointError::Corrupt(format!("object {hash} is not a file")));
        }
        Ok((File::from(fd), u64::try_from(stat.st_size).unwrap_or(0)))
    }

    /// Every object in the store with its path and length, for garbage collection. Files
    /// whose names are not object names are reported with `None`.
    pub(crate) fn list(&self) -> Result<Vec<(Option<ObjectHash>, PathBuf, u64)>> {
        let mut out = Vec::new();
        let fanout =
            fs::read_dir(&self.dir).map_err(|e| CheckpointError::io("list", &self.dir, e))?;
        for prefix in fanout {
            let prefix = prefix.map_err(|e| CheckpointError::io("list", &self.dir, e))?;
            let prefix_path = prefix.path();
            if !prefix.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let prefix_name = prefix.file_name();
            let entries = fs::read_dir(&prefix_path)
                .map_err(|e| CheckpointError::io("list", &prefix_path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| CheckpointError::io("list", &prefix_path, e))?;
                let path = entry.path();
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                let name = format!(
                    "{}{}",
                    prefix_name.to_string_lossy(),
                    entry.file_name().to_string_lossy()
                );
                out.push((name.parse().ok(), path, len));
            }
        }
        Ok(out)
    }
}
