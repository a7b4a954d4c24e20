//! agentbox end to end: the assembled server (`agentbox::serve::start`) over real HTTP, with
//! the real Claude Code CLI and the scripted `mock-llm` as the model. One test binary for the
//! whole suite keeps link time down.
// Test helpers may unwrap: a panic is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
