//! `agentbox migrate --from --to`: copy a whole installation into an empty database and
//! check that every table arrived whole.

use crate::{Result, Store, StoreError, Table};

/// Rows per table after a copy, the same on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(Table, i64)>,
}

/// Copy every table of `source` into `target` (which must be empty) in one transaction of
/// the target, then compare the row counts of each table. `progress` hears (table, rows
/// copied, rows in all) as the copy goes.
pub async fn copy_installation(
    source: &Store,
    target: &Store,
    progress: &(dyn Fn(Table, i64, i64) + Send + Sync),
) -> Result<CopyReport> {
    target.repository().import_from(source.repository(), progress).await?;
    let mut tables = Vec::new();
    for table in Table::ALL {
        let (from, to) = (source.count_rows(table).await?, target.count_rows(table).await?);
        if from != to {
            return Err(StoreError::Corrupt(format!(
                "the copy is incomplete: {} has {from} rows in the source but {to} in the target",
                table.name()
            )));
        }
        tables.push((table, to));
    }
    Ok(CopyReport { tables })
}
