//! The checkpoint store against real directories: rounds of changes restored byte for byte,
//! symlinks that point outside, garbage collection, retention, and a process killed in the
//! middle of a checkpoint. One test binary keeps link time down.
// Test helpers may unwrap: a panic is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
