//! The suite's modules; `support` holds the fixtures and the `conformance!` macro.

#[macro_use]
mod support;

mod delivery;
mod outage;
