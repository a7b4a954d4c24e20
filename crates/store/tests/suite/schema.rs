//! Schema parity: the PostgreSQL migrations build the same schema as the SQLite ones —
//! tables, columns, nullability, primary keys, foreign keys, unique, partial and expression
//! indexes, and CHECK constraints — under this type mapping (SQLite's declared type →
//! PostgreSQL's):
//!
//! | SQLite | PostgreSQL |
//! |---|---|
//! | TEXT (an id of ours) | UUID |
//! | TEXT (a timestamp, column `*_at`) | TIMESTAMPTZ |
//! | TEXT (a JSON document) | JSON (never JSONB: the store reads its text as stored) |
//! | TEXT (other) | TEXT |
//! | BIGINT | BIGINT |
//! | DOUBLE PRECISION | DOUBLE PRECISION |
//!
//! Full-text search is the one part built differently on purpose, and left out of the
//! comparison: SQLite's FTS5 table `message_search` (with its shadow tables) and
//! PostgreSQL's GIN index `chat_events_search`. The conformance suite tests both.

use std::collections::{BTreeMap, BTreeSet};

use agentbox_store::Backend;
use sqlx::{Connection, Row};

use super::support::TestStore;

/// One table as both backends can describe it.
#[derive(Debug, Default, PartialEq)]
struct TableShape {
    /// name → (type as the mapping names it, nullable)
    columns: BTreeMap<String, (String, bool)>,
    primary_key: Vec<String>,
    foreign_keys: BTreeSet<String>,
    /// name → normalised definition (unique or not, keys, predicate)
    indexes: BTreeMap<String, String>,
    /// (column, allowed values)
    checks: BTreeSet<(String, Vec<String>)>,
}

/// Lower case, no blanks, parentheses, casts to text or schema names: what is left of an
/// index or constraint definition is comparable across the two dialects.
fn normalize(text: &str) -> String {
    text.to_lowercase()
        .replace("::text", "")
        .replace("public.", "")
        .replace("using btree", "")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '(' && *c != ')' && *c != '"')
        .collect()
}

/// `CREATE [UNIQUE] INDEX name ON table ...` → "unique:" or "index:" and what follows the table.
fn index_shape(definition: &str, table: &str) -> String {
    let lower = definition.to_lowercase();
    let unique = lower.starts_with("create unique");
    let on = lower.find(" on ").expect("an index definition names its table") + 4;
    let rest = lower[on..].trim_start().trim_start_matches("public.");
    let rest = rest.strip_prefix(table).expect("the index is on its table");
    format!("{}{}", if unique { "unique:" } else { "index:" }, normalize(rest))
}

/// A `CHECK (column IN ('a', 'b'))` (or PostgreSQL's `= ANY (ARRAY[...])` of it) as its
/// column and values.
fn check_shape(check: &str) -> (String, Vec<String>) {
    let body = &check[check.to_lowercase().find("check").unwrap() + 5..];
    let column: String = body
        .chars()
        .skip_while(|c| !c.is_ascii_alphabetic())
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let mut values: Vec<String> = body.split('\'').skip(1).step_by(2).map(str::to_owned).collect();
    values.sort();
    (column, values)
}

/// The `CHECK (...)` clauses of a `CREATE TABLE` statement.
fn checks_in(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = sql.to_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("check") {
        let start = from + at;
        let word_ends = lower[start + 5..].trim_start().starts_with('(');
        let word_starts = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        if !(word_starts && word_ends) {
            // A column or table named check-something.
            from = start + 5;
            continue;
        }
        let open = start + lower[start..].find('(').unwrap();
        let mut depth = 0;
        let mut end = open;
        for (i, c) in sql[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = open + i + 1;
                break;
            }
        }
        found.push(sql[start..end].to_owned());
        from = end;
    }
    found
}

