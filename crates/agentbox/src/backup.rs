//! `agentbox backup --to FILE [--db-only]` and `agentbox restore --from FILE`.
//!
//! A backup is one tar file, streamed as it is made (never staged whole on disk), private
//! (0600: it holds password hashes and sealed secrets), written to `FILE.partial` and renamed
//! when complete:
//!
//! ```text
//! manifest.json       format, agentbox version, created_at, database kind, the secret key's
//!                     id (never the key), whether files are in it, each table's row count
//! database.sqlite     the database as of one moment (SQLite `VACUUM INTO`, online)
//! data/sandboxes/...  the chats' sandboxes and workspaces     (not with --db-only)
//! checkpoints/...     the checkpoint store, chat by chat       (not with --db-only)
//! files.json          how many directories, files, links and bytes the two trees hold
//! ```
//!
//! Consistency while a server runs: the database is one snapshot; each chat's checkpoint
//! store is read under its shared lock (no checkpoint, restore or GC of that chat writes
//! meanwhile); the database is taken first, so every checkpoint it names was already there
//! (a checkpoint made later is an extra, harmless file). A workspace is copied as it is at
//! that moment: a turn running during the backup may leave it half-way, and its chat's last
//! checkpoint (in the backup) is the consistent state to restore to.
//!
//! PostgreSQL: not built yet. The store copies installations from SQLite into PostgreSQL
//! only, and one consistent snapshot of a live PostgreSQL database needs `pg_dump` (a
//! process this binary does not start outside the sandbox crate); the command says so.
//! A restore always makes a SQLite installation; `agentbox migrate --from --to` moves it
//! to PostgreSQL afterwards.
//!
//! Every walk is a loop over an explicit stack with a bound on depth and entries; every
//! file is opened `O_NOFOLLOW | O_NONBLOCK` and read only if `fstat` says it is a regular
//! file; symlinks are stored as links, never followed; sockets, FIFOs and devices are
//! skipped (and counted).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use agentbox_secrets::SealingKey;
use agentbox_store::{Backend, Store, Table};
use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The backup file's layout version; a restore refuses others.
pub const FORMAT: u32 = 1;
/// Deeper trees than this are not walked (the checkpoint engine's own limit is 1024).
const MAX_DEPTH: usize = 1024;
/// At most this many entries in one backup, so a hostile workspace cannot make it endless.
const MAX_ENTRIES: u64 = 10_000_000;

const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "database.sqlite";
const FILES: &str = "files.json";
const DATA_PREFIX: &str = "data";
const CHECKPOINTS_PREFIX: &str = "checkpoints";

/// What `manifest.json` says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub agentbox_version: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The database kind backed up (`sqlite`).
    pub database: String,
    /// The id of the key that sealed the secrets and signed tokens; the key is not here.
    pub secret_key_id: String,
    /// `file` (the data directory's `secret.key`) or `given` (`--secret-key`/`SECRET_KEY`).
    pub secret_key_source: String,
    pub db_only: bool,
    /// Rows per table in `database.sqlite`.
    pub tables: BTreeMap<String, i64>,
}

/// What `files.json` says, and what a restore checks it unpacked.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileCounts {
    pub directories: u64,
    pub files: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Sockets, FIFOs and devices, which are not backed up.
    pub skipped: u64,
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub files: FileCounts,
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreReport {
    pub manifest: Manifest,
    pub files: FileCounts,
    /// Whether the restore wrote `<data-dir>/secret.key` (from the key it was given).
    pub wrote_secret_key: bool,
}

/// Progress lines on stderr, at most one every two seconds, for long work.
struct Progress {
    last: Instant,
    what: &'static str,
}

impl Progress {
    fn new(what: &'static str) -> Self {
        eprintln!("{what}: started");
        Self { last: Instant::now(), what }
    }

    fn tick(&mut self, counts: &FileCounts) {
        if self.last.elapsed().as_secs() >= 2 {
            self.last = Instant::now();
            eprintln!(
                "{}: {} files, {} directories, {} MiB so far",
                self.what,
                counts.files,
                counts.directories,
                counts.bytes >> 20
            );
        }
    }
}

