//! How accounts come to be and how hard sign-in may be tried: the registration mode, the
//! sign-in rate limits and the client's address they are keyed by; and the cancellation of
//! a user's long-lived connections (SSE streams, terminals) when the account is disabled.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;
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
    /// `--trusted-proxies`: peers whose `X-Forwarded-For` names the client for the
    /// sign-in limits. Empty (the default): the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
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
            trusted_proxies: Vec::new(),
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

/// The address a request came from, as the limits key it: the peer of the connection, or
/// where that peer is a trusted proxy (`--trusted-proxies`), the rightmost address of
/// `X-Forwarded-For` that is not one (every proxy appends the address it saw, so the
/// hops left of the first untrusted one are whatever the client wrote); `unknown` where
/// there is no peer (a test's router).
pub struct ClientAddress(pub String);

impl FromRequestParts<crate::state::AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(PeerAddress(peer))) =
            parts.extensions.get::<ConnectInfo<PeerAddress>>()
        else {
            return Ok(Self("unknown".to_owned()));
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        Ok(Self(client_ip(peer.ip(), &forwarded, &state.accounts.trusted_proxies).to_string()))
    }
}

/// The client's address: `peer`, or when `peer` is trusted, the rightmost hop of the
/// `X-Forwarded-For` values (`forwarded`, in header order) that is not trusted. A hop that
/// is not an address stops the walk at the trusted hop that reported it; all hops trusted
/// gives the leftmost.
pub fn client_ip(peer: IpAddr, forwarded: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    // Bounded: a header line is at most the server's header size limit.
    for hop in forwarded.iter().rev().flat_map(|value| value.rsplit(',')) {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return client;
        };
        client = ip;
        if !is_trusted(&client) {
            return client;
        }
    }
    client
}

/// `--trusted-proxies`: comma-separated CIDR ranges (`10.0.0.0/8`) or single addresses
/// (`192.0.2.7`, `::1`).
pub fn parse_trusted_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("{part:?} is not an IP address or a CIDR range"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(text: &str) -> Vec<IpNet> {
        parse_trusted_proxies(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn trusted_proxies_parse_ranges_and_addresses() {
        let parsed = nets(" 10.0.0.0/8, 192.0.2.7 ,::1,fd00::/8,");
        let shown: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "::1/128", "fd00::/8"]);
        assert_eq!(nets("10.1.2.3/8")[0].to_string(), "10.0.0.0/8");
        assert!(nets("").is_empty());
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/8,nope", "1.2.3"] {
            assert!(parse_trusted_proxies(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = nets("10.0.0.0/8");
        let proxy = ip("10.0.0.2");
        // Not trusted: the header is whatever the client wrote.
        assert_eq!(client_ip(ip("203.0.113.9"), &["198.51.100.1"], &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), &["198.51.100.1"], &[]), ip("10.0.0.2"));
        // Trusted: the hop the proxy saw, past other trusted proxies, never a forged left part.
        assert_eq!(client_ip(proxy, &["198.51.100.1"], &trusted), ip("198.51.100.1"));
        assert_eq!(
            client_ip(proxy, &["1.1.1.1, 198.51.100.1, 10.0.0.7"], &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(proxy, &["1.1.1.1", "198.51.100.1,10.9.9.9"], &trusted),
            ip("198.51.100.1")
        );
        // No header, garbage, all trusted.
        assert_eq!(client_ip(proxy, &[], &trusted), proxy);
        assert_eq!(client_ip(proxy, &["1.1.1.1, garbage"], &trusted), proxy);
        assert_eq!(client_ip(proxy, &["10.0.0.9, 10.0.0.8"], &trusted), ip("10.0.0.9"));
    }
}
