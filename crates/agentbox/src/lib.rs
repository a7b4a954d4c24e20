//! The `agentbox` binary's library half: configuration and the assembled server, so that
//! integration tests and benchmarks start exactly what `agentbox serve` starts.

pub mod backup;
pub mod config;
pub mod doctor;
pub mod migrate;
pub mod rotate;
pub mod serve;
pub mod user;
