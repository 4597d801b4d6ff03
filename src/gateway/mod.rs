//! The Supervisor API gateway and ingress proxy (`addon-sandbox serve`).
//!
//! Every request goes through the same steps, in the Supervisor's order:
//!
//! 1. the Supervisor's bad-request filters (400);
//! 2. `/ingress/<token>/…`: the session cookie, then a proxy to the add-on's ingress server
//!    with `X-Remote-User-*` set from the session and every client copy removed;
//! 3. otherwise the path is normalised to one canonical spelling ([`path`]) that is both
//!    matched and forwarded; the blacklist (403 for all);
//! 4. the caller from its token ([`callers`]): none 401, unknown 403, Home Assistant
//!    unrestricted, an add-on limited to the bypass set and, with `hassio_api`, its plan's role
//!    ([`roles`]), on the path and on its lowercase spelling both;
//! 5. `/auth` answered here ([`auth`], rate limited by [`limit`]); everything else forwarded to
//!    the upstream with the gateway's own credential, never the add-on's token. Without an
//!    upstream (a standalone host) the add-on's own endpoints and the services registry are
//!    answered from the state directory ([`standalone`]) after the same decision, and anything
//!    else is a JSON error.
//!
//! The accept loop and that dispatch are in `server`, step 2 in `ingress`, steps 3 and 4 in
//! `decide` (pure), `/auth` in `login`, and the forwarding of step 5 in `forward`.

pub mod auth;
pub mod callers;
pub mod conn;
mod decide;
mod forward;
mod ingress;
pub mod limit;
pub mod log;
mod login;
pub mod network;
pub mod path;
pub mod proxy;
pub mod roles;
mod server;
mod services;
pub mod sessions;
mod standalone;
mod websocket;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue};
use http::{StatusCode, Uri};
use hyper_util::client::legacy::{Client, connect::HttpConnector};

use callers::{AddonCaller, Registry};
use conn::{ConnLimits, Peers};
use limit::{AuthLimits, Limiter};
use log::{LogFormat, LogLevel, Logger};
use roles::RoleTables;
use sessions::Sessions;

/// The cookie that carries an ingress session, as Home Assistant names it.
pub const SESSION_COOKIE: &str = "ingress_session";
/// Tells the upstream which caller the gateway let through (client copies are removed).
pub const CALLER_HEADER: &str = "x-addon-sandbox-caller";
/// The user headers an add-on may trust because only the gateway can set them.
pub const USER_HEADERS: [&str; 3] = [
    "x-remote-user-id",
    "x-remote-user-name",
    "x-remote-user-display-name",
];
/// Headers that carry a Supervisor credential; never passed on from a client.
const TOKEN_HEADERS: [&str; 2] = ["x-supervisor-token", "x-hassio-key"];
/// Where the add-on's ingress is served from, as the Supervisor tells it; set by the gateway.
pub const INGRESS_PATH_HEADER: &str = "x-ingress-path";
/// Everything only the gateway may say, removed from every client request on every forwarding
/// path (API, Home Assistant proxy, open paths, ingress) in any spelling before anything is set.
const PROTECTED_HEADERS: [&str; 7] = [
    USER_HEADERS[0],
    USER_HEADERS[1],
    USER_HEADERS[2],
    TOKEN_HEADERS[0],
    TOKEN_HEADERS[1],
    CALLER_HEADER,
    INGRESS_PATH_HEADER,
];
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("upstream url {0:?} must be http://host:port with no query")]
    BadUpstream(String),
    #[error("home assistant url {0:?} must be http://host:port with no query")]
    BadHomeassistant(String),
    #[error("auth backend url {0:?} must be http://host:port/path")]
    BadAuthBackend(String),
    #[error("{what} is empty")]
    EmptySecret { what: &'static str },
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where allowed API requests go, e.g. `http://172.30.32.2:80`; None: a standalone host,
    /// where the gateway answers the add-on's own endpoints itself.
    pub upstream: Option<String>,
    /// Home Assistant's URL on a standalone host (for `/core/info`), e.g. `http://172.30.232.1:8123`.
    pub homeassistant: Option<String>,
    /// The add-ons' network a standalone host made (for `/network/info`).
    pub network: Option<network::AddonNetwork>,
    /// Sent upstream as `Authorization: Bearer …` in place of the caller's token.
    pub upstream_token: Option<String>,
    /// Home Assistant's token: unrestricted, and the only caller that may create sessions.
    pub core_token: Option<String>,
    pub state_dir: PathBuf,
    /// The credential backend for `/auth`; without one `/auth` answers 503.
    pub auth_backend: Option<String>,
    pub session_ttl: Duration,
    pub auth_limits: AuthLimits,
    /// Which requests are logged to standard error, and how.
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// Header, body and idle timeouts, and connections per peer.
    pub conn_limits: ConnLimits,
}

