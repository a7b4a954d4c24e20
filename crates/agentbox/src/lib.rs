//! The `agentbox` binary's library half: configuration and the assembled server, so that
//! integration tests and benchmarks start exactly what `agentbox serve` starts.

pub mod config;
pub mod migrate;
pub mod rotate;
pub mod serve;
