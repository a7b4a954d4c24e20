//! Databases for tests: a PostgreSQL database created for one test and dropped after it,
//! also when the test fails. Used by this crate's conformance suite and the end-to-end
//! suite; not by the product.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

use crate::{Result, StoreError};

/// The server the tests create their databases on: `AGENTBOX_TEST_POSTGRES_URL`, else the
/// local one with trust authentication that development and CI machines run.
pub fn admin_url() -> String {
    std::env::var("AGENTBOX_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://root@127.0.0.1:5432/test".into())
}

/// A database that exists while this value does. Its name is unique per process and call;
/// dropping it drops the database (from a thread of its own, since `Drop` cannot await and
/// may run inside a runtime), ending any connection still open to it.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    /// The URL of the new database.
    pub url: String,
    admin: String,
}

impl TestDatabase {
    /// Create a database named after `label` (a test's name); fails if the server cannot
    /// be reached, so that a test without PostgreSQL fails instead of passing unseen.
    pub async fn create(label: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = admin_url();
        let clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(30)
            .collect();
        let name = format!(
            "agentbox_t{}_{}_{clean}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(&admin).await.map_err(|err| {
            StoreError::Database(format!(
                "cannot reach PostgreSQL at {} (set AGENTBOX_TEST_POSTGRES_URL): {err}",
                crate::redact_url(&admin)
            ))
        })?;
        // A name of letters, digits and underscores only, made above: safe to splice in.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let url = database_url(&admin, &name);
        Ok(Self { name, url, admin })
    }
}

/// `admin` with its database replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin, String::new()),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| StoreError::Database(err.to_string()))?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await?;
                Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            tracing::warn!(database = %self.name, "could not drop a test database");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_url_names_the_new_database() {
        assert_eq!(
            super::database_url("postgres://root@127.0.0.1:5432/test", "x"),
            "postgres://root@127.0.0.1:5432/x"
        );
        assert_eq!(super::database_url("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            super::database_url("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
