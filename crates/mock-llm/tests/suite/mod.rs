//! The integration test modules and their shared helpers.

mod errors;
mod recording;
mod scenarios;
mod streaming;
mod support;
