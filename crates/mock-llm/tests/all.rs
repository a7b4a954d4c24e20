//! Integration tests of the mock model over real HTTP, as its users see it.

// Helpers outside `#[test]` functions are test code too: a panic there is a failed test with
// a clear location, which is what `allow-unwrap-in-tests` grants the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
