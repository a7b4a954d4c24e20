//! How accounts come to be and how hard sign-in may be tried: the registration mode, the
//! sign-in rate limits and the client's address they are keyed by; and the cancellation of
//! a user's long-lived connections (SSE streams, terminals) when the account is disabled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::connection::PeerAddress;
use crate::error::ApiError;
use crate::ratelimit::{Clock, Limiter, Rate, SystemClock};

/// Who may create an account (`--registration`). Whatever the mode, the first account of
/// an empty installation can always be created (it becomes the administrator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegistrationMode {
    /// Anyone who can reach the server.
    #[default]
    Open,
    /// Nobody: administrators create accounts.
    Closed,
    /// Whoever holds an unused, unexpired invite from an administrator.
    Invite,
}

impl RegistrationMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "invite" => Some(Self::Invite),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Invite => "invite",
        }
    }

    pub fn from_api(registration: agentbox_protocol::api::Registration) -> Self {
        use agentbox_protocol::api::Registration;
        match registration {
            Registration::Open => Self::Open,
            Registration::Closed => Self::Closed,
            Registration::Invite => Self::Invite,
        }
    }

    pub fn api(self) -> agentbox_protocol::api::Registration {
        use agentbox_protocol::api::Registration;
        match self {
            Self::Open => Registration::Open,
            Self::Closed => Registration::Closed,
            Self::Invite => Registration::Invite,
        }
    }
}

/// The name of the registration mode among the installation's settings.
pub const REGISTRATION_SETTING: &str = "registration";

/// The registration mode in force: as an administrator last set it (read from the database
/// at each use, so every node agrees at once), else `--registration`.
pub async fn registration_mode(
    state: &crate::state::AppState,
) -> Result<RegistrationMode, ApiError> {
    match state.store.server_setting(REGISTRATION_SETTING).await? {
        None => Ok(state.accounts.registration),
        Some(text) => RegistrationMode::parse(&text).ok_or_else(|| {
            ApiError::internal(format!("stored registration mode {text:?} is unknown"))
        }),
    }
}

/// The sign-in limits. Failed passwords count per account and per address; registrations
/// and refreshes per address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInLimits {
    pub login_failures_per_account: Rate,
    pub login_failures_per_address: Rate,
    pub registrations_per_address: Rate,
    pub refreshes_per_address: Rate,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            // Five quick mistakes, then one more try every 30 s.
            login_failures_per_account: Rate::new(5, Duration::from_secs(30)),
            // An office behind one address has many people; a guesser many accounts.
            login_failures_per_address: Rate::new(50, Duration::from_secs(6)),
            registrations_per_address: Rate::new(20, Duration::from_secs(30)),
            refreshes_per_address: Rate::new(60, Duration::from_secs(1)),
        }
    }
}

/// The state of the account rules, shared by the auth and admin handlers.
pub struct Accounts {
    /// `--registration`: the mode until an administrator changes it
    /// ([`registration_mode`] is the one in force).
    pub registration: RegistrationMode,
    /// How long an invite stays usable.
    pub invite_ttl: Duration,
    clock: Arc<dyn Clock>,
    pub(crate) login_account: Limiter,
    pub(crate) login_address: Limiter,
    pub(crate) register_address: Limiter,
    pub(crate) refresh_address: Limiter,
    /// At most one `rate_limited` audit entry a minute per limit and key.
    pub(crate) audited_limits: Limiter,
    /// Turns per user (`--max-running-turns-per-user`, `--max-turns-per-day`,
    /// `--max-spend-per-day-usd`).
    pub limits: crate::limits::TurnLimits,
    /// How long the audit log is kept.
    pub audit: crate::audit::AuditRetention,
    /// Per user, the parent of the tokens their open streams and terminals end on.
    connections: Mutex<HashMap<Uuid, CancellationToken>>,
}

impl Accounts {
    pub fn new(registration: RegistrationMode, limits: SignInLimits) -> Self {
        Self::with_clock(registration, limits, Arc::new(SystemClock))
    }

    /// With a clock of the caller's, which tests move instead of sleeping.
    pub fn with_clock(
        registration: RegistrationMode,
        limits: SignInLimits,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            registration,
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            clock,
            login_account: Limiter::new(limits.login_failures_per_account),
            login_address: Limiter::new(limits.login_failures_per_address),
            register_address: Limiter::new(limits.registrations_per_address),
            refresh_address: Limiter::new(limits.refreshes_per_address),
            audited_limits: Limiter::new(Rate::new(1, Duration::from_secs(60))),
            audit: crate::audit::AuditRetention::default(),
            limits: crate::limits::TurnLimits::default(),
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// A token for one long-lived connection of `user`: cancelled at shutdown or when the
    /// user is disconnected ([`Accounts::disconnect`]).
    pub fn connection(&self, shutdown: &CancellationToken, user: Uuid) -> CancellationToken {
        let mut connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
        // Parents whose every connection ended would pile up; drop them as we go.
        if connections.len() > 1024 {
            connections.retain(|_, parent| !parent.is_cancelled());
        }
        connections.entry(user).or_insert_with(|| shutdown.child_token()).child_token()
    }

    /// End every open stream and terminal of `user`; later connections get a fresh parent.
    pub fn disconnect(&self, user: Uuid) {
        let parent = self.connections.lock().unwrap_or_else(PoisonError::into_inner).remove(&user);
        if let Some(parent) = parent {
            parent.cancel();
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Self::new(RegistrationMode::default(), SignInLimits::default())
    }
}

/// `429 rate_limited` with `Retry-After` in whole seconds (at least one).
pub fn rate_limited(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    ApiError::rate_limited(seconds, format!("Too many attempts. Try again in {seconds} seconds."))
}

/// The address a request came from, as the limits key it: the peer of the connection
/// (no proxy header is trusted), or `unknown` where there is none (a test's router).
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let address = parts.extensions.get::<ConnectInfo<PeerAddress>>().map_or_else(
            || "unknown".to_owned(),
            |ConnectInfo(PeerAddress(peer))| peer.ip().to_string(),
        );
        Ok(Self(address))
    }
}
