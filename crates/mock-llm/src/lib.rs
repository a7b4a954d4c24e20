//! agentbox's scripted Anthropic Messages API server: a mock model, not a real one.
//!
//! The real Claude Code CLI pointed at this server (`ANTHROPIC_BASE_URL`) runs real tools on
//! scripted replies, so the whole product can be tested end to end, offline. What the mock
//! answers is decided by markers in the user's prompt (see [`markers`]), by a scenario file
//! (see [`ScenarioFile`]) or by a default [`Script`]. Every response carries the header
//! `x-mock-llm: scripted`, and the default reply says it is scripted, so nobody mistakes it for
//! a real model.
//!
//! Use [`MockLlm::start`] in tests, [`serve`] for a standalone process, and [`router`] to
//! embed it in another axum server.

mod conversation;
pub mod markers;
mod record;
mod reply;
mod scenario;
mod script;
mod server;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use record::{DEFAULT_RECORD_LIMIT, RecordedRequest, RequestLog};
pub use scenario::ScenarioFile;
pub use script::{Block, MOCK_SIGNATURE, Script, Step, StepError, error_type_for_status};
pub use server::{FALLBACK_TEXT, LABEL_HEADER, built_in_default};

/// How the mock is set up.
#[derive(Clone, Debug, Default)]
pub struct MockOptions {
    /// A JSON scenario file with a default script and named scripts.
    pub scenario_file: Option<PathBuf>,
    /// The reply to prompts without markers; it wins over the scenario file's `default`,
    /// which wins over the built-in default.
    pub default_script: Option<Script>,
}

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// Binding the listening socket failed.
    #[error("mock-llm cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: io::Error,
    },
    /// Any other I/O error while serving.
    #[error("mock-llm I/O error: {0}")]
    Io(#[from] io::Error),
    /// The scenario file could not be read.
    #[error("cannot read the mock-llm scenario file {path}: {source}")]
    ScenarioRead {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The scenario file is not valid scenario JSON.
    #[error("cannot parse the mock-llm scenario file {path}: {source}")]
    ScenarioParse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: serde_json::Error,
    },
}

/// Builds the mock's router, for embedding in another server, and the log it records into.
pub fn router(options: MockOptions) -> Result<(axum::Router, RequestLog), MockError> {
    let scenario = match &options.scenario_file {
        Some(path) => ScenarioFile::load(path)?,
        None => ScenarioFile::default(),
    };
    let default_script =
        options.default_script.or(scenario.default).unwrap_or_else(built_in_default);
    Ok(server::build(default_script, scenario.scripts))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, MockError> {
    TcpListener::bind(addr).await.map_err(|source| MockError::Bind { addr, source })
}

/// Serves the mock on `addr` until `shutdown` completes; for `agentbox mock-llm`.
pub async fn serve(
    addr: SocketAddr,
    options: MockOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MockError> {
    let (app, _log) = router(options)?;
    let listener = bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        base_url = %base_url_for(local),
        "mock-llm (scripted Anthropic Messages API, not a real model) is listening"
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// The URL a client uses to reach `addr`: a wildcard address is reached on loopback.
fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// How long [`MockLlm::shutdown`] lets replies in flight finish before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A mock server running in the background of the current tokio runtime.
///
/// Dropping it stops the server at once; [`MockLlm::shutdown`] lets replies in flight finish.
#[derive(Debug)]
pub struct MockLlm {
    addr: SocketAddr,
    log: RequestLog,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockLlm {
    /// Starts a mock with the default options on a free loopback port.
    pub async fn start() -> io::Result<MockLlm> {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Self::start_with(addr, MockOptions::default()).await.map_err(|error| match error {
            MockError::Bind { source, .. } | MockError::Io(source) => source,
            other => io::Error::other(other),
        })
    }

    /// Starts a mock with `options` on `addr` (port 0 picks a free port).
    pub async fn start_with(addr: SocketAddr, options: MockOptions) -> Result<MockLlm, MockError> {
        let (app, log) = router(options)?;
        let listener = bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender also means stop, so the error case needs no handling.
            let _ = stopped.await;
        };
        let task = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        });
        Ok(MockLlm { addr, log, stop: Some(stop), task: Some(task) })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for `ANTHROPIC_BASE_URL`, for example `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        base_url_for(self.addr)
    }

    /// The handle on the request log, to share with code that outlives this borrow.
    pub fn log(&self) -> RequestLog {
        self.log.clone()
    }

    /// Every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.requests()
    }

    /// Only the Messages API calls (`POST /v1/messages`), in arrival order.
    pub fn message_requests(&self) -> Vec<RecordedRequest> {
        self.log.message_requests()
    }

    /// Forgets the recorded requests and the per-prompt attempt counts.
    pub fn clear_requests(&self) {
        self.log.clear();
    }

    /// Stops accepting connections and waits a few seconds for replies in flight.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped; nothing is left to tell it then.
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        // Aborting the accept loop closes the listening socket at once; the stop sender,
        // dropped along with `self`, then tells the open connections to close once their
        // current reply is done.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_uses_loopback_for_wildcards() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(base_url_for(any), "http://127.0.0.1:8080");
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(base_url_for(any6), "http://[::1]:8080");
        let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(base_url_for(local), "http://127.0.0.1:9");
    }

    #[test]
    fn options_pick_the_default_script() {
        let (_, _) = router(MockOptions::default()).unwrap();
        let missing = MockOptions {
            scenario_file: Some(PathBuf::from("/nonexistent/mock-llm/scenario.json")),
            default_script: None,
        };
        assert!(matches!(router(missing), Err(MockError::ScenarioRead { .. })));
    }
}
