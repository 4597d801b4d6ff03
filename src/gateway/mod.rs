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
//!    the upstream with the gateway's own credential, never the add-on's token.

pub mod auth;
pub mod callers;
pub mod limit;
pub mod path;
pub mod proxy;
pub mod roles;
pub mod sessions;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use callers::{AddonCaller, Registry};
use limit::{AuthLimits, Limiter};
use proxy::{ResBody, error};
use roles::RoleTables;
use sessions::{SessionUser, Sessions};

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
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("upstream url {0:?} must be http://host:port with no query")]
    BadUpstream(String),
    #[error("auth backend url {0:?} must be http://host:port/path")]
    BadAuthBackend(String),
    #[error("{what} is empty")]
    EmptySecret { what: &'static str },
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where allowed API requests go, e.g. `http://172.30.32.2:80`.
    pub upstream: String,
    /// Sent upstream as `Authorization: Bearer …` in place of the caller's token.
    pub upstream_token: Option<String>,
    /// Home Assistant's token: unrestricted, and the only caller that may create sessions.
    pub core_token: Option<String>,
    pub state_dir: PathBuf,
    /// The credential backend for `/auth`; without one `/auth` answers 503.
    pub auth_backend: Option<String>,
    pub session_ttl: Duration,
    pub auth_limits: AuthLimits,
}

