//! The store's conformance suite: every test is one async function over [`Store`], run
//! against SQLite (a temporary file) and PostgreSQL (a database created for the test and
//! dropped after it). PostgreSQL comes from `AGENTBOX_TEST_POSTGRES_URL` (default: the local
//! server); without it the PostgreSQL half fails, it never skips.
// Test helpers may unwrap: a panic is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