/// The configured key and where it came from; `None` when there is none yet.
fn current_key(config: &Config) -> anyhow::Result<Option<(String, &'static str)>> {
    if let Some(key) = &config.secret_key {
        return Ok(Some((key.clone(), "given")));
    }
    let path = config.data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(key) => Ok(Some((key.trim().to_owned(), "file"))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Back the installation up into `to`, which must not exist.
pub async fn backup(config: &Config, to: &Path, db_only: bool) -> anyhow::Result<BackupReport> {
    if to.exists() {
        bail!("{} exists already: give a new file name", to.display());
    }
    // A backup inside a tree it copies would copy itself as it grows.
    let absolute = std::path::absolute(to)?;
    let walked = [Some(config.data_dir.join("sandboxes")), config.checkpoints.root.clone()];
    for tree in walked.iter().flatten() {
        if let Ok(tree) = std::path::absolute(tree)
            && absolute.starts_with(&tree)
        {
            bail!(
                "{} is inside {}, which the backup copies: write it elsewhere",
                to.display(),
                tree.display()
            );
        }
    }
    if Backend::of_url(&config.database_url)? == Backend::Postgres {
        bail!(
            "backups of a PostgreSQL installation are not built yet: back the database up with \
             pg_dump (it takes one consistent snapshot while the server runs) and copy the data \
             directory's sandboxes/ and the checkpoint store beside it"
        );
    }
    let Some((key, key_source)) = current_key(config)? else {
        bail!(
            "there is no secret key (no SECRET_KEY and no {}): is this the data directory \
             the server uses?",
            config.data_dir.join("secret.key").display()
        );
    };
    let key_id = SealingKey::derive(key.as_bytes()).id().to_owned();
    // The walk holds one descriptor per directory level, up to MAX_DEPTH.
    crate::serve::raise_open_file_limit();
    let store =
        Store::open_with(&config.database_url, &config.db_pool).await.with_context(|| {
            format!("cannot open the database {}", agentbox_store::redact_url(&config.database_url))
        })?;
    let scratch = tempdir_beside(to)?;
    let snapshot = scratch.join(DATABASE);
    eprintln!("backup: taking a snapshot of the database");
    let taken = store.snapshot_into(&snapshot).await;
    store.close().await;
    taken.context("the database snapshot failed")?;
    let snapshot_store =
        Store::open_with(&format!("sqlite://{}", snapshot.display()), &Default::default())
            .await
            .context("the database snapshot does not open")?;
    let mut tables = BTreeMap::new();
    for table in Table::ALL {
        tables.insert(table.name().to_owned(), snapshot_store.count_rows(table).await?);
    }
    snapshot_store.close().await;
    let manifest = Manifest {
        format: FORMAT,
        agentbox_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: chrono::Utc::now(),
        database: Backend::Sqlite.as_str().to_owned(),
        secret_key_id: key_id,
        secret_key_source: key_source.to_owned(),
        db_only,
        tables,
    };
    let partial = partial_path(to);
    let config = config.clone();
    let written = {
        let (manifest, partial, snapshot) = (manifest.clone(), partial.clone(), snapshot.clone());
        tokio::task::spawn_blocking(move || {
            write_archive(&config, &manifest, &partial, &snapshot, db_only)
        })
        .await?
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let files = match written {
        Ok(files) => files,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    std::fs::rename(&partial, to)
        .with_context(|| format!("cannot move {} to {}", partial.display(), to.display()))?;
    Ok(BackupReport { path: to.to_owned(), manifest, files })
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}

/// A private scratch directory next to the backup (same file system, no /tmp size limit).
fn tempdir_beside(to: &Path) -> anyhow::Result<PathBuf> {
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let dir = parent.join(format!(".agentbox-backup-{}", uuid::Uuid::new_v4()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn write_archive(
    config: &Config,
    manifest: &Manifest,
    partial: &Path,
    snapshot: &Path,
    db_only: bool,
) -> anyhow::Result<FileCounts> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    tar.mode(tar::HeaderMode::Complete);
    append_bytes(&mut tar, MANIFEST, &serde_json::to_vec_pretty(manifest)?)?;
    let mut database = File::open(snapshot)?;
    let mut header = regular_header(database.metadata()?.len(), 0o600);
    tar.append_data(&mut header, DATABASE, &mut database)?;
    let mut counts = FileCounts::default();
    if !db_only {
        let mut progress = Progress::new("backup");
        let sandboxes = config.data_dir.join("sandboxes");
        if sandboxes.is_dir() {
            walk_into(
                &mut tar,
                &sandboxes,
                Path::new(DATA_PREFIX).join("sandboxes"),
                &mut counts,
                &mut progress,
            )?;
        }
        if let Some(root) = &config.checkpoints.root
            && root.is_dir()
        {
            // Chat by chat, each under its store's shared lock: no checkpoint, restore or GC
            // of that chat writes while it is read.
            let mut chats: Vec<_> = std::fs::read_dir(root)?.flatten().collect();
            chats.sort_by_key(std::fs::DirEntry::file_name);
            let top = Path::new(CHECKPOINTS_PREFIX);
            append_dir(&mut tar, top, &nix::sys::stat::stat(root.as_path())?)?;
            counts.directories += 1;
            for chat in chats {
                let meta = std::fs::symlink_metadata(chat.path())?;
                let name = top.join(chat.file_name());
                if !meta.is_dir() {
                    continue;
                }
                let _lock = lock_shared(&chat.path().join("lock"))?;
                walk_into(&mut tar, &chat.path(), name, &mut counts, &mut progress)?;
            }
        }
    }
    append_bytes(&mut tar, FILES, &serde_json::to_vec_pretty(&counts)?)?;
    let mut out = tar.into_inner()?;
    out.flush()?;
    out.into_inner().map_err(|err| err.into_error())?.sync_all()?;
    Ok(counts)
}

/// A shared `flock` on a checkpoint store's lock file, if it has one.
fn lock_shared(path: &Path) -> anyhow::Result<Option<File>> {
    match OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(path) {
        Ok(file) => {
            file.lock_shared().with_context(|| format!("cannot lock {}", path.display()))?;
            Ok(Some(file))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot open {}", path.display())),
    }
}

fn regular_header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(mode);
    // Ours: the user making the backup owns what it writes for itself.
    header.set_uid(u64::from(nix::unistd::geteuid().as_raw()));
    header.set_gid(u64::from(nix::unistd::getegid().as_raw()));
    header.set_mtime(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
    header
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = regular_header(bytes.len() as u64, 0o600);
    tar.append_data(&mut header, name, bytes)?;
    Ok(())
}

fn header_of(stat: &FileStat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header
}

fn append_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &Path,
    stat: &FileStat,
) -> anyhow::Result<()> {
    let mut header = header_of(stat, tar::EntryType::Directory, 0);
    tar.append_data(&mut header, name, std::io::empty())?;
    Ok(())
}

/// A directory entry still to visit: its parent's descriptor and its name there. Children
/// hold their parent open, so the descriptors open at once are the ancestors of what is
/// being read (at most [`MAX_DEPTH`]), however wide a directory is.
struct Pending {
    parent: Rc<OwnedFd>,
    name: OsString,
    tar_name: PathBuf,
    depth: usize,
}

/// Add the tree at `root` under the name `name`, iteratively and bounded. Everything below
/// `root` is reached relative to its parent's descriptor (`openat`, `fstatat`, `readlinkat`,
/// never following a link), so an agent that swaps a directory for a link while the backup
/// runs cannot make it read outside the workspace.
fn walk_into<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    name: PathBuf,
    counts: &mut FileCounts,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let root_fd: OwnedFd = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(root)
        .with_context(|| format!("cannot open {}", root.display()))?
        .into();
    let stat = fstat(&root_fd)?;
    append_dir(tar, &name, &stat)?;
    counts.directories += 1;
    let mut stack = Vec::new();
    push_children(&mut stack, Rc::new(root_fd), &name, 0)?;
    while let Some(Pending { parent, name, tar_name, depth }) = stack.pop() {
        let entries = counts.directories + counts.files + counts.symlinks + counts.skipped;
        if entries >= MAX_ENTRIES {
            bail!("more than {MAX_ENTRIES} entries to back up: refusing to go on");
        }
        let stat = match fstatat(&*parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Removed while we walk (a turn deleting files): it is simply not in the backup.
            Err(Errno::ENOENT) => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", tar_name.display()));
            }
        };
        match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFLNK => {
                let target = match readlinkat(&*parent, name.as_os_str()) {
                    Ok(target) => target,
                    Err(Errno::ENOENT | Errno::EINVAL) => continue,
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("cannot read {}", tar_name.display()));
                    }
                };
                let mut header = header_of(&stat, tar::EntryType::Symlink, 0);
                tar.append_link(&mut header, &tar_name, &target)?;
                counts.symlinks += 1;
            }
            SFlag::S_IFDIR => {
                if depth >= MAX_DEPTH {
                    bail!("{} is more than {MAX_DEPTH} directories deep", tar_name.display());
                }
                let flags =
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let fd = match openat(&*parent, name.as_os_str(), flags, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => continue,
                    // Replaced by a link or a file since it was seen: not a directory now.
                    Err(Errno::ELOOP | Errno::ENOTDIR) => {
                        counts.skipped += 1;
                        continue;
                    }
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("cannot open {}", tar_name.display()));
                    }
                };
                append_dir(tar, &tar_name, &fstat(&fd)?)?;
                counts.directories += 1;
                push_children(&mut stack, Rc::new(fd), &tar_name, depth)?;
            }
            SFlag::S_IFREG => append_file(tar, &parent, &name, &tar_name, counts)?,
            _ => counts.skipped += 1,
        }
        progress.tick(counts);
    }
    Ok(())
}