impl GatewayConfig {
    /// A gateway to `upstream` for the add-ons of `state_dir`, with no upstream credential,
    /// no core token, no `/auth` backend, and the default session lifetime and auth limits.
    pub fn new(upstream: impl Into<String>, state_dir: PathBuf) -> GatewayConfig {
        GatewayConfig {
            upstream: upstream.into(),
            upstream_token: None,
            core_token: None,
            state_dir,
            auth_backend: None,
            session_ttl: DEFAULT_SESSION_TTL,
            auth_limits: AuthLimits::default(),
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
    upstream: Uri,
    upstream_auth: Option<HeaderValue>,
    core_token: Option<String>,
    tables: RoleTables,
    registry: Registry,
    sessions: Sessions,
    auth_backend: Option<auth::HttpBackend>,
    per_user: Limiter<(String, String)>,
    per_addon: Limiter<String>,
    client: Client<HttpConnector, Incoming>,
}

fn http_base(url: &str) -> Option<Uri> {
    let uri: Uri = url.parse().ok()?;
    (uri.scheme_str() == Some("http") && uri.authority().is_some() && uri.query().is_none())
        .then_some(uri)
}

/// Equal without an early exit, so timing does not tell how much of a token was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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

/// The `ingress_session` cookie's value, from any `Cookie` header.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The client's cookies without the session: the add-on must not receive a credential that
/// opens every other add-on's ingress.
fn drop_session_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split_once('=').map_or(*pair, |(n, _)| n) != SESSION_COOKIE)
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// `/ingress/<token>/<rest>` or `/v2/ingress/<token>/<rest>`, from the raw path.
fn ingress_route(raw_path: &str) -> Option<(&str, &str)> {
    let after = raw_path
        .strip_prefix("/ingress/")
        .or_else(|| raw_path.strip_prefix("/v2/ingress/"))?;
    let (token, _) = after.split_once('/')?;
    let valid = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then(|| (token, &after[token.len()..]))
}

fn is_ingress_path(canonical: &str) -> bool {
    canonical.starts_with("/ingress/") || canonical.starts_with("/v2/ingress/")
}

impl Gateway {
    pub fn new(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let upstream = http_base(&config.upstream)
            .ok_or_else(|| GatewayError::BadUpstream(config.upstream.clone()))?;
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
            upstream_auth,
            core_token: config.core_token.map(|t| t.trim().to_owned()),
            tables: RoleTables::new(),
            registry: Registry::new(config.state_dir),
            sessions: Sessions::new(config.session_ttl),
            auth_backend,
            per_user: Limiter::new(config.auth_limits.per_user),
            per_addon: Limiter::new(config.auth_limits.per_addon),
            client: proxy::client(),
        })
    }

    /// Accept connections until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    // Out of descriptors or a connection reset before accept: keep serving.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    /// Decide and answer one request.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<ResBody> {
        let raw_path = request.uri().path().to_owned();
        let query = request.uri().query().map(str::to_owned);
        if let Err(e) = path::check_filters(&raw_path, query.as_deref()) {
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
        match raw_path.as_str() {
            "/ingress/session" => return self.session_endpoint(request, false).await,
            "/ingress/validate_session" => return self.session_endpoint(request, true).await,
            _ => {}
        }
        if let Some((token, rest)) = ingress_route(&raw_path) {
            let (token, rest) = (token.to_owned(), rest.to_owned());
            return self
                .ingress(request, peer.ip(), &token, &rest, query.as_deref())
                .await;
        }
        let canonical = match path::normalise(&raw_path) {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let presented = match extract_token(request.headers()) {
            None => Presented::Missing,
            Some(t) => self.caller(&t).map_or(Presented::Unknown, Presented::Known),
        };
        match self.decide(&canonical, presented) {
            Decision::Forward(caller) => {
                self.forward_api(request, peer.ip(), &canonical, &caller)
                    .await
            }
            Decision::Open => {
                self.forward_api(request, peer.ip(), &canonical, &Caller::Open)
                    .await
            }
            Decision::CoreProxy => self.core_proxy(request, peer.ip(), &canonical).await,
            Decision::Auth(addon) => self.auth(request, &addon).await,
            Decision::Deny(status, why) => error(status, why),
        }
    }

    /// What happens to an API request (ingress aside), from its canonical path and the caller
    /// its token names. Pure: the tests hold it against the Supervisor's own regexes.
    pub fn decide(&self, canonical: &str, presented: Presented) -> Decision {
        let lower = canonical.to_ascii_lowercase();
        if self.tables.blacklist.matches(canonical) || self.tables.blacklist.matches(&lower) {
            return Decision::Deny(StatusCode::FORBIDDEN, "blocked for every caller");
        }
        let tables = self.tables.for_path(canonical);
        if matches!(canonical, "/auth" | "/v2/auth") {
            return match presented {
                Presented::Missing => Decision::Deny(StatusCode::UNAUTHORIZED, "no token"),
                Presented::Unknown => Decision::Deny(StatusCode::FORBIDDEN, "unknown token"),
                Presented::Known(Caller::Addon(addon)) => Decision::Auth(addon),
                Presented::Known(_) => {
                    Decision::Deny(StatusCode::FORBIDDEN, "can't use home assistant auth")
                }
            };
        }
        if tables.no_security_check.matches(canonical) {
            let core_proxy = ["/homeassistant/api/", "/core/api/"]
                .iter()
                .any(|p| canonical.starts_with(p))
                || matches!(canonical, "/homeassistant/websocket" | "/core/websocket");
            if core_proxy {
                return Decision::CoreProxy;
            }
            if is_ingress_path(canonical) {
                // Only the literal spelling routes to ingress (before this point); another
                // spelling of it is a trick, and forwarding it would reach the upstream's own
                // ingress past our header rules.
                return Decision::Deny(
                    StatusCode::BAD_REQUEST,
                    "ingress path is not in canonical form",
                );
            }
            return Decision::Open;
        }
        let caller = match presented {
            Presented::Missing => return Decision::Deny(StatusCode::UNAUTHORIZED, "no token"),
            Presented::Unknown => return Decision::Deny(StatusCode::FORBIDDEN, "unknown token"),
            Presented::Known(caller) => caller,
        };
        if let Caller::Addon(addon) = &caller
            && let Err(why) = self.addon_may(addon, canonical, &lower)
        {
            return Decision::Deny(StatusCode::FORBIDDEN, why);
        }
        Decision::Forward(caller)
    }

    /// The caller a token names, if any.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        if self
            .core_token
            .as_deref()
            .is_some_and(|core| same_secret(core, token))
        {
            return Some(Caller::HomeAssistant);
        }
        self.registry.by_token(token).map(Caller::Addon)
    }

    /// The add-on part of the Supervisor's `token_validation`, on both spellings of the path.
    pub fn addon_may(
        &self,
        addon: &AddonCaller,
        canonical: &str,
        lower: &str,
    ) -> Result<(), &'static str> {
        let tables = self.tables.for_path(canonical);
        let allowed = |p: &str| {
            tables.api_bypass.matches(p) || (addon.hassio_api && tables.role(addon.role).matches(p))
        };
        if tables.core_only.matches(canonical) || tables.core_only.matches(lower) {
            return Err("only home assistant may call this");
        }
        if addon.strict && self.own_security(addon, lower) {
            return Err("an add-on may not change its own protection mode");
        }
        if !(allowed(canonical) && allowed(lower)) {
            return Err(if addon.hassio_api {
                "the add-on's role does not reach this path"
            } else {
                "the add-on has no hassio_api"
            });
        }
        Ok(())
    }

    fn own_security(&self, addon: &AddonCaller, lower: &str) -> bool {
        let rest = lower
            .strip_prefix("/v2/apps/")
            .or_else(|| lower.strip_prefix("/addons/"));
        rest.and_then(|r| r.strip_suffix("/security"))
            .is_some_and(|slug| slug == "self" || slug == addon.full_slug.to_ascii_lowercase())
    }

    /// The Supervisor's Home Assistant proxy (`/core/api/…`, `/core/websocket`) skips its
    /// token middleware and checks for itself that the token (`Authorization` or `X-Ha-Access`)
    /// belongs to an add-on with `homeassistant_api`; so does this.
    async fn core_proxy(
        &self,
        request: Request<Incoming>,
        peer: IpAddr,
        canonical: &str,
    ) -> Response<ResBody> {
        let token = extract_token(request.headers()).or_else(|| {
            request
                .headers()
                .get("x-ha-access")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let Some(token) = token else {
            return error(StatusCode::UNAUTHORIZED, "no token");
        };
        match self.caller(&token) {
            Some(Caller::Addon(addon)) if addon.homeassistant_api => {
                self.forward_api(request, peer, canonical, &Caller::Addon(addon))
                    .await
            }
            Some(Caller::Addon(_)) => {
                error(StatusCode::FORBIDDEN, "the add-on has no homeassistant_api")
            }
            Some(_) => error(
                StatusCode::FORBIDDEN,
                "home assistant does not proxy to itself",
            ),
            None => error(StatusCode::FORBIDDEN, "unknown token"),
        }
    }

    fn upstream_uri(&self, canonical: &str, query: Option<&str>) -> Option<Uri> {
        let base = self.upstream.path().trim_end_matches('/');
        let mut target = format!(
            "{}://{}{base}{}",
            self.upstream.scheme_str().unwrap_or("http"),
            self.upstream.authority()?,
            path::encode(canonical)
        );
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        target.parse().ok()
    }

    async fn forward_api(
        &self,
        request: Request<Incoming>,
        peer: IpAddr,
        canonical: &str,
        caller: &Caller,
    ) -> Response<ResBody> {
        let Some(target) = self.upstream_uri(canonical, request.uri().query()) else {
            return error(StatusCode::BAD_REQUEST, "query cannot be forwarded");
        };
        let websocket = proxy::is_websocket(request.headers());
        let (mut parts, body) = request.into_parts();
        proxy::strip_hop_by_hop(&mut parts.headers);
        for name in
            TOKEN_HEADERS
                .into_iter()
                .chain(["authorization", "x-ha-access", CALLER_HEADER, "host"])
        {
            parts.headers.remove(name);
        }
        // Paths anyone may fetch (ping, logos) go up without the gateway's credential.
        if let Some(auth) = self
            .upstream_auth
            .as_ref()
            .filter(|_| *caller != Caller::Open)
        {
            parts.headers.insert(header::AUTHORIZATION, auth.clone());
        }
        let who = match caller {
            Caller::HomeAssistant => "homeassistant".to_owned(),
            Caller::Addon(a) => format!("addon:{}", a.full_slug),
            Caller::Open => "none".to_owned(),
        };
        if let Ok(v) = HeaderValue::from_str(&who) {
            parts.headers.insert(CALLER_HEADER, v);
        }
        self.send(parts, body, peer, target, websocket).await
    }

    /// The last step of both proxies: `X-Forwarded-For`, the target, and a pooled request or a
    /// websocket relay.
    async fn send(
        &self,
        mut parts: http::request::Parts,
        body: Incoming,
        peer: IpAddr,
        target: Uri,
        websocket: bool,
    ) -> Response<ResBody> {
        proxy::append_forwarded_for(&mut parts.headers, peer);
        parts.uri = target.clone();
        let request = Request::from_parts(parts, body);
        if websocket {
            proxy::forward_upgrade(request, &target).await
        } else {
            proxy::forward(&self.client, request).await
        }
    }

    async fn auth(&self, request: Request<Incoming>, addon: &AddonCaller) -> Response<ResBody> {
        if !addon.auth_api {
            return error(StatusCode::FORBIDDEN, "can't use home assistant auth");
        }
        if request.method() != Method::GET && request.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "use get or post");
        }
        let Some(backend) = &self.auth_backend else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no credential backend configured",
            );
        };
        let (parts, body) = request.into_parts();
        let credentials = match auth::read_credentials(&parts.headers, body).await {
            Ok(c) => c,
            Err(e) => {
                let mut response = error(e.status(), &e.to_string());
                if e.status() == StatusCode::UNAUTHORIZED {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"Home Assistant Authentication\""),
                    );
                }
                return response;
            }
        };
        let user_key = (addon.full_slug.clone(), credentials.username.clone());
        let limited = self
            .per_addon
            .check(&addon.full_slug)
            .and_then(|_| self.per_user.check(&user_key));
        if let Err(wait) = limited {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins, wait",
            );
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return response;
        }
        match backend.check(&credentials, &addon.full_slug).await {
            auth::Verdict::Match => proxy::ok(serde_json::json!({})),
            auth::Verdict::NoMatch => {
                self.per_addon.fail(&addon.full_slug);
                self.per_user.fail(&user_key);
                error(StatusCode::UNAUTHORIZED, "invalid username or password")
            }
            auth::Verdict::Unavailable(why) => error(StatusCode::SERVICE_UNAVAILABLE, &why),
        }
    }

    /// `POST /ingress/session` and `/ingress/validate_session`: Home Assistant only.
    async fn session_endpoint(
        &self,
        request: Request<Incoming>,
        validate: bool,
    ) -> Response<ResBody> {
        match extract_token(request.headers()).map(|t| self.caller(&t)) {
            None => return error(StatusCode::UNAUTHORIZED, "no token"),
            Some(Some(Caller::HomeAssistant)) => {}
            Some(_) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "only home assistant manages ingress sessions",
                );
            }
        }
        if request.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "use post");
        }
        let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        };
        let json: serde_json::Value = if body.is_empty() {
            serde_json::json!({})
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body is not json: {e}")),
            }
        };
        if validate {
            let id = json.get("session").and_then(|s| s.as_str()).unwrap_or("");
            return match self.sessions.check(id) {
                Some(_) => proxy::ok(serde_json::json!({})),
                None => error(StatusCode::UNAUTHORIZED, "session expired or unknown"),
            };
        }
        let user = match session_user(&json) {
            Ok(u) => u,
            Err(why) => return error(StatusCode::BAD_REQUEST, why),
        };
        match self.sessions.create(user) {
            Ok(id) => proxy::ok(serde_json::json!({
                "session": id,
                "expires_in": self.sessions.ttl().as_secs(),
            })),
            Err(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no randomness for a session",
            ),
        }
    }

    async fn ingress(
        &self,
        request: Request<Incoming>,
        peer: IpAddr,
        token: &str,
        rest: &str,
        query: Option<&str>,
    ) -> Response<ResBody> {
        let user = match session_cookie(request.headers()).and_then(|id| self.sessions.check(id)) {
            Some(user) => user,
            None => return error(StatusCode::UNAUTHORIZED, "no valid ingress session"),
        };
        let Some(addon) = self.registry.by_ingress_token(token) else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no add-on serves this ingress token",
            );
        };
        let Some(address) = addon.ingress_address.as_deref() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the add-on has no ingress address",
            );
        };
        let mut target = format!("http://{address}{rest}");
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        let Ok(target) = target.parse::<Uri>() else {
            return error(StatusCode::BAD_REQUEST, "path cannot be forwarded");
        };
        let websocket = proxy::is_websocket(request.headers());
        let (mut parts, body) = request.into_parts();
        proxy::strip_hop_by_hop(&mut parts.headers);
        // HeaderMap names are lowercase whatever the client sent, so these removals catch
        // every spelling (`x-REMOTE-user-ID` included) and every repeated copy.
        for name in USER_HEADERS
            .into_iter()
            .chain(TOKEN_HEADERS)
            .chain([CALLER_HEADER])
        {
            parts.headers.remove(name);
        }
        drop_session_cookie(&mut parts.headers);
        if let Some(user) = user {
            set_user_headers(&mut parts.headers, &user);
        }
        self.send(parts, body, peer, target, websocket).await
    }
}

