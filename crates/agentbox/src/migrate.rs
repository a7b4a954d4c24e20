//! `agentbox migrate --from URL --to URL`: copy a whole installation (every table but the
//! cluster's per-run state: `nodes`, `turn_jobs`, `turn_controls`) into another database,
//! which must be empty, with progress in the log and the row counts of every table compared
//! at the end. Not copying the per-run tables loses no turn: a turn still queued or
//! running has no live node on the target, so the first node there closes it as
//! `interrupted`, as after a crash.

use std::collections::HashMap;
use std::sync::Mutex;

use agentbox_store::{Backend, PoolSettings, Store, Table, copy_installation, redact_url};
use anyhow::{Context, bail};

/// Copy `from` into `to`. The source must exist; the target is migrated first, then filled
/// in one transaction, so a copy that fails leaves it empty.
pub async fn copy(from: &str, to: &str, pool: &PoolSettings) -> anyhow::Result<()> {
    if Backend::of_url(from)? == Backend::Sqlite {
        let path = from.strip_prefix("sqlite://").or_else(|| from.strip_prefix("sqlite:"));
        let path = path.unwrap_or(from).split('?').next().unwrap_or_default();
        if !std::path::Path::new(path).is_file() {
            bail!("--from {}: there is no database file at {path}", redact_url(from));
        }
    }
    let source = Store::open_with(from, pool)
        .await
        .with_context(|| format!("cannot open the source database {}", redact_url(from)))?;
    crate::serve::create_private_database(to)?;
    let target = Store::open_with(to, pool)
        .await
        .with_context(|| format!("cannot open the target database {}", redact_url(to)))?;
    tracing::info!(from = %redact_url(from), to = %redact_url(to), "copying the installation");
    // Each table is reported when it starts, at every further tenth, and when done.
    let reported: Mutex<HashMap<Table, i64>> = Mutex::new(HashMap::new());
    let progress = |table: Table, copied: i64, total: i64| {
        let tenth = if total == 0 { 10 } else { copied * 10 / total };
        let mut reported = reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if reported.get(&table) != Some(&tenth) {
            reported.insert(table, tenth);
            tracing::info!(table = table.name(), copied, total, "copying");
        }
    };
    let result = copy_installation(&source, &target, &progress).await;
    source.close().await;
    target.close().await;
    let report = result.context("the copy failed; the target database was left as it was")?;
    for (table, rows) in &report.tables {
        tracing::info!(
            table = table.name(),
            rows,
            "copied; the row counts of source and target agree"
        );
    }
    tracing::info!("the installation was copied; point DATABASE_URL at the target to use it");
    Ok(())
}