fn push_children(
    stack: &mut Vec<Pending>,
    dir: Rc<OwnedFd>,
    tar_name: &Path,
    depth: usize,
) -> anyhow::Result<()> {
    let mut listing = nix::dir::Dir::from_fd(dir.try_clone()?)?;
    let mut names: Vec<OsString> = listing
        .iter()
        .filter_map(Result::ok)
        .map(|entry| OsStr::from_bytes(entry.file_name().to_bytes()).to_owned())
        .filter(|name| name != "." && name != "..")
        .collect();
    // Reversed, so that the stack hands them out in name order.
    names.sort();
    for name in names.into_iter().rev() {
        stack.push(Pending {
            parent: dir.clone(),
            tar_name: tar_name.join(&name),
            name,
            depth: depth + 1,
        });
    }
    Ok(())
}

/// One regular file: opened relative to its directory without following links or
/// blocking, checked to be regular by `fstat`, read no further than its size at that moment
/// (a file that shrinks while it is read is padded with zeros, one that grows is cut, so the
/// entry stays well-formed).
fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    parent: &OwnedFd,
    name: &OsStr,
    tar_name: &Path,
    counts: &mut FileCounts,
) -> anyhow::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = match openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        // Replaced by a link since the walk saw it: not a regular file any more.
        Err(Errno::ELOOP) => {
            counts.skipped += 1;
            return Ok(());
        }
        Err(err) => return Err(err).with_context(|| format!("cannot open {}", tar_name.display())),
    };
    let stat = fstat(&fd)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        counts.skipped += 1;
        return Ok(());
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let mut header = header_of(&stat, tar::EntryType::Regular, size);
    let reader = File::from(fd).take(size).chain(std::io::repeat(0)).take(size);
    tar.append_data(&mut header, tar_name, reader)?;
    counts.files += 1;
    counts.bytes += size;
    Ok(())
}

