//! Tree objects: one directory's entries (name, type, mode, size, object), in a compact binary
//! encoding, stored as objects themselves so unchanged directories are shared by checkpoints.
//!
//! Encoding: the magic `abtree1\n`, then per entry, sorted by name bytes: type (`f`, `d` or
//! `l`), mode (u32 LE), size (u64 LE), the 32-byte hash of the file's content, the subtree, or
//! the link's target, then the name's length (u32 LE) and its bytes. Nothing else (no times,
//! owners or inode numbers), so the same directory content always encodes the same way.

use crate::error::{CheckpointError, Result};
use crate::hash::ObjectHash;

const MAGIC: &[u8; 8] = b"abtree1\n";

/// What a path in a checkpoint is. Other file types (sockets, FIFOs, devices) are not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
}

impl EntryKind {
    fn tag(self) -> u8 {
        match self {
            EntryKind::File => b'f',
            EntryKind::Directory => b'd',
            EntryKind::Symlink => b'l',
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            b'f' => Some(EntryKind::File),
            b'd' => Some(EntryKind::Directory),
            b'l' => Some(EntryKind::Symlink),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TreeEntry {
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits (`0o7777`); `0o777` for symlinks, whose mode Linux ignores.
    pub mode: u32,
    /// Content length for files, target length for symlinks, 0 for directories.
    pub size: u64,
    pub hash: ObjectHash,
}

impl TreeEntry {
    /// True when restoring `self` over `other` changes nothing.
    pub fn same_as(&self, other: &TreeEntry) -> bool {
        self.kind == other.kind && self.mode == other.mode && self.hash == other.hash
    }
}

/// Encodes entries that are already sorted by name.
pub(crate) fn encode(entries: &[TreeEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + entries.len() * 64);
    out.extend_from_slice(MAGIC);
    for entry in entries {
        out.push(entry.kind.tag());
        out.extend_from_slice(&entry.mode.to_le_bytes());
        out.extend_from_slice(&entry.size.to_le_bytes());
        out.extend_from_slice(&entry.hash.0);
        // Names come from readdir, which caps them at 255 bytes.
        let len = u32::try_from(entry.name.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&entry.name);
    }
    out
}

/// Decodes a tree object and checks what restore relies on: every name is one plain path
/// component (no `/`, NUL, `.` or `..`) and names are strictly sorted, so no entry can
/// point outside its directory or appear twice.
pub(crate) fn decode(hash: &ObjectHash, bytes: &[u8]) -> Result<Vec<TreeEntry>> {
    let corrupt = |what: &str| CheckpointError::Corrupt(format!("tree {hash}: {what}"));
    let mut rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| corrupt("bad magic"))?;
    let mut entries: Vec<TreeEntry> = Vec::new();
    while !rest.is_empty() {
        let (head, tail) =
            rest.split_at_checked(1 + 4 + 8 + 32 + 4).ok_or_else(|| corrupt("truncated"))?;
        let kind = EntryKind::from_tag(head[0]).ok_or_else(|| corrupt("unknown entry type"))?;
        let mode = u32::from_le_bytes(array(&head[1..5]));
        let size = u64::from_le_bytes(array(&head[5..13]));
        let hash = ObjectHash(array(&head[13..45]));
        let len = usize::try_from(u32::from_le_bytes(array(&head[45..49])))
            .map_err(|_| corrupt("name too long"))?;
        let (name, tail) = tail.split_at_checked(len).ok_or_else(|| corrupt("truncated name"))?;
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(corrupt("invalid entry name"));
        }
        if entries.last().is_some_and(|last| last.name.as_slice() >= name) {
            return Err(corrupt("entries not sorted"));
        }
        entries.push(TreeEntry { name: name.to_vec(), kind, mode, size, hash });
        rest = tail;
    }
    Ok(entries)
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &[u8], kind: EntryKind) -> TreeEntry {
        TreeEntry { name: name.to_vec(), kind, mode: 0o644, size: 3, hash: ObjectHash::of(name) }
    }

    #[test]
    fn encoding_round_trips() {
        let entries = vec![
            entry(b"a\nb", EntryKind::File),
            entry(b"dir", EntryKind::Directory),
            entry(b"link\xff", EntryKind::Symlink),
        ];
        let bytes = encode(&entries);
        assert_eq!(decode(&ObjectHash::of(&bytes), &bytes).unwrap(), entries);
        assert_eq!(decode(&ObjectHash::of(b""), MAGIC).unwrap(), Vec::new());
    }

    #[test]
    fn names_that_could_escape_the_directory_are_rejected() {
        for name in [&b".."[..], b".", b"a/b", b"", b"a\0"] {
            let bytes = encode(&[entry(name, EntryKind::File)]);
            assert!(decode(&ObjectHash::of(&bytes), &bytes).is_err(), "{name:?} accepted");
        }
        let unsorted = encode(&[entry(b"b", EntryKind::File), entry(b"a", EntryKind::File)]);
        assert!(decode(&ObjectHash::of(&unsorted), &unsorted).is_err());
        let twice = encode(&[entry(b"a", EntryKind::File), entry(b"a", EntryKind::File)]);
        assert!(decode(&ObjectHash::of(&twice), &twice).is_err());
        let bytes = encode(&[entry(b"a", EntryKind::File)]);
        assert!(decode(&ObjectHash::of(&bytes), &bytes[..bytes.len() - 1]).is_err());
    }
}
