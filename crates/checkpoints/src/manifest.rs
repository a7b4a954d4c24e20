//! Checkpoint manifests (`checkpoints/<id>.json`): the small record that makes a checkpoint
//! exist. It is written last, through a synced temporary file and a rename, so a checkpoint
//! either exists completely or not at all.

use std::fmt;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::diff::ChangeCounts;
use crate::error::{CheckpointError, Result};
use crate::hash::ObjectHash;
use crate::scan::ScanStats;

const FORMAT: u32 = 1;

/// A checkpoint's id: a UUIDv7, so ids sort roughly by creation time.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct CheckpointId(Uuid);

impl CheckpointId {
    pub(crate) fn new() -> Self {
        CheckpointId(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for CheckpointId {
    fn from(id: Uuid) -> Self {
        CheckpointId(id)
    }
}

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CheckpointId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Uuid::parse_str(s).map(CheckpointId)
    }
}

/// One checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    pub id: CheckpointId,
    /// Position in the store's history: one more than the newest checkpoint when taken.
    pub seq: u64,
    pub created_at: DateTime<Utc>,
    /// The newest checkpoint when this one was taken (its changes are counted against it).
    pub parent: Option<CheckpointId>,
    pub label: Option<String>,
    /// Set on the checkpoint a restore takes of the workspace first: the checkpoint restored.
    pub before_restore_of: Option<CheckpointId>,
    pub root: ObjectHash,
    pub excludes: Vec<String>,
    pub changes: ChangeCounts,
    pub stats: ScanStats,
}

impl Manifest {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        seq: u64,
        parent: Option<CheckpointId>,
        label: Option<String>,
        before_restore_of: Option<CheckpointId>,
        root: ObjectHash,
        excludes: Vec<String>,
        changes: ChangeCounts,
        stats: ScanStats,
    ) -> Self {
        Manifest {
            format: FORMAT,
            id: CheckpointId::new(),
            seq,
            created_at: Utc::now(),
            parent,
            label,
            before_restore_of,
            root,
            excludes,
            changes,
            stats,
        }
    }
}

pub(crate) fn file_name(id: &CheckpointId) -> String {
    format!("{id}.json")
}

/// Writes `manifest` into `dir` durably: temporary file in `tmp`, `fsync`, rename, `fsync` of
/// the directory.
pub(crate) fn write(dir: &Path, tmp: &Path, manifest: &Manifest) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| CheckpointError::Corrupt(format!("manifest does not serialise: {e}")))?;
    let name = file_name(&manifest.id);
    let temp = tmp.join(format!("manifest-{name}"));
    let mut file = File::create(&temp).map_err(|e| CheckpointError::io("create", &temp, e))?;
    file.write_all(&bytes).map_err(|e| CheckpointError::io("write", &temp, e))?;
    file.sync_all().map_err(|e| CheckpointError::io("sync", &temp, e))?;
    drop(file);
    let path = dir.join(&name);
    fs::rename(&temp, &path).map_err(|e| CheckpointError::io("rename", &temp, e))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| CheckpointError::io("sync", dir, e))
}

pub(crate) fn read(dir: &Path, id: &CheckpointId) -> Result<Manifest> {
    let path = dir.join(file_name(id));
    let bytes = fs::read(&path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => CheckpointError::NotFound(*id),
        _ => CheckpointError::io("read", &path, e),
    })?;
    parse(&path, &bytes)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| CheckpointError::Corrupt(format!("manifest {}: {e}", path.display())))?;
    if manifest.format != FORMAT {
        return Err(CheckpointError::Corrupt(format!(
            "manifest {} has format {}, this build reads format {FORMAT}",
            path.display(),
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Every manifest in `dir`, oldest first. Files that are not named like manifests are not
/// checkpoints and are ignored.
pub(crate) fn read_all(dir: &Path) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| CheckpointError::io("list", dir, e))? {
        let entry = entry.map_err(|e| CheckpointError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
        if id.parse::<CheckpointId>().is_err() {
            continue;
        }
        let path = entry.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Deleted by a concurrent prune between listing and reading.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(CheckpointError::io("read", &path, e)),
        };
        out.push(parse(&path, &bytes)?);
    }
    out.sort_by_key(|m| (m.seq, m.id));
    Ok(out)
}