/// Restore the backup `from` into the configured data directory, which must be empty (but
/// for a `secret.key` put there for the restore).
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<RestoreReport> {
    if Backend::of_url(&config.database_url)? == Backend::Postgres {
        bail!(
            "restoring into PostgreSQL is not built yet: restore into SQLite (leave DATABASE_URL \
             unset), then copy it over with `agentbox migrate --from sqlite://... --to postgres://...`"
        );
    }
    let data_dir = &config.data_dir;
    ensure_empty(data_dir, &["secret.key"])?;
    let checkpoint_root = config.checkpoints.root.clone();
    if let Some(root) = &checkpoint_root
        && !root.starts_with(data_dir)
    {
        ensure_empty(root, &[])?;
    }
    let database_path = sqlite_path(&config.database_url);
    if database_path.exists() {
        bail!(
            "the database file {} exists already: restore into a new installation",
            database_path.display()
        );
    }
    let key = current_key(config)?;
    let manifest = read_manifest(from)?;
    if manifest.format != FORMAT {
        bail!("the backup is of format {}; this agentbox reads format {FORMAT}", manifest.format);
    }
    let Some((key, _)) = key else {
        bail!(
            "give the installation's secret key: SECRET_KEY (or --secret-key), or put its \
             secret.key into {} (the backup holds only the key's id, {})",
            data_dir.display(),
            manifest.secret_key_id
        );
    };
    let key_id = SealingKey::derive(key.as_bytes()).id().to_owned();
    if key_id != manifest.secret_key_id {
        bail!(
            "the secret key given has the id {key_id}, but the backup's secrets and tokens are \
             under the key {}: give the key the backed-up server used",
            manifest.secret_key_id
        );
    }
    crate::serve::prepare_data_dir(data_dir)?;
    let wrote_secret_key = manifest.secret_key_source == "file" && config.secret_key.is_some();
    if wrote_secret_key {
        // The backed-up server read its key from the data directory; the restored one does too.
        let path = data_dir.join("secret.key");
        let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        out.write_all(key.as_bytes())?;
        out.sync_all()?;
    }
    let (data_dir, database) = (data_dir.clone(), database_path.clone());
    let archive = from.to_owned();
    let files = tokio::task::spawn_blocking(move || {
        unpack(&archive, &data_dir, checkpoint_root.as_deref(), &database)
    })
    .await?
    .with_context(|| {
        format!(
            "cannot restore {}: it is damaged or not a whole backup (nothing was put in place; \
             the data directory can be used for another try)",
            from.display()
        )
    })?;
    // The restored database opens (and is migrated to this version) and holds what the
    // manifest says it held.
    let store = Store::open_with(&config.database_url, &config.db_pool)
        .await
        .context("the restored database does not open")?;
    for table in Table::ALL {
        let rows = store.count_rows(table).await?;
        if let Some(expected) = manifest.tables.get(table.name())
            && *expected != rows
        {
            store.close().await;
            bail!(
                "the restored table {} has {rows} rows, the backup said {expected}",
                table.name()
            );
        }
    }
    store.close().await;
    Ok(RestoreReport { manifest, files, wrote_secret_key })
}

