//! What changed between two trees, found by walking only the subtrees whose hashes differ.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::Result;
use crate::hash::ObjectHash;
use crate::objects::Objects;
use crate::tree::{self, EntryKind, TreeEntry};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    /// Same path and type (or a file that became a symlink or back), other content or mode.
    Modified,
    Deleted,
}

/// One changed path. A directory that appears or disappears reports every path inside it
/// too; a directory replaced by a file (or the reverse) is a deletion plus an addition.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Relative to the workspace.
    pub path: PathBuf,
    pub kind: ChangeKind,
    /// The path's type after the change (before it, for a deletion).
    pub entry: EntryKind,
}

/// Counts of changed paths (files, symlinks and directories alike).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeCounts {
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
}

impl ChangeCounts {
    pub(crate) fn add(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Modified => self.modified += 1,
            ChangeKind::Deleted => self.deleted += 1,
        }
    }
}

/// Calls `report` for every path that differs between the trees `old` (`None`: empty) and
/// `new`, in path order within each directory.
pub(crate) fn walk(
    objects: &Objects,
    old: Option<&ObjectHash>,
    new: Option<&ObjectHash>,
    report: &mut dyn FnMut(&[u8], ChangeKind, EntryKind),
) -> Result<()> {
    Walk { objects, report }.trees(&mut Vec::new(), old, new)
}

/// The changes as a list, for callers that want paths.
pub(crate) fn changes(
    objects: &Objects,
    old: Option<&ObjectHash>,
    new: &ObjectHash,
) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk(objects, old, Some(new), &mut |path, kind, entry| {
        out.push(Change { path: PathBuf::from(OsStr::from_bytes(path)), kind, entry });
    })?;
    Ok(out)
}

struct Walk<'a, 'r> {
    objects: &'a Objects,
    report: &'r mut dyn FnMut(&[u8], ChangeKind, EntryKind),
}

impl Walk<'_, '_> {
    fn entries(&self, hash: Option<&ObjectHash>) -> Result<Vec<TreeEntry>> {
        match hash {
            Some(hash) => tree::decode(hash, &self.objects.read(hash)?),
            None => Ok(Vec::new()),
        }
    }

    fn trees(
        &mut self,
        rel: &mut Vec<u8>,
        old: Option<&ObjectHash>,
        new: Option<&ObjectHash>,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let old_entries = self.entries(old)?;
        let new_entries = self.entries(new)?;
        let old_by_name: HashMap<&[u8], &TreeEntry> =
            old_entries.iter().map(|e| (e.name.as_slice(), e)).collect();
        let new_names: std::collections::HashSet<&[u8]> =
            new_entries.iter().map(|e| e.name.as_slice()).collect();
        for entry in &old_entries {
            if !new_names.contains(entry.name.as_slice()) {
                self.child(rel, &entry.name, |w, rel| w.whole(rel, entry, ChangeKind::Deleted))?;
            }
        }
        for entry in &new_entries {
            let before = old_by_name.get(entry.name.as_slice()).copied();
            self.child(rel, &entry.name, |w, rel| match before {
                None => w.whole(rel, entry, ChangeKind::Added),
                Some(before) if before.same_as(entry) => Ok(()),
                Some(before) => match (before.kind, entry.kind) {
                    (EntryKind::Directory, EntryKind::Directory) => {
                        if before.mode != entry.mode {
                            (w.report)(rel, ChangeKind::Modified, EntryKind::Directory);
                        }
                        w.trees(rel, Some(&before.hash), Some(&entry.hash))
                    }
                    (EntryKind::Directory, _) | (_, EntryKind::Directory) => {
                        w.whole(rel, before, ChangeKind::Deleted)?;
                        w.whole(rel, entry, ChangeKind::Added)
                    }
                    _ => {
                        (w.report)(rel, ChangeKind::Modified, entry.kind);
                        Ok(())
                    }
                },
            })?;
        }
        Ok(())
    }

    /// Reports `entry` and, for a directory, everything in it, as `kind`.
    fn whole(&mut self, rel: &mut Vec<u8>, entry: &TreeEntry, kind: ChangeKind) -> Result<()> {
        (self.report)(rel, kind, entry.kind);
        if entry.kind == EntryKind::Directory {
            for child in self.entries(Some(&entry.hash))? {
                self.child(rel, &child.name, |w, rel| w.whole(rel, &child, kind))?;
            }
        }
        Ok(())
    }

    fn child(
        &mut self,
        rel: &mut Vec<u8>,
        name: &[u8],
        f: impl FnOnce(&mut Self, &mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name);
        let out = f(self, rel);
        rel.truncate(len);
        out
    }
}