impl GatewayConfig {
    /// A gateway to `upstream` for the add-ons of `state_dir`, with no upstream credential,
    /// no core token, no `/auth` backend, the default session lifetime and auth limits, and no
    /// log (an embedding program chooses its own; `serve` logs denials by default).
    pub fn new(upstream: impl Into<String>, state_dir: PathBuf) -> GatewayConfig {
        GatewayConfig {
            upstream: Some(upstream.into()),
            homeassistant: None,
            network: None,
            upstream_token: None,
            core_token: None,
            state_dir,
            auth_backend: None,
            session_ttl: DEFAULT_SESSION_TTL,
            auth_limits: AuthLimits::default(),
            log_level: LogLevel::None,
            log_format: LogFormat::Text,
            conn_limits: ConnLimits::default(),
        }
    }
}

/// Who a request comes from, once its token is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    HomeAssistant,
    Addon(Arc<AddonCaller>),
    /// Nobody: a path the Supervisor serves without a token (ping, frontend files).
    Open,
}

/// What the request's token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Missing,
    Unknown,
    Known(Caller),
}

/// What the gateway does with an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward upstream on behalf of this caller.
    Forward(Caller),
    /// Forward without a caller (the Supervisor's `no_security_check` paths).
    Open,
    /// The Home Assistant proxy, which checks `homeassistant_api` itself.
    CoreProxy,
    /// Answer `/auth` here for this add-on.
    Auth(Arc<AddonCaller>),
    Deny(StatusCode, &'static str),
}

pub struct Gateway {
    upstream: Option<Uri>,
    homeassistant: Option<Uri>,
    network: Option<network::AddonNetwork>,
    state_dir: PathBuf,
    /// The services registry of a standalone gateway (one writer at a time).
    services: std::sync::Mutex<()>,
    upstream_auth: Option<HeaderValue>,
    /// The same credential, for the websocket's auth message.
    upstream_token: Option<String>,
    core_token: Option<String>,
    tables: RoleTables,
    registry: Registry,
    sessions: Sessions,
    auth_backend: Option<auth::HttpBackend>,
    per_user: Limiter<(String, String)>,
    per_addon: Limiter<String>,
    client: Client<HttpConnector, proxy::ReqBody>,
    log: Logger,
    conn_limits: ConnLimits,
    peers: Peers,
}

fn http_base(url: &str) -> Option<Uri> {
    let uri: Uri = url.parse().ok()?;
    (uri.scheme_str() == Some("http") && uri.authority().is_some() && uri.query().is_none())
        .then_some(uri)
}

/// The Supervisor's `extract_supervisor_token`: `X-Supervisor-Token`, else `X-Hassio-Key`,
/// else the last word of `Authorization`.
pub fn extract_token(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    text("x-supervisor-token")
        .or_else(|| text("x-hassio-key"))
        .map(str::to_owned)
        .or_else(|| text("authorization").and_then(|a| a.split(' ').next_back().map(str::to_owned)))
        .filter(|t| !t.is_empty())
}

impl Gateway {
    pub fn new(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let base = |url: &Option<String>, bad: fn(String) -> GatewayError| {
            url.as_deref()
                .map(|u| http_base(u).ok_or_else(|| bad(u.to_owned())))
                .transpose()
        };
        let upstream = base(&config.upstream, GatewayError::BadUpstream)?;
        let homeassistant = base(&config.homeassistant, GatewayError::BadHomeassistant)?;
        for (what, secret) in [
            ("upstream token", &config.upstream_token),
            ("core token", &config.core_token),
        ] {
            if secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(GatewayError::EmptySecret { what });
            }
        }
        let upstream_auth = match &config.upstream_token {
            Some(t) => Some(
                HeaderValue::from_str(&format!("Bearer {}", t.trim())).map_err(|_| {
                    GatewayError::EmptySecret {
                        what: "upstream token",
                    }
                })?,
            ),
            None => None,
        };
        let auth_backend = match &config.auth_backend {
            Some(url) => Some(auth::HttpBackend::new(
                http_base(url).ok_or_else(|| GatewayError::BadAuthBackend(url.clone()))?,
            )),
            None => None,
        };
        Ok(Gateway {
            upstream,
            homeassistant,
            network: config.network,
            state_dir: config.state_dir.clone(),
            services: std::sync::Mutex::new(()),
            upstream_auth,
            upstream_token: config.upstream_token.map(|t| t.trim().to_owned()),
            core_token: config.core_token.map(|t| t.trim().to_owned()),
            tables: RoleTables::new(),
            registry: Registry::new(config.state_dir),
            sessions: Sessions::new(config.session_ttl),
            auth_backend,
            per_user: Limiter::new(config.auth_limits.per_user),
            per_addon: Limiter::new(config.auth_limits.per_addon),
            client: proxy::client(),
            log: Logger::new(config.log_level, config.log_format),
            conn_limits: config.conn_limits,
            peers: Peers::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_supervisors_three_headers_in_order() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer a".parse().unwrap());
        assert_eq!(extract_token(&h).as_deref(), Some("a"));
        h.insert("x-hassio-key", "b".parse().unwrap());
        assert_eq!(extract_token(&h).as_deref(), Some("b"));
        h.insert("x-supervisor-token", "c".parse().unwrap());
        assert_eq!(extract_token(&h).as_deref(), Some("c"));
    }
}