fn set_user_headers(headers: &mut HeaderMap, user: &SessionUser) {
    let values = [
        Some(&user.id),
        user.name.as_ref(),
        user.display_name.as_ref(),
    ];
    for (name, value) in USER_HEADERS.iter().zip(values) {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

/// The user of a new session: `user_id` (required for user headers), `user_name`,
/// `display_name`. Values must be usable as header values: they are checked here, when the
/// session is made, so a session never silently lacks a header it was meant to carry.
fn session_user(json: &serde_json::Value) -> Result<Option<SessionUser>, &'static str> {
    let field = |name: &str| -> Result<Option<String>, &'static str> {
        match json.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s))
                if HeaderValue::from_str(s).is_ok() && !s.is_empty() =>
            {
                Ok(Some(s.clone()))
            }
            Some(_) => Err("user fields must be non-empty strings without control characters"),
        }
    };
    let id = field("user_id")?;
    let name = field("user_name")?;
    let display_name = field("display_name")?;
    match id {
        Some(id) => Ok(Some(SessionUser {
            id,
            name,
            display_name,
        })),
        None if name.is_some() || display_name.is_some() => Err("user_name needs a user_id"),
        None => Ok(None),
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

    #[test]
    fn ingress_routes_only_on_the_literal_prefix() {
        assert_eq!(
            ingress_route("/ingress/abc-_9/x/y"),
            Some(("abc-_9", "/x/y"))
        );
        assert_eq!(ingress_route("/v2/ingress/abc/"), Some(("abc", "/")));
        assert_eq!(ingress_route("/ingress/session"), None);
        assert_eq!(ingress_route("/ingress/a.b/x"), None);
        assert_eq!(ingress_route("/ingress//x"), None);
    }

    #[test]
    fn the_session_cookie_is_found_and_kept_from_the_addon() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; ingress_session=s3cret".parse().unwrap(),
        );
        h.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("s3cret"));
        drop_session_cookie(&mut h);
        assert_eq!(h.get(header::COOKIE).unwrap(), "a=1; b=2");
    }
}