async fn sqlite_schema(url: &str) -> BTreeMap<String, TableShape> {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'
         AND name NOT LIKE 'message_search%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = BTreeMap::new();
    for table in tables {
        let name: String = table.get("name");
        let sql: String = table.get("sql");
        let mut shape = TableShape::default();
        let mut key = Vec::new();
        let columns = sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
            .bind(&name)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for column in columns {
            let column_name: String = column.get("name");
            let declared: String = column.get("type");
            let not_null: bool = column.get("notnull");
            let pk: i64 = column.get("pk");
            if pk > 0 {
                key.push((pk, column_name.clone()));
            }
            // SQLite lets a primary key column hold NULL unless told otherwise; PostgreSQL
            // never does. Every key column of ours is NOT NULL in meaning.
            shape.columns.insert(column_name, (declared.to_uppercase(), !not_null && pk == 0));
        }
        key.sort();
        shape.primary_key = key.into_iter().map(|(_, c)| c).collect();
        let fks = sqlx::query(
            "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list($1)",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for fk in fks {
            let on_delete: String = fk.get("on_delete");
            let action = if on_delete == "NO ACTION" {
                String::new()
            } else {
                format!("ondelete{on_delete}")
            };
            shape.foreign_keys.insert(normalize(&format!(
                "foreignkey{}references{}{}{action}",
                fk.get::<String, _>("from"),
                fk.get::<String, _>("table"),
                fk.get::<String, _>("to"),
            )));
        }
        let indexes = sqlx::query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for index in indexes {
            shape.indexes.insert(index.get("name"), index_shape(index.get("sql"), &name));
        }
        shape.checks = checks_in(&sql).iter().map(|c| check_shape(c)).collect();
        schema.insert(name, shape);
    }
    schema
}

/// PostgreSQL's full-text index, which SQLite's FTS5 table stands for.
const POSTGRES_SEARCH_INDEX: &str = "chat_events_search";

/// PostgreSQL's type of a column, in the mapping's terms.
fn mapped(pg_type: &str) -> String {
    match pg_type {
        "text" | "uuid" | "timestamp with time zone" | "json" => "TEXT".into(),
        "bigint" => "BIGINT".into(),
        "double precision" => "DOUBLE PRECISION".into(),
        other => format!("unmapped {other}"),
    }
}

async fn postgres_schema(
    url: &str,
) -> (BTreeMap<String, TableShape>, BTreeMap<(String, String), String>) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut schema = BTreeMap::new();
    let mut types = BTreeMap::new();
    let tables = sqlx::query(
        "SELECT table_name::text AS name FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for table in tables {
        let name: String = table.get("name");
        let mut shape = TableShape::default();
        let columns = sqlx::query(
            "SELECT column_name::text AS name, data_type::text AS type, is_nullable::text AS nullable
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for column in columns {
            let column_name: String = column.get("name");
            let pg_type: String = column.get("type");
            let nullable: String = column.get("nullable");
            types.insert((name.clone(), column_name.clone()), pg_type.clone());
            shape.columns.insert(column_name, (mapped(&pg_type), nullable == "YES"));
        }
        shape.primary_key = sqlx::query_scalar(
            "SELECT kcu.column_name::text FROM information_schema.table_constraints tc
             JOIN information_schema.key_column_usage kcu
               ON kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name
             WHERE tc.table_schema = 'public' AND tc.table_name = $1
               AND tc.constraint_type = 'PRIMARY KEY'
             ORDER BY kcu.ordinal_position",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let constraints = sqlx::query(
            "SELECT contype::text AS kind, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE conrelid = ('public.' || $1)::regclass AND contype IN ('c', 'f')",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for constraint in constraints {
            let def: String = constraint.get("def");
            match constraint.get::<String, _>("kind").as_str() {
                "c" => {
                    shape.checks.insert(check_shape(&def));
                }
                _ => {
                    shape.foreign_keys.insert(normalize(&def));
                }
            }
        }
        let indexes = sqlx::query(
            "SELECT c.relname::text AS name, pg_get_indexdef(i.indexrelid) AS def
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = ('public.' || $1)::regclass AND NOT i.indisprimary",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for index in indexes {
            let index_name: String = index.get("name");
            if index_name == POSTGRES_SEARCH_INDEX {
                continue;
            }
            shape.indexes.insert(index_name, index_shape(index.get("def"), &name));
        }
        schema.insert(name, shape);
    }
    (schema, types)
}

#[tokio::test]
async fn the_postgres_schema_matches_the_sqlite_schema() {
    let sqlite = TestStore::new(Backend::Sqlite, "schema_sqlite").await;
    let postgres = TestStore::new(Backend::Postgres, "schema_parity").await;
    let lite = sqlite_schema(&sqlite.url).await;
    let (pg, types) = postgres_schema(&postgres.url).await;
    assert_eq!(lite.keys().collect::<Vec<_>>(), pg.keys().collect::<Vec<_>>(), "the same tables");
    for (table, shape) in &lite {
        assert_eq!(shape, &pg[table], "table {table} differs between SQLite and PostgreSQL");
    }
    // The mapping's finer rules: timestamps are TIMESTAMPTZ, documents JSON, and nothing
    // else changed type but our ids.
    let json_columns =
        ["data", "input", "usage", "visible_messages", "sandbox_allowed_hosts", "command"];
    for ((table, column), pg_type) in &types {
        let expected = if column.ends_with("_at") {
            "timestamp with time zone"
        } else if json_columns.contains(&column.as_str()) {
            "json"
        } else {
            continue;
        };
        assert_eq!(pg_type, expected, "{table}.{column}");
    }
    let uuids: BTreeSet<_> =
        types.iter().filter(|(_, t)| *t == "uuid").map(|((t, c), _)| format!("{t}.{c}")).collect();
    for id in [
        "users.id",
        "chats.id",
        "chats.user_id",
        "messages.id",
        "chat_events.message_id",
        "checkpoints.id",
    ] {
        assert!(uuids.contains(id), "{id} is a UUID");
    }
    // Sanity of the comparison itself: it saw the constraints this schema relies on.
    let messages = &lite["messages"];
    assert_eq!(
        messages.indexes["messages_one_turn_per_chat"],
        "unique:chat_idwherestatus='in_progress'"
    );
    assert!(
        messages.checks.iter().any(|(c, v)| c == "status" && v.len() == 4),
        "{:?}",
        messages.checks
    );
    assert_eq!(lite["chat_events"].primary_key, ["chat_id", "seq"]);
    assert!(!lite["chat_events"].foreign_keys.is_empty());
}

#[test]
fn the_comparison_sees_a_difference() {
    // The normalisation must not hide what matters: a different predicate or key differs.
    assert_ne!(
        index_shape("CREATE UNIQUE INDEX x ON t (a) WHERE status = 'in_progress'", "t"),
        index_shape(
            "CREATE UNIQUE INDEX x ON public.t USING btree (a) WHERE (status = 'done'::text)",
            "t"
        )
    );
    assert_eq!(
        index_shape("CREATE UNIQUE INDEX x ON t (a, COALESCE(b, ''))", "t"),
        index_shape(
            "CREATE UNIQUE INDEX x ON public.t USING btree (a, COALESCE(b, ''::text))",
            "t"
        )
    );
    assert_ne!(
        index_shape("CREATE INDEX x ON t (a)", "t"),
        index_shape("CREATE UNIQUE INDEX x ON public.t USING btree (a)", "t")
    );
    assert_eq!(
        check_shape("CHECK (role IN ('user', 'assistant'))"),
        check_shape("CHECK ((role = ANY (ARRAY['user'::text, 'assistant'::text])))")
    );
}
