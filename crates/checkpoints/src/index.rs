//! The stat cache: for each file of the last scan, its inode, size, times and content hash, so
//! the next checkpoint reads only files whose metadata changed (the idea of git's index).
//!
//! A file is trusted only if its change time is safely before the scan that recorded it:
//! file times are taken from a coarse clock, so a file written in the same tick as the scan
//! (or on a file system with one- or two-second times) could change again without its times
//! changing. Such "racy" files are left out and read again next time. The cache is only an
//! optimisation: a missing, stale or damaged index costs time, never correctness.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::Stat;

use crate::hash::ObjectHash;

const MAGIC: &[u8; 8] = b"abindex1";

/// The metadata that must be unchanged for a cached hash to be reused. `ctime` changes on
/// every write, chmod, rename or link and cannot be set by a process, so a file whose
/// `ctime` and inode are the same has not been touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatKey {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, u64),
    ctime: (i64, u64),
}

impl StatKey {
    // The field types of `struct stat` differ between architectures (`c_long` is 32 bits on
    // some); `from` widens where needed and is the identity on x86-64.
    #[allow(clippy::useless_conversion)]
    pub(crate) fn of(stat: &Stat) -> Self {
        StatKey {
            dev: u64::from(stat.st_dev),
            ino: u64::from(stat.st_ino),
            size: i64::from(stat.st_size),
            mtime: (i64::from(stat.st_mtime), u64::from(stat.st_mtime_nsec)),
            ctime: (i64::from(stat.st_ctime), u64::from(stat.st_ctime_nsec)),
        }
    }

    /// True when the file changed too close to `scan_start` (seconds, nanoseconds) for its
    /// times to prove it has not changed again since.
    pub(crate) fn is_racy(&self, scan_start: (i64, u64)) -> bool {
        let margin_start = (scan_start.0 - RACY_MARGIN_SECS, scan_start.1);
        self.ctime >= margin_start || self.mtime >= margin_start
    }
}

/// A file's modification time as (seconds, nanoseconds).
#[allow(clippy::useless_conversion)] // See `StatKey::of`.
pub(crate) fn mtime(stat: &Stat) -> (i64, u64) {
    (i64::from(stat.st_mtime), u64::from(stat.st_mtime_nsec))
}

/// Two seconds covers file systems that keep times in whole (or even) seconds.
const RACY_MARGIN_SECS: i64 = 2;

#[derive(Clone, Copy, Debug)]
pub(crate) struct IndexEntry {
    pub key: StatKey,
    pub hash: ObjectHash,
    pub size: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub workspace: PathBuf,
    pub entries: HashMap<Vec<u8>, IndexEntry>,
}

impl Index {
    /// Reads the index for `workspace`; an index of another workspace, or one that is missing
    /// or damaged, gives an empty index.
    pub(crate) fn load(path: &Path, workspace: &Path) -> Index {
        match Index::load_any(path) {
            index if index.workspace == workspace => index,
            _ => Index { workspace: workspace.to_path_buf(), entries: HashMap::new() },
        }
    }

    /// Reads the index whatever workspace it belongs to (empty if missing or damaged).
    pub(crate) fn load_any(path: &Path) -> Index {
        fs::read(path).ok().and_then(|bytes| decode(&bytes)).unwrap_or_default()
    }

    /// Writes the index by temp file and rename. It is not synced: a torn index fails its
    /// checksum after a power loss and is then ignored.
    pub(crate) fn save(&self, path: &Path, temp: &Path) -> std::io::Result<()> {
        let mut file = fs::File::create(temp)?;
        file.write_all(&encode(self))?;
        drop(file);
        fs::rename(temp, path)
    }

    pub(crate) fn hashes(&self) -> impl Iterator<Item = &ObjectHash> {
        self.entries.values().map(|entry| &entry.hash)
    }
}

fn encode(index: &Index) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::with_capacity(64 + index.entries.len() * 120);
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, index.workspace.as_os_str().as_bytes());
    out.extend_from_slice(&(index.entries.len() as u64).to_le_bytes());
    for (path, entry) in &index.entries {
        put_bytes(&mut out, path);
        let key = &entry.key;
        for n in [key.dev, key.ino, key.size as u64, key.mtime.0 as u64, key.mtime.1] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for n in [key.ctime.0 as u64, key.ctime.1, entry.size] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&entry.hash.0);
    }
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(buf))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u64()?).ok()?;
        self.take(len)
    }
}

fn decode(bytes: &[u8]) -> Option<Index> {
    use std::os::unix::ffi::OsStrExt;
    let (body, checksum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != checksum {
        return None;
    }
    let mut reader = Reader(body.strip_prefix(MAGIC.as_slice())?);
    let workspace = PathBuf::from(std::ffi::OsStr::from_bytes(reader.bytes()?));
    let count = reader.u64()?;
    let mut entries = HashMap::with_capacity(usize::try_from(count).ok()?.min(1 << 20));
    for _ in 0..count {
        let path = reader.bytes()?.to_vec();
        let mut numbers = [0u64; 8];
        for slot in &mut numbers {
            *slot = reader.u64()?;
        }
        let [dev, ino, size, mtime_s, mtime_ns, ctime_s, ctime_ns, len] = numbers;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(reader.take(32)?);
        let key = StatKey {
            dev,
            ino,
            size: size as i64,
            mtime: (mtime_s as i64, mtime_ns),
            ctime: (ctime_s as i64, ctime_ns),
        };
        entries.insert(path, IndexEntry { key, hash: ObjectHash(hash), size: len });
    }
    reader.0.is_empty().then_some(Index { workspace, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let key = StatKey { dev: 1, ino: 2, size: 3, mtime: (4, 5), ctime: (6, 7) };
        let mut index = Index { workspace: PathBuf::from("/w"), entries: HashMap::new() };
        index
            .entries
            .insert(b"a/b".to_vec(), IndexEntry { key, hash: ObjectHash::of(b"x"), size: 3 });
        let bytes = encode(&index);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.workspace, PathBuf::from("/w"));
        let entry = back.entries[&b"a/b".to_vec()];
        assert_eq!((entry.key, entry.hash, entry.size), (key, ObjectHash::of(b"x"), 3));

        let mut torn = bytes.clone();
        torn[20] ^= 1;
        assert!(decode(&torn).is_none());
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(b"").is_none());
    }

    #[test]
    fn racy_means_changed_within_the_margin_before_the_scan() {
        let key =
            |ctime: i64| StatKey { dev: 0, ino: 0, size: 0, mtime: (0, 0), ctime: (ctime, 0) };
        assert!(!key(100).is_racy((103, 0)));
        assert!(key(101).is_racy((103, 0)));
        assert!(key(200).is_racy((103, 0)));
    }
}
