//! The whole router on real state (SQLite, the turn runner, checkpoints) on the `host`
//! provider without a CLI, driven with `tower::ServiceExt::oneshot`, and a client that
//! signs in as different people. Shared by the auth and authorization-matrix tests.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use agentbox_bus::EventBus;
use agentbox_runs::{CheckpointSettings, RunnerConfig, TurnRunner};
use agentbox_sandbox::host::HostProvider;
use agentbox_server::{
    Accounts, AppState, AuthKeys, ManualClock, RegistrationMode, ServerInfo, SignInLimits,
    TerminalRegistry, component,
};
use agentbox_store::Store;
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The key the test server signs tokens with.
pub const KEY: [u8; 32] = [7; 32];
pub const PASSWORD: &str = "correct horse";

pub struct App {
    pub router: Router,
    /// A worker node's router on the same state.
    pub worker: Router,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The error code of a JSON error answer (panics on anything else).
    pub fn code(&self) -> String {
        let body = self.json();
        body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{} {body}", self.status))
            .to_owned()
    }
}

impl App {
    pub async fn new() -> Self {
        Self::with(RegistrationMode::Open).await
    }

    pub async fn with(registration: RegistrationMode) -> Self {
        Self::with_limits(registration, agentbox_server::TurnLimits::default()).await
    }

    pub async fn with_limits(
        registration: RegistrationMode,
        limits: agentbox_server::TurnLimits,
    ) -> Self {
        Self::in_dir(tempfile::tempdir().unwrap(), registration, limits, |_| {}).await
    }

    /// An open server whose state `adjust` changed before the router was built.
    pub async fn with_state(adjust: impl FnOnce(&mut AppState)) -> Self {
        Self::in_dir(
            tempfile::tempdir().unwrap(),
            RegistrationMode::Open,
            Default::default(),
            adjust,
        )
        .await
    }

    /// The same installation (its database and sandboxes) served by a new process's state:
    /// what a restart with these flags would serve.
    pub async fn restarted(self, registration: RegistrationMode) -> Self {
        let Self { store, _dir: dir, .. } = self;
        store.close().await;
        Self::in_dir(dir, registration, agentbox_server::TurnLimits::default(), |_| {}).await
    }

    async fn in_dir(
        dir: tempfile::TempDir,
        registration: RegistrationMode,
        limits: agentbox_server::TurnLimits,
        adjust: impl FnOnce(&mut AppState),
    ) -> Self {
        let store = Store::open(dir.path().join("db.sqlite").to_str().unwrap()).await.unwrap();
        let bus = Arc::new(EventBus::new());
        let sandboxes =
            Arc::new(HostProvider::new(dir.path().join("sandboxes"), Default::default()));
        let runner = TurnRunner::new(
            store.clone(),
            bus.clone(),
            sandboxes.clone(),
            RunnerConfig {
                checkpoints: CheckpointSettings {
                    root: Some(dir.path().join("checkpoints")),
                    ..CheckpointSettings::default()
                },
                ..RunnerConfig::default()
            },
        );
        let clock = Arc::new(ManualClock::new());
        let hour = Duration::from_secs(3600);
        let scheduler = agentbox_runs::schedule::Scheduler::new(
            store.clone(),
            runner.clone(),
            Arc::new(agentbox_runs::schedule::SystemWallClock),
            Default::default(),
        );
        let mut state = AppState {
            scheduler,
            store: store.clone(),
            bus,
            runner,
            auth: Arc::new(AuthKeys::new(&KEY, hour, hour)),
            accounts: Arc::new({
                let mut accounts =
                    Accounts::with_clock(registration, SignInLimits::default(), clock.clone());
                accounts.limits = limits;
                accounts
            }),
            limits: Default::default(),
            info: Arc::new(ServerInfo {
                version: "test".into(),
                default_model: "claude-test".into(),
                cli: component("unavailable", "no CLI in these tests"),
                model: component("not_configured", "no model in these tests"),
            }),
            shutdown: CancellationToken::new(),
            draining: CancellationToken::new(),
            metrics: agentbox_server::MetricsAccess::new(None),
            terminals: TerminalRegistry::new(Duration::from_secs(1)),
            previews: Arc::new(agentbox_server::Previews::new(&KEY, None)),
        };
        adjust(&mut state);
        agentbox_server::LimitAdmission::install(&state, sandboxes);
        let worker = agentbox_server::worker_app(state.clone());
        Self { router: agentbox_server::app(state), worker, store, clock, _dir: dir }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(body).unwrap())
            }
            None => Body::empty(),
        };
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let stream = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        // An event stream never ends: its status and headers are the answer.
        let body = if stream {
            Vec::new()
        } else {
            axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()
        };
        Answer { status, headers, body }
    }

    pub async fn register(&self, email: &str) -> Answer {
        self.call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": email, "password": PASSWORD})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Answer {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": email, "password": password})),
        )
        .await
    }

    /// Register (if need be and registration is open) and sign in: the access and refresh
    /// tokens.
    pub async fn user(&self, email: &str) -> Tokens {
        let registered = self.register(email).await;
        assert!(
            registered.status == StatusCode::CREATED
                || ["email_taken", "registration_closed"].contains(&registered.code().as_str()),
            "{}",
            registered.json()
        );
        let signed_in = self.login(email, PASSWORD).await;
        assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.json());
        let body = signed_in.json();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            id: self
                .call(Method::GET, "/api/v1/auth/me", body["access_token"].as_str(), None)
                .await
                .json()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        self.call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": refresh_token})),
        )
        .await
    }
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub id: String,
}