/// The manifest, the first entry of a backup.
pub fn read_manifest(from: &Path) -> anyhow::Result<Manifest> {
    let file =
        File::open(from).with_context(|| format!("cannot open the backup {}", from.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut entries = archive.entries().context("the backup is not a tar file")?;
    let not_a_backup = || format!("{} is not an agentbox backup", from.display());
    let mut first = entries.next().with_context(not_a_backup)?.with_context(not_a_backup)?;
    if first.path()?.as_ref() != Path::new(MANIFEST) {
        bail!("{} is not an agentbox backup (it does not start with {MANIFEST})", from.display());
    }
    let mut text = Vec::new();
    first.read_to_end(&mut text)?;
    serde_json::from_slice(&text).context("the backup's manifest is not valid")
}

fn sqlite_path(url: &str) -> PathBuf {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// Refuse a directory with anything in it but `allowed` names.
fn ensure_empty(dir: &Path, allowed: &[&str]) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
    };
    let found: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !allowed.contains(&name.as_str()))
        .take(3)
        .collect();
    if !found.is_empty() {
        bail!(
            "{} is not empty (it holds {}): restore into a new, empty directory",
            dir.display(),
            found.join(", ")
        );
    }
    Ok(())
}

/// Unpack every entry after the manifest into staging directories beside their places
/// (tar's `unpack_in` refuses `..`, absolute paths and writing through links), then move
/// the database to `database`, the sandboxes into `data_dir` and the checkpoints to
/// `checkpoint_root`; the counts of what was unpacked, checked against `files.json`.
fn unpack(
    from: &Path,
    data_dir: &Path,
    checkpoint_root: Option<&Path>,
    database: &Path,
) -> anyhow::Result<FileCounts> {
    let file = File::open(from)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    // As root, the sandboxes' files go back to the sandbox users that own them.
    archive.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    archive.set_overwrite(false);
    let stage = tempdir_beside(&data_dir.join("x"))?;
    // The checkpoint store may be on another file system (a shared mount): its entries
    // are staged there, so that the last step is a rename.
    let checkpoint_stage = match checkpoint_root {
        Some(root) if !root.starts_with(data_dir) => Some(tempdir_beside(root)?),
        _ => None,
    };
    let result = (|| {
        let mut counts = FileCounts::default();
        let mut expected = None;
        let mut progress = Progress::new("restore");
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            if path == Path::new(MANIFEST) {
                continue;
            }
            if path == Path::new(FILES) {
                let mut text = Vec::new();
                entry.read_to_end(&mut text)?;
                expected = Some(serde_json::from_slice::<FileCounts>(&text)?);
                continue;
            }
            let into = if path == Path::new(DATABASE) || path.starts_with(DATA_PREFIX) {
                &stage
            } else if path.starts_with(CHECKPOINTS_PREFIX) {
                checkpoint_stage.as_ref().unwrap_or(&stage)
            } else {
                bail!("the backup holds an unknown entry {}", path.display());
            };
            let (kind, size) = (entry.header().entry_type(), entry.header().size()?);
            if !entry.unpack_in(into)? {
                bail!("the backup's entry {} would leave its directory", path.display());
            }
            if path != Path::new(DATABASE) {
                match kind {
                    tar::EntryType::Directory => counts.directories += 1,
                    tar::EntryType::Symlink => counts.symlinks += 1,
                    _ => {
                        counts.files += 1;
                        counts.bytes += size;
                    }
                }
            }
            progress.tick(&counts);
        }
        let Some(expected) = expected else { bail!("the backup is cut short: it has no {FILES}") };
        let unpacked = FileCounts { skipped: expected.skipped, ..counts };
        if unpacked != expected {
            bail!("the backup unpacked {unpacked:?}, but it says it holds {expected:?}");
        }
        let staged = stage.join(DATABASE);
        if !staged.is_file() {
            bail!("the backup holds no {DATABASE}");
        }
        move_into_place(&staged, database)?;
        let sandboxes = stage.join(DATA_PREFIX).join("sandboxes");
        if sandboxes.is_dir() {
            move_into_place(&sandboxes, &data_dir.join("sandboxes"))?;
        }
        if let Some(root) = checkpoint_root {
            let staged = checkpoint_stage.as_ref().unwrap_or(&stage).join(CHECKPOINTS_PREFIX);
            if staged.is_dir() {
                if root.exists() {
                    // `ensure_empty` saw it empty: an empty directory made before the restore.
                    std::fs::remove_dir(root)
                        .with_context(|| format!("{} is not empty", root.display()))?;
                }
                move_into_place(&staged, root)?;
            }
        }
        Ok(expected)
    })();
    let _ = std::fs::remove_dir_all(&stage);
    if let Some(dir) = &checkpoint_stage {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// Rename `from` to `to`; a database on another file system is copied.
fn move_into_place(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(nix::libc::EXDEV) && from.is_file() => {
            let mut source = File::open(from)?;
            let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(to)?;
            std::io::copy(&mut source, &mut out)?;
            out.sync_all()?;
            Ok(())
        }
        Err(err) => {
            Err(err).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
        }
    }
}

