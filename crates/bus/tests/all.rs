//! The bus's conformance suite: every test in `conformance!` is one async function over an
//! [`EventBus`], run on the in-process bus and on Redis Streams (127.0.0.1:6379, or
//! `AGENTBOX_TEST_REDIS_URL`; each test under a key prefix of its own, deleted after it).
//! Without Redis the Redis half fails, it never skips. The outage tests are Redis-only:
//! they cut the bus off Redis through a proxy the test controls, never Redis itself.
// Test helpers may unwrap: a panic is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
