//! What changed between two trees, found by walking only the subtrees whose hashes differ.
//!
//! The walk is a loop over an explicit stack, one frame per level, so its depth costs heap
//! memory in proportion to the trees, never the thread's stack. It has no depth limit of its
//! own: trees come from scans, which refuse workspaces deeper than [`crate::MAX_DEPTH`], and a
//! checkpoint taken before there was a limit must still be counted against and listed.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::Result;
use crate::fd::join;
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
    Walk { objects, report }.run(old, new)
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

/// One thing to report in a directory, in order.
enum Item {
    /// `entry` and, for a directory, everything in it, as `kind`.
    Whole(TreeEntry, ChangeKind),
    /// A file or symlink whose content or mode differs (or that became the other).
    Modified(Vec<u8>, EntryKind),
    /// A directory in both trees whose listings differ; `mode_changed` reports it too.
    Trees { name: Vec<u8>, mode_changed: bool, old: ObjectHash, new: ObjectHash },
}

/// A directory being reported: where its path ends in `rel`, and what is left to report.
struct Frame {
    rel_len: usize,
    items: std::vec::IntoIter<Item>,
}

impl Walk<'_, '_> {
    fn entries(&self, hash: Option<&ObjectHash>) -> Result<Vec<TreeEntry>> {
        match hash {
            Some(hash) => tree::decode(hash, &self.objects.read(hash)?),
            None => Ok(Vec::new()),
        }
    }

    fn run(&mut self, old: Option<&ObjectHash>, new: Option<&ObjectHash>) -> Result<()> {
        let Some(items) = self.compare(old, new)? else { return Ok(()) };
        let mut stack = vec![Frame { rel_len: 0, items }];
        let mut rel = Vec::new();
        while let Some(frame) = stack.last_mut() {
            let Some(item) = frame.items.next() else {
                stack.pop();
                continue;
            };
            let rel_len = frame.rel_len;
            let items = match item {
                Item::Whole(entry, kind) => {
                    join(&mut rel, rel_len, &entry.name);
                    (self.report)(&rel, kind, entry.kind);
                    if entry.kind != EntryKind::Directory {
                        continue;
                    }
                    let children = self.entries(Some(&entry.hash))?;
                    children.into_iter().map(|child| Item::Whole(child, kind)).collect::<Vec<_>>()
                }
                Item::Modified(name, kind) => {
                    join(&mut rel, rel_len, &name);
                    (self.report)(&rel, ChangeKind::Modified, kind);
                    continue;
                }
                Item::Trees { name, mode_changed, old, new } => {
                    join(&mut rel, rel_len, &name);
                    if mode_changed {
                        (self.report)(&rel, ChangeKind::Modified, EntryKind::Directory);
                    }
                    match self.compare(Some(&old), Some(&new))? {
                        Some(items) => items.collect(),
                        None => continue,
                    }
                }
            };
            stack.push(Frame { rel_len: rel.len(), items: items.into_iter() });
        }
        Ok(())
    }

    /// What to report for the directories `old` and `new`; `None` when they are the same.
    fn compare(
        &self,
        old: Option<&ObjectHash>,
        new: Option<&ObjectHash>,
    ) -> Result<Option<std::vec::IntoIter<Item>>> {
        if old == new {
            return Ok(None);
        }
        let old_entries = self.entries(old)?;
        let new_entries = self.entries(new)?;
        let new_names: HashSet<&[u8]> = new_entries.iter().map(|e| e.name.as_slice()).collect();
        let mut items = Vec::new();
        let mut before: HashMap<Vec<u8>, TreeEntry> = HashMap::new();
        for entry in old_entries {
            if new_names.contains(entry.name.as_slice()) {
                before.insert(entry.name.clone(), entry);
            } else {
                items.push(Item::Whole(entry, ChangeKind::Deleted));
            }
        }
        for entry in new_entries.iter() {
            let Some(before) = before.remove(&entry.name) else {
                items.push(Item::Whole(entry.clone(), ChangeKind::Added));
                continue;
            };
            if before.same_as(entry) {
                continue;
            }
            match (before.kind, entry.kind) {
                (EntryKind::Directory, EntryKind::Directory) => items.push(Item::Trees {
                    name: entry.name.clone(),
                    mode_changed: before.mode != entry.mode,
                    old: before.hash,
                    new: entry.hash,
                }),
                (EntryKind::Directory, _) | (_, EntryKind::Directory) => {
                    items.push(Item::Whole(before, ChangeKind::Deleted));
                    items.push(Item::Whole(entry.clone(), ChangeKind::Added));
                }
                _ => items.push(Item::Modified(entry.name.clone(), entry.kind)),
            }
        }
        Ok(Some(items.into_iter()))
    }
}