/// What a backup wrote, for people.
pub fn print_backup(report: &BackupReport, out: &mut dyn Write) -> std::io::Result<()> {
    let (m, f) = (&report.manifest, &report.files);
    writeln!(out, "backup written to {}", report.path.display())?;
    writeln!(out, "  database: {} ({} tables)", m.database, m.tables.len())?;
    for (table, rows) in &m.tables {
        writeln!(out, "    {table}: {rows} rows")?;
    }
    if m.db_only {
        writeln!(out, "  files: none (--db-only)")?;
    } else {
        writeln!(
            out,
            "  files: {} files ({} bytes), {} directories, {} links; {} sockets, FIFOs or \
             devices skipped",
            f.files, f.bytes, f.directories, f.symlinks, f.skipped
        )?;
    }
    writeln!(out, "  secret key id: {} (from {})", m.secret_key_id, m.secret_key_source)?;
    writeln!(
        out,
        "The secret key itself is NOT in the backup: keep SECRET_KEY (or the data directory's \
         secret.key) safe separately; a restore needs it."
    )
}

/// What a restore did, for people.
pub fn print_restore(
    report: &RestoreReport,
    from: &Path,
    data_dir: &Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let (m, f) = (&report.manifest, &report.files);
    let rows = |table: &str| m.tables.get(table).copied().unwrap_or(0);
    writeln!(
        out,
        "restored {} (made {}) into {}",
        from.display(),
        m.created_at,
        data_dir.display()
    )?;
    writeln!(
        out,
        "  {} users, {} chats, {} messages; {} files, {} directories, {} links",
        rows("users"),
        rows("chats"),
        rows("messages"),
        f.files,
        f.directories,
        f.symlinks
    )?;
    if m.db_only {
        writeln!(out, "  the backup was --db-only: no workspaces or checkpoints were in it")?;
    }
    if report.wrote_secret_key {
        writeln!(out, "  wrote the given key to secret.key, where the backed-up server kept it")?;
    }
    writeln!(
        out,
        "Start the server on it with the same settings: agentbox serve --data-dir {}",
        data_dir.display()
    )
}
