//! The gateway and ingress proxy over real HTTP on 127.0.0.1: a real upstream server that
//! records what reached it, a real credential backend, real websocket peers (tungstenite),
//! and raw TCP clients where a library client would tidy up what an attacker sends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use addon_sandbox::gateway::conn::ConnLimits;
use addon_sandbox::gateway::limit::{AuthLimits, Rate};
use addon_sandbox::gateway::{Gateway, GatewayConfig};
use addon_sandbox::launch::state::{Record, StateDir};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

type Body = BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Upstream {
    addr: Option<SocketAddr>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// `/gate` sends its first chunk, then waits for this before the rest.
    gate: Arc<Notify>,
    /// `/upload-gate` signals this once it has read the first chunk of the request body.
    upload_started: Arc<Notify>,
    /// Every message Home Assistant's websocket (`/core/websocket`) received.
    ws_messages: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }
    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

async fn websocket_echo(upgraded: hyper::upgrade::Upgraded) {
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        None,
    )
    .await;
    // The server speaks first, so the relay is shown carrying both directions.
    let _ = ws.send(Message::text("hello from the add-on")).await;
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Text(t) => {
                let _ = ws.send(Message::text(format!("echo {t}"))).await;
            }
            Message::Binary(b) => {
                let mut back = b.to_vec();
                back.reverse();
                let _ = ws.send(Message::binary(back)).await;
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
}

/// Home Assistant's websocket API: `auth_required`, an auth message that must carry the
/// gateway's credential, then an echo. Every message received is recorded.
async fn home_assistant_websocket(
    upgraded: hyper::upgrade::Upgraded,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        None,
    )
    .await;
    let required = serde_json::json!({"type": "auth_required", "ha_version": "2026.11.0"});
    let _ = ws.send(Message::text(required.to_string())).await;
    let mut authenticated = false;
    while let Some(Ok(Message::Text(text))) = ws.next().await {
        log.lock().unwrap().push(text.to_string());
        if authenticated {
            let _ = ws.send(Message::text(format!("echo {text}"))).await;
            continue;
        }
        let auth: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        authenticated = auth["type"] == "auth" && auth["access_token"] == UPSTREAM_TOKEN;
        let answer = if authenticated {
            serde_json::json!({"type": "auth_ok", "ha_version": "2026.11.0"})
        } else {
            serde_json::json!({"type": "auth_invalid", "message": "Invalid access token"})
        };
        let _ = ws.send(Message::text(answer.to_string())).await;
        if !authenticated {
            break;
        }
    }
}

async fn upstream_handle(up: Upstream, mut req: Request<Incoming>) -> Response<Body> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    let headers = req.headers().clone();
    if let Some(key) = headers.get("sec-websocket-key").cloned() {
        let home_assistant = target.ends_with("/websocket");
        up.seen.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body: Bytes::new(),
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                if home_assistant {
                    home_assistant_websocket(upgraded, up.ws_messages.clone()).await;
                } else {
                    websocket_echo(upgraded).await;
                }
            }
        });
        return Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", accept)
            .body(full(""))
            .unwrap();
    }
    if target.starts_with("/upload-gate") {
        let mut body = req.into_body();
        let mut received = Vec::new();
        let mut signalled = false;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                received.extend_from_slice(&data);
                if !signalled {
                    up.upload_started.notify_one();
                    signalled = true;
                }
            }
        }
        up.seen.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body: Bytes::from(received.clone()),
        });
        return Response::new(full(format!("received {}", received.len())));
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    up.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        headers,
        body: body.clone(),
    });
    if let Some(code) = target.strip_prefix("/status/") {
        return Response::builder()
            .status(code.parse::<u16>().unwrap())
            .body(full(format!("status {code}")))
            .unwrap();
    }
    if let Some(size) = target.strip_prefix("/big/") {
        // Large and chunked, produced as it is sent.
        let total: usize = size.parse().unwrap();
        let chunks =
            futures_util::stream::iter((0..total / 65536).map(|i| {
                Ok::<_, Infallible>(Frame::data(Bytes::from(vec![(i % 251) as u8; 65536])))
            }));
        return Response::new(BodyExt::boxed(StreamBody::new(chunks)));
    }
    if target == "/gate" {
        let gate = up.gate.clone();
        let chunks = futures_util::stream::unfold(0, move |step| {
            let gate = gate.clone();
            async move {
                match step {
                    0 => Some((Ok::<_, Infallible>(Frame::data(Bytes::from("first;"))), 1)),
                    1 => {
                        gate.notified().await;
                        Some((Ok(Frame::data(Bytes::from("second"))), 2))
                    }
                    _ => None,
                }
            }
        });
        return Response::new(BodyExt::boxed(StreamBody::new(chunks)));
    }
    Response::builder()
        .header("x-upstream", "yes")
        .header("connection", "x-hop")
        .header("x-hop", "must not pass")
        .body(full(format!("{method} {target} {}", body.len())))
        .unwrap()
}

async fn serve_http<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn start_upstream() -> Upstream {
    let mut up = Upstream::default();
    let handle_up = up.clone();
    up.addr = Some(serve_http(move |req| upstream_handle(handle_up.clone(), req)).await);
    up
}

/// A credential backend with Home Assistant's `hassio_auth` contract.
struct Backend {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

async fn start_backend(users: &[(&str, &str)]) -> Backend {
    start_slow_backend(users, Duration::ZERO).await
}

/// A backend that takes `delay` to answer, so that attempts overlap.
async fn start_slow_backend(users: &[(&str, &str)], delay: Duration) -> Backend {
    let users: Arc<HashMap<String, String>> = Arc::new(
        users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect(),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let addr = serve_http(move |req: Request<Incoming>| {
        let users = users.clone();
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let user = json["username"].as_str().unwrap_or("");
            let ok = users.get(user).map(String::as_str) == json["password"].as_str()
                && json["addon"] == "local_authy";
            Response::builder()
                .status(if ok { 200 } else { 401 })
                .body(full(""))
                .unwrap()
        }
    })
    .await;
    Backend { addr, calls }
}

struct AddonSpec {
    slug: &'static str,
    role: &'static str,
    hassio_api: bool,
    homeassistant_api: bool,
    auth_api: bool,
    ingress: Option<SocketAddr>,
    policy: &'static str,
}

impl AddonSpec {
    fn new(slug: &'static str, role: &'static str) -> AddonSpec {
        AddonSpec {
            slug,
            role,
            hassio_api: true,
            homeassistant_api: false,
            auth_api: false,
            ingress: None,
            policy: "strict",
        }
    }
    fn token(&self) -> String {
        format!("token-of-{}", self.slug)
    }
    fn ingress_token(&self) -> String {
        format!("ingress-{}", self.slug.replace('_', "-"))
    }
}

struct Harness {
    addr: SocketAddr,
    up: Upstream,
    state: StateDir,
    _dir: tempfile::TempDir,
}

const CORE_TOKEN: &str = "core-token-0123456789";
const UPSTREAM_TOKEN: &str = "gateway-upstream-credential";

fn write_addon(state: &StateDir, spec: &AddonSpec) {
    write_addon_with(state, spec, None);
}

/// The token and record `run` leaves for `spec`, with what it recorded of the config.
fn write_addon_with(
    state: &StateDir,
    spec: &AddonSpec,
    info: Option<addon_sandbox::launch::state::AddonInfo>,
) {
    state.write_token(spec.slug, &spec.token()).unwrap();
    state
        .write_record(&Record {
            full_slug: spec.slug.into(),
            container_name: format!("addon_{}", spec.slug),
            container_id: "0".into(),
            image: "test".into(),
            confinement: "apparmor:test".into(),
            role: spec.role.into(),
            hassio_api: spec.hassio_api,
            homeassistant_api: spec.homeassistant_api,
            auth_api: spec.auth_api,
            ingress_port: spec.ingress.map(|a| a.port()),
            policy: spec.policy.into(),
            ingress_token: spec.ingress.map(|_| spec.ingress_token()),
            ingress_address: spec.ingress.map(|a| a.to_string()),
            info,
        })
        .unwrap();
}

async fn harness(
    addons: &[AddonSpec],
    backend: Option<SocketAddr>,
    limits: AuthLimits,
    ttl: Duration,
) -> Harness {
    harness_with(addons, backend, limits, ttl, ConnLimits::default()).await
}

async fn harness_with(
    addons: &[AddonSpec],
    backend: Option<SocketAddr>,
    limits: AuthLimits,
    ttl: Duration,
    conn_limits: ConnLimits,
) -> Harness {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    for spec in addons {
        write_addon(&state, spec);
    }
    let gateway = Gateway::new(GatewayConfig {
        upstream_token: Some(UPSTREAM_TOKEN.into()),
        core_token: Some(CORE_TOKEN.into()),
        auth_backend: backend.map(|a| format!("http://{a}/api/hassio_auth")),
        session_ttl: ttl,
        auth_limits: limits,
        conn_limits,
        ..GatewayConfig::new(
            format!("http://{}", up.addr.unwrap()),
            dir.path().to_path_buf(),
        )
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Arc::new(gateway).serve(listener, std::future::pending()));
    Harness {
        addr,
        up,
        state,
        _dir: dir,
    }
}

async fn default_harness(addons: &[AddonSpec]) -> Harness {
    harness(addons, None, AuthLimits::default(), Duration::from_secs(60)).await
}

/// A plain HTTP/1.1 request through a fresh connection; the path goes on the wire as given.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "supervisor");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender
        .send_request(
            req.body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> StatusCode {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(addr, "GET", path, &headers, "").await.0
}

/// Bytes exactly as an attacker would write them, and the whole answer.
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_tokens_and_the_paths_each_role_reaches() {
    let mut no_api = AddonSpec::new("local_noapi", "admin");
    no_api.hassio_api = false;
    let addons = [
        AddonSpec::new("local_default", "default"),
        AddonSpec::new("local_ha", "homeassistant"),
        AddonSpec::new("local_backup", "backup"),
        AddonSpec::new("local_manager", "manager"),
        AddonSpec::new("local_admin", "admin"),
        no_api,
    ];
    let h = default_harness(&addons).await;
    let cases: &[(&str, [bool; 6])] = &[
        // default, homeassistant, backup, manager, admin, admin-without-hassio_api
        ("/host/info", [true, true, true, true, true, false]),
        ("/addons/self/options", [true, true, true, true, true, true]),
        // Strict mode: not even admin switches off its own protection (see below for the
        // Supervisor policy, where admin may).
        ("/addons/self/security", [false; 6]),
        (
            "/addons/self/update",
            [false, false, false, true, true, false],
        ),
        ("/core/restart", [false, true, false, true, true, false]),
        ("/backups/new/full", [false, false, true, true, true, false]),
        (
            "/addons/core_ssh/security",
            [false, false, false, false, true, false],
        ),
        (
            "/addons/core_ssh/restart",
            [false, false, false, true, true, false],
        ),
        (
            "/os/datadisk/wipe",
            [false, false, false, false, true, false],
        ),
        (
            "/os/datadisk/move",
            [false, false, false, true, true, false],
        ),
        ("/auth/list", [false, false, false, false, true, false]),
        ("/discovery/abc", [true, true, true, true, true, true]),
        (
            "/v2/apps/core_ssh/security",
            [false, false, false, false, true, false],
        ),
        ("/v2/apps/self/logs", [true, true, true, true, true, true]),
        (
            "/v2/reload_updates",
            [false, false, false, true, true, false],
        ),
        (
            "/v2/refresh_updates",
            [false, false, false, false, true, false],
        ),
        ("/addons/core_ssh/sys_options", [false; 6]),
        ("/core/api/hassio_auth", [false; 6]),
    ];
    for (path, expected) in cases {
        for (spec, allowed) in addons.iter().zip(expected) {
            h.up.clear();
            let status = get(h.addr, path, Some(&spec.token())).await;
            let reached = h.up.seen().iter().any(|s| s.target == *path);
            assert_eq!(reached, *allowed, "{} {path}: {status}", spec.slug);
            if !allowed {
                assert_eq!(status, StatusCode::FORBIDDEN, "{} {path}", spec.slug);
            } else {
                assert_eq!(status, StatusCode::OK, "{} {path}", spec.slug);
            }
        }
    }
    let mut compat_admin = AddonSpec::new("local_compat", "admin");
    compat_admin.policy = "supervisor";
    write_addon(&h.state, &compat_admin);
    assert_eq!(
        get(h.addr, "/addons/self/security", Some(&compat_admin.token())).await,
        200
    );
    assert_eq!(
        get(
            h.addr,
            "/addons/local_compat/security",
            Some(&compat_admin.token())
        )
        .await,
        200
    );
    assert_eq!(
        get(
            h.addr,
            "/addons/local_admin/security",
            Some(&addons[4].token())
        )
        .await,
        403
    );
    assert_eq!(
        get(
            h.addr,
            "/addons/local_default/security",
            Some(&addons[4].token())
        )
        .await,
        200
    );
    // Home Assistant's token is unrestricted but for the blacklist; core-only is its alone.
    assert_eq!(
        get(h.addr, "/addons/core_ssh/sys_options", Some(CORE_TOKEN)).await,
        200
    );
    assert_eq!(
        get(h.addr, "/core/api/hassio_auth", Some(CORE_TOKEN)).await,
        403
    );
    // No token 401, unknown 403; the three token headers, Bearer optional.
    assert_eq!(get(h.addr, "/host/info", None).await, 401);
    assert_eq!(get(h.addr, "/host/info", Some("not-a-token")).await, 403);
    let t = addons[0].token();
    for header in ["x-supervisor-token", "x-hassio-key", "authorization"] {
        let (status, _, _) = send(h.addr, "GET", "/host/info", &[(header, &t)], "").await;
        assert_eq!(status, 200, "{header}");
    }
    // X-Supervisor-Token wins over Authorization, as in the Supervisor.
    let (status, _, _) = send(
        h.addr,
        "GET",
        "/backups/x/restore",
        &[
            ("x-supervisor-token", &t),
            ("authorization", &addons[2].token()),
        ],
        "",
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_addon_loses_access_and_a_new_one_gains_it_at_once() {
    let h = default_harness(&[]).await;
    let spec = AddonSpec::new("local_late", "manager");
    assert_eq!(get(h.addr, "/host/info", Some(&spec.token())).await, 403);
    write_addon(&h.state, &spec);
    assert_eq!(
        get(h.addr, "/host/info", Some(&spec.token())).await,
        200,
        "a new token is found on its first request"
    );
    h.state.forget(spec.slug);
    tokio::time::sleep(addon_sandbox::gateway::callers::RECHECK).await;
    assert_eq!(
        get(h.addr, "/host/info", Some(&spec.token())).await,
        403,
        "a forgotten token stops working"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_a_path_reaches_what_the_role_may_not() {
    let manager = AddonSpec::new("local_manager", "manager");
    let mut default = AddonSpec::new("local_default", "default");
    default.hassio_api = true;
    let admin = AddonSpec::new("local_admin", "admin");
    let h = default_harness(&[manager, default, admin]).await;
    let manager_token = "token-of-local_manager";
    let default_token = "token-of-local_default";
    // A strict admin may reach other add-ons' protection, never its own, in no spelling.
    let admin_token = "token-of-local_admin";
    // Each is refused with 400 (ambiguous) or 403 (decoded to a forbidden path).
    let attacks: &[(&str, &str, u16)] = &[
        (manager_token, "/addons/core_ssh/%73ecurity", 403),
        (
            manager_token,
            "/addons/core_ssh/%73%65%63%75%72%69%74%79",
            403,
        ),
        (manager_token, "/addons/core_ssh/./security", 403),
        (manager_token, "/addons/core_ssh//security", 403),
        (manager_token, "//addons/core_ssh/security", 403),
        (manager_token, "/addons/core_ssh/security/", 403),
        (manager_token, "/addons/core_ssh/security;x", 400),
        (admin_token, "/addons/self/security/", 403),
        (admin_token, "/addons/local_admin/security/", 403),
        (admin_token, "/addons/local_admin/SECURITY//", 403),
        (admin_token, "/addons/self/security;x", 400),
        (admin_token, "/addons/self/security%3Bx", 400),
        (admin_token, "/addons/self/security.", 400),
        (admin_token, "/addons/self/security%20", 400),
        (admin_token, "/addons/self/security%2E%2E%2E", 400),
        (admin_token, "/addons/self/%C5%BFecurity", 400),
        (admin_token, "/addons/local_admin/%C5%BFECURITY", 400),
        (manager_token, "/os/datadis%E2%84%AA/wipe", 400),
        (manager_token, "/addons/core_ssh/SECURITY", 403),
        (manager_token, "/addons/core_ssh/Security", 403),
        (manager_token, "/addons/core_ssh/x/../security", 400),
        (manager_token, "/addons/self/../core_ssh/security", 400),
        (
            manager_token,
            "/addons/core_ssh/%2e%2e/core_ssh/security",
            400,
        ),
        (manager_token, "/addons/core_ssh%2fsecurity", 400),
        (manager_token, "/addons/core_ssh%2Fsecurity", 400),
        (manager_token, "/addons/core_ssh/%2573ecurity", 400),
        (manager_token, "/addons/core_ssh/security%00", 400),
        (manager_token, "/addons/core_ssh%5csecurity", 400),
        (manager_token, "/addons/core_ssh/security%0a", 400),
        (manager_token, "/os/datadisk/%77ipe", 403),
        (manager_token, "/os/datadisk//wipe", 403),
        (manager_token, "/os/./datadisk/wipe", 403),
        (manager_token, "/os/datadisk/WIPE", 403),
        (default_token, "/backups/x/info/../../new/full", 400),
        (default_token, "/backups/new/full?x=/info", 403),
        (default_token, "/proc/self/environ/info", 400),
        (default_token, "/host/info?q=%3Cscript%3E", 400),
    ];
    for (token, path, expected) in attacks {
        h.up.clear();
        let status = get(h.addr, path, Some(token)).await;
        assert_eq!(status.as_u16(), *expected, "{path}");
        assert!(
            h.up.seen().is_empty(),
            "{path} reached the upstream as {:?}",
            h.up.seen()[0].target
        );
    }
    // What is allowed arrives in its one canonical spelling, which is what was decided on.
    for (raw, canonical) in [
        ("/addons/core_ssh/./info", "/addons/core_ssh/info"),
        ("//host///info", "/host/info"),
        ("/host/%69nfo", "/host/info"),
        (
            "/network/interface/eth%20x/info",
            "/network/interface/eth%20x/info",
        ),
        ("/host/info?a=%20x&b=%2Cy", "/host/info?a=%20x&b=%2Cy"),
        // An encoded `?` or `#` is part of the path ending in /info, and stays encoded: the
        // upstream cannot read it as the end of `/backups/new/full`.
        ("/backups/new/full%3f/info", "/backups/new/full%3F/info"),
        ("/backups/new/full%23/info", "/backups/new/full%23/info"),
    ] {
        h.up.clear();
        assert_eq!(get(h.addr, raw, Some(default_token)).await, 200, "{raw}");
        assert_eq!(h.up.last().target, canonical);
    }
    // `..` at the end climbs out of `wipe`: what goes up is the parent, as decided.
    h.up.clear();
    assert_eq!(
        get(h.addr, "/os/datadisk/wipe/..", Some(manager_token)).await,
        200
    );
    assert_eq!(h.up.last().target, "/os/datadisk");
    // Raw request lines a client library would not send.
    for line in [
        "GET /addons/core_ssh/secur%69ty HTTP/1.1",
        "GET http://supervisor/addons/core_ssh/security HTTP/1.1",
    ] {
        h.up.clear();
        let answer = raw(h.addr, &format!("{line}\r\nHost: s\r\nX-Supervisor-Token: {manager_token}\r\nConnection: close\r\n\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{line}: {answer}");
        assert!(h.up.seen().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_keeps_methods_bodies_statuses_and_streams_and_swaps_the_credential() {
    let h = default_harness(&[AddonSpec::new("local_admin", "admin")]).await;
    let token = "token-of-local_admin";
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let body = if method == "GET" { "" } else { "{\"a\": 1}" };
        let (status, headers, answer) = send(
            h.addr,
            method,
            "/addons/core_ssh/options?x=1&y=%20",
            &[
                ("x-supervisor-token", token),
                ("x-hassio-key", token),
                ("authorization", &format!("Bearer {token}")),
                ("x-addon-sandbox-caller", "homeassistant"),
                ("x-custom", "kept"),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            answer,
            format!("{method} /addons/core_ssh/options?x=1&y=%20 {}", body.len())
        );
        assert_eq!(headers["x-upstream"], "yes");
        assert!(
            headers.get("x-hop").is_none(),
            "hop-by-hop response headers are dropped"
        );
        let seen = h.up.last();
        assert_eq!(seen.method, method);
        assert_eq!(seen.body, body.as_bytes());
        assert!(seen.headers.get("x-supervisor-token").is_none());
        assert!(seen.headers.get("x-hassio-key").is_none());
        assert_eq!(
            seen.headers
                .get_all("authorization")
                .iter()
                .collect::<Vec<_>>(),
            [&format!("Bearer {UPSTREAM_TOKEN}")]
        );
        assert_eq!(
            seen.headers
                .get_all("x-addon-sandbox-caller")
                .iter()
                .collect::<Vec<_>>(),
            ["addon:local_admin"]
        );
        assert_eq!(seen.headers["x-custom"], "kept");
        assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    }
    for code in [201, 204, 304, 404, 418, 500, 503] {
        let (status, _, _) = send(
            h.addr,
            "GET",
            &format!("/status/{code}"),
            &[("x-supervisor-token", token)],
            "",
        )
        .await;
        assert_eq!(status.as_u16(), code);
    }
    // 64 MiB through, every byte in place.
    let (status, _, body) = send(
        h.addr,
        "GET",
        &format!("/big/{}", 64 << 20),
        &[("x-supervisor-token", token)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 64 << 20);
    assert!(
        body.chunks(65536)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == (i % 251) as u8))
    );

    // Streaming, not buffering: the first chunk arrives while the upstream still holds the rest.
    let stream = TcpStream::connect(h.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/gate")
        .header("host", "s")
        .header("x-supervisor-token", token)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = sender.send_request(req).await.unwrap().into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first chunk before the upstream finished")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first;");
    h.up.gate.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second");

    // And uploads stream too: the upstream reads the first chunk while the client still writes.
    let stream = TcpStream::connect(h.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    let req = Request::post("/upload-gate")
        .header("host", "s")
        .header("x-supervisor-token", token)
        .body(StreamBody::new(tokio_stream_from(rx)))
        .unwrap();
    let response = tokio::spawn(sender.send_request(req));
    tx.send(Ok(Frame::data(Bytes::from("part one;"))))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), h.up.upload_started.notified())
        .await
        .expect("the upstream saw the first chunk while the upload was open");
    tx.send(Ok(Frame::data(Bytes::from("part two"))))
        .await
        .unwrap();
    drop(tx);
    let response = response.await.unwrap().unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "received 17"
    );
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_assistant_proxy_needs_homeassistant_api() {
    let mut with = AddonSpec::new("local_with", "default");
    with.homeassistant_api = true;
    let without = AddonSpec::new("local_without", "admin");
    let h = default_harness(&[with, without]).await;
    assert_eq!(get(h.addr, "/core/api/states", None).await, 401);
    assert_eq!(
        get(h.addr, "/core/api/states", Some("token-of-local_without")).await,
        403
    );
    assert_eq!(
        get(h.addr, "/core/api/states", Some("token-of-local_with")).await,
        200
    );
    let (status, _, _) = send(
        h.addr,
        "GET",
        "/homeassistant/api/states",
        &[("x-ha-access", "token-of-local_with")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h.up.last().target, "/homeassistant/api/states");
    // Open paths reach the upstream without any credential.
    assert_eq!(get(h.addr, "/supervisor/ping", None).await, 200);
    assert!(h.up.last().headers.get("authorization").is_none());
}

fn core_websocket_request(addr: SocketAddr, path: &str, token: Option<&str>) -> http::Request<()> {
    let url = format!("ws://{addr}{path}");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    if let Some(t) = token {
        let value = format!("Bearer {t}").parse().unwrap();
        request.headers_mut().insert("authorization", value);
    }
    request
}

async fn next_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> serde_json::Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message in time")
        .expect("the socket is open")
        .unwrap();
    serde_json::from_str(message.to_text().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_websocket_authenticates_upstream_with_the_gateways_credential_only() {
    let mut with = AddonSpec::new("local_with", "default");
    with.homeassistant_api = true;
    let without = AddonSpec::new("local_without", "admin");
    let h = default_harness(&[with, without]).await;
    let auth = |token: &str| {
        Message::text(serde_json::json!({"type": "auth", "access_token": token}).to_string())
    };
    // A header token that may not use the proxy is refused before the upgrade.
    let refused = core_websocket_request(h.addr, "/core/websocket", Some("token-of-local_without"));
    assert!(tokio_tungstenite::connect_async(refused).await.is_err());
    // The auth message decides: no homeassistant_api or an unknown token is auth_invalid, and
    // nothing is opened upstream.
    for token in ["token-of-local_without", "no-such-token", CORE_TOKEN] {
        let request = core_websocket_request(h.addr, "/core/websocket", None);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "auth_required");
        ws.send(auth(token)).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "auth_invalid", "{token}");
    }
    assert!(
        h.up.seen().is_empty(),
        "no upstream socket for a refused add-on"
    );
    // An add-on with homeassistant_api, with and without its token in a header as well.
    for (path, header) in [
        ("/core/websocket", None),
        ("/homeassistant/websocket", Some("token-of-local_with")),
    ] {
        let request = core_websocket_request(h.addr, path, header);
        let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(next_json(&mut ws).await["type"], "auth_required");
        ws.send(auth("token-of-local_with")).await.unwrap();
        let ok = next_json(&mut ws).await;
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        assert_eq!(ok["ha_version"], "2026.11.0", "the upstream's own answer");
        ws.send(Message::text("ping")).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap();
        assert_eq!(echo.unwrap().unwrap(), Message::text("echo ping"));
        let seen = h.up.last();
        assert_eq!(seen.target, path);
        assert_eq!(
            seen.headers["authorization"],
            format!("Bearer {UPSTREAM_TOKEN}").as_str()
        );
        assert_eq!(seen.headers["x-addon-sandbox-caller"], "addon:local_with");
    }
    let messages = h.up.ws_messages.lock().unwrap().clone();
    let gateway_auth = serde_json::json!({"type": "auth", "access_token": UPSTREAM_TOKEN});
    assert_eq!(
        messages
            .iter()
            .filter(
                |m| serde_json::from_str::<serde_json::Value>(m).ok() == Some(gateway_auth.clone())
            )
            .count(),
        2,
        "{messages:?}"
    );
    let everything = format!("{messages:?} {:?}", h.up.seen());
    assert!(
        !everything.contains("token-of-local_with"),
        "the add-on's token reached the upstream: {everything}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_checks_credentials_for_auth_api_addons_and_limits_failures() {
    let backend = start_backend(&[("alice", "wonderland"), ("bob", "builder")]).await;
    let mut authy = AddonSpec::new("local_authy", "default");
    authy.auth_api = true;
    authy.hassio_api = false; // /auth is in the bypass set
    let plain = AddonSpec::new("local_plain", "admin");
    let limits = AuthLimits {
        per_user: Rate {
            burst: 3,
            refill: Duration::from_millis(400),
        },
        per_addon: Rate {
            burst: 5,
            refill: Duration::from_secs(60),
        },
    };
    let h = harness(
        &[authy, plain],
        Some(backend.addr),
        limits,
        Duration::from_secs(60),
    )
    .await;
    let t = "token-of-local_authy";
    let basic = |u: &str, p: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let post = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let addr = h.addr;
        async move {
            let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(addr, "POST", "/auth", &refs, body).await
        }
    };
    // Without auth_api: 403 whatever the credentials.
    let (status, _, _) = post(
        vec![
            ("x-supervisor-token", "token-of-local_plain".into()),
            ("authorization", basic("alice", "wonderland")),
        ],
        "",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(get(h.addr, "/auth", None).await, 401);
    // The three credential shapes.
    let (status, _, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("authorization", basic("alice", "wonderland")),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("content-type", "application/json".into()),
        ],
        r#"{"username": "alice", "password": "wonderland"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("content-type", "application/x-www-form-urlencoded".into()),
        ],
        "user=bob&password=builder",
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("content-type", "text/plain".into()),
        ],
        "alice:wonderland",
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"Home Assistant Authentication\""
    );
    let (status, _, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("content-type", "application/json".into()),
        ],
        r#"{"username": ["alice"], "password": "x"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(backend.calls.load(Ordering::SeqCst), 3);

    // Failures for alice: three, then 429 before the backend is asked, even with the right password.
    for _ in 0..3 {
        let (status, _, _) = post(
            vec![
                ("x-supervisor-token", t.into()),
                ("authorization", basic("alice", "guess")),
            ],
            "",
        )
        .await;
        assert_eq!(status, 401);
    }
    let calls = backend.calls.load(Ordering::SeqCst);
    let (status, headers, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("authorization", basic("alice", "wonderland")),
        ],
        "",
    )
    .await;
    assert_eq!(status, 429);
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        backend.calls.load(Ordering::SeqCst),
        calls,
        "a limited attempt never reaches the backend"
    );
    // Bob is another bucket; successes cost nothing.
    for _ in 0..4 {
        let (status, _, _) = post(
            vec![
                ("x-supervisor-token", t.into()),
                ("authorization", basic("bob", "builder")),
            ],
            "",
        )
        .await;
        assert_eq!(status, 200);
    }
    // Alice's bucket refills with time.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (status, _, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("authorization", basic("alice", "wonderland")),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    // The add-on's own budget (5) spans usernames: two more failures on new names exhaust it.
    for user in ["carol", "dave"] {
        let (status, _, _) = post(
            vec![
                ("x-supervisor-token", t.into()),
                ("authorization", basic(user, "x")),
            ],
            "",
        )
        .await;
        assert_eq!(status, 401, "{user}");
    }
    let (status, _, _) = post(
        vec![
            ("x-supervisor-token", t.into()),
            ("authorization", basic("bob", "builder")),
        ],
        "",
    )
    .await;
    assert_eq!(status, 429, "the add-on as a whole is limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_fails_closed_when_the_backend_is_down_or_missing() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    for backend in [Some(closed), None] {
        let mut authy = AddonSpec::new("local_authy", "default");
        authy.auth_api = true;
        let h = harness(
            &[authy],
            backend,
            AuthLimits::default(),
            Duration::from_secs(60),
        )
        .await;
        let (status, _, _) = send(
            h.addr,
            "POST",
            "/auth",
            &[
                ("x-supervisor-token", "token-of-local_authy"),
                ("authorization", "Basic YTpi"),
            ],
            "",
        )
        .await;
        assert_eq!(status, 503, "backend {backend:?}");
    }
}

async fn new_session(h: &Harness, user: serde_json::Value) -> String {
    let (status, _, body) = send(
        h.addr,
        "POST",
        "/ingress/session",
        &[
            ("x-supervisor-token", CORE_TOKEN),
            ("content-type", "application/json"),
        ],
        &user.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["data"]["session"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_sets_the_users_headers_and_no_client_can_spoof_them() {
    let app = start_upstream().await;
    let mut spec = AddonSpec::new("local_web", "default");
    spec.ingress = app.addr;
    let ingress = spec.ingress_token();
    let h = default_harness(&[spec]).await;

    // Sessions only from Home Assistant.
    let (status, _, _) = send(h.addr, "POST", "/ingress/session", &[], "{}").await;
    assert_eq!(status, 401);
    let (status, _, _) = send(
        h.addr,
        "POST",
        "/ingress/session",
        &[("x-supervisor-token", "token-of-local_web")],
        "{}",
    )
    .await;
    assert_eq!(status, 403);
    let session = new_session(
        &h,
        serde_json::json!({"user_id": "u-123", "user_name": "alice", "display_name": "Alice A."}),
    )
    .await;

    // No cookie, a wrong cookie, an unknown ingress token.
    assert_eq!(
        get(h.addr, &format!("/ingress/{ingress}/"), None).await,
        401
    );
    let (status, _, _) = send(
        h.addr,
        "GET",
        &format!("/ingress/{ingress}/"),
        &[("cookie", "ingress_session=nope")],
        "",
    )
    .await;
    assert_eq!(status, 401);
    let cookie = format!("theme=dark; ingress_session={session}");
    let (status, _, _) = send(
        h.addr,
        "GET",
        "/ingress/unknown-token/",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(status, 503);

    // Every spelling of every protected header, some twice, over a raw connection.
    let request = format!(
        "GET /ingress/{ingress}/a/b%2Fc?x=1&y=%20 HTTP/1.1\r\nHost: homeassistant.local\r\n\
         Cookie: {cookie}\r\n\
         x-remote-user-id: evil\r\nX-REMOTE-USER-ID: evil2\r\nX-Remote-User-Id: evil3\r\n\
         x-ReMoTe-UsEr-NaMe: mallory\r\nX-Remote-User-Display-Name: Mallory\r\n\
         x-remote-user-display-name: M\r\n\
         x-supervisor-token: stolen\r\nX-SUPERVISOR-TOKEN: stolen\r\nx-HASSIO-key: stolen\r\n\
         X-Addon-Sandbox-Caller: homeassistant\r\n\
         X-Forwarded-For: 10.0.0.7\r\nX-Ingress-Path: /api/hassio_ingress/{ingress}\r\n\
         Connection: close\r\n\r\n"
    );
    let answer = raw(h.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = app.last();
    assert_eq!(
        seen.target, "/a/b%2Fc?x=1&y=%20",
        "path and query pass as sent"
    );
    let all = |name: &str| {
        seen.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("x-remote-user-id"), ["u-123"]);
    assert_eq!(all("x-remote-user-name"), ["alice"]);
    assert_eq!(all("x-remote-user-display-name"), ["Alice A."]);
    assert!(
        all("x-supervisor-token").is_empty()
            && all("x-hassio-key").is_empty()
            && all("x-addon-sandbox-caller").is_empty()
    );
    assert_eq!(all("x-forwarded-for"), ["10.0.0.7, 127.0.0.1"]);
    assert_eq!(
        all("cookie"),
        ["theme=dark"],
        "the session never reaches the add-on"
    );
    assert_eq!(all("host"), ["homeassistant.local"]);
    assert_eq!(
        all("x-ingress-path"),
        [format!("/api/hassio_ingress/{ingress}")]
    );
    // The raw bytes on the add-on's side: no spoofed value in any case.
    let dump = format!("{:?}", seen.headers).to_ascii_lowercase();
    for bad in ["evil", "mallory", "stolen"] {
        assert!(!dump.contains(bad), "{bad} reached the add-on: {dump}");
    }

    // A session without a user: no user headers at all, and client copies still stripped.
    let anonymous = new_session(&h, serde_json::json!({})).await;
    let (status, _, _) = send(
        h.addr,
        "GET",
        &format!("/ingress/{ingress}/x"),
        &[
            ("cookie", &format!("ingress_session={anonymous}")),
            ("X-Remote-User-Id", "evil"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.last().headers.get("x-remote-user-id").is_none());
    assert_eq!(app.last().headers["x-forwarded-for"], "127.0.0.1");

    // Bad user data is refused when the session is made, not dropped later.
    let (status, _, _) = send(
        h.addr,
        "POST",
        "/ingress/session",
        &[("x-supervisor-token", CORE_TOKEN)],
        r#"{"user_id": "a\nb"}"#,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_sessions_expire_at_a_fixed_time_and_validation_does_not_extend_them() {
    let app = start_upstream().await;
    let mut spec = AddonSpec::new("local_web", "default");
    spec.ingress = app.addr;
    let ingress = spec.ingress_token();
    let h = harness(
        &[spec],
        None,
        AuthLimits::default(),
        Duration::from_millis(600),
    )
    .await;
    let session = new_session(&h, serde_json::json!({"user_id": "u"})).await;
    let cookie = format!("ingress_session={session}");
    let body = format!("{{\"session\": \"{session}\"}}");
    for _ in 0..3 {
        let (status, _, _) = send(
            h.addr,
            "POST",
            "/ingress/validate_session",
            &[("x-supervisor-token", CORE_TOKEN)],
            &body,
        )
        .await;
        assert_eq!(status, 200);
        let (status, _, _) = send(
            h.addr,
            "GET",
            &format!("/ingress/{ingress}/"),
            &[("cookie", &cookie)],
            "",
        )
        .await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, _) = send(
        h.addr,
        "GET",
        &format!("/ingress/{ingress}/"),
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(
        status, 401,
        "validated three times, still over at creation + ttl"
    );
    let (status, _, _) = send(
        h.addr,
        "POST",
        "/ingress/validate_session",
        &[("x-supervisor-token", CORE_TOKEN)],
        &body,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_relays_websockets_both_ways_and_streams_large_responses() {
    let app = start_upstream().await;
    let mut spec = AddonSpec::new("local_web", "default");
    spec.ingress = app.addr;
    let ingress = spec.ingress_token();
    let h = default_harness(&[spec]).await;
    let session = new_session(&h, serde_json::json!({"user_id": "u-9", "user_name": "ws"})).await;

    let url = format!("ws://{}/ingress/{ingress}/socket?room=1", h.addr);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request.headers_mut().insert(
        "cookie",
        format!("ingress_session={session}").parse().unwrap(),
    );
    request
        .headers_mut()
        .insert("x-remote-user-id", "evil".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("hello from the add-on")
    );
    for i in 0..20 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(format!("echo m{i}"))
        );
    }
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 256) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    let mut reversed = big;
    reversed.reverse();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(reversed));
    ws.close(None).await.unwrap();
    let handshake = app
        .seen()
        .into_iter()
        .find(|s| s.target == "/socket?room=1")
        .expect("the handshake reached the add-on");
    assert_eq!(handshake.headers["x-remote-user-id"], "u-9");
    assert_eq!(
        handshake.headers.get_all("x-remote-user-id").iter().count(),
        1
    );

    // Without a session there is no websocket.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", "ingress_session=wrong".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());

    let (status, _, body) = send(
        h.addr,
        "GET",
        &format!("/ingress/{ingress}/big/{}", 32 << 20),
        &[("cookie", &format!("ingress_session={session}"))],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 32 << 20);

    // Streamed, not buffered: the first chunk arrives while the add-on holds the rest.
    let stream = TcpStream::connect(h.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("/ingress/{ingress}/gate"))
        .header("host", "s")
        .header("cookie", format!("ingress_session={session}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = sender.send_request(req).await.unwrap().into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first chunk before the add-on finished")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first;");
    app.gate.notify_one();
    assert_eq!(body.collect().await.unwrap().to_bytes(), "second");
}

/// Every spelling a client might use for a header only the gateway may set: letter case, `_`
/// for `-` (which CGI and WSGI servers read as the same variable), repeated copies.
const SPOOFED: &str = "X_Remote_User_Id: evil-id\r\nx_REMOTE_user-ID: evil-id2\r\n\
    x-remote-user-name: evil-name\r\nX-Remote_User_Display_Name: evil-display\r\n\
    X-Ingress-Path: /evil-path\r\nX_Ingress_Path: /evil-path2\r\n\
    X_Addon_Sandbox_Caller: evil-caller\r\nx_hassio_key: evil-key\r\n\
    X_Supervisor_Token: evil-token\r\n";

/// No header the upstream saw carries a spoofed value, and none is named, `_` read as `-`,
/// like a protected header unless `allowed` says the gateway set it.
fn assert_nothing_spoofed(seen: &Seen, allowed: &[&str], what: &str) {
    for (name, value) in &seen.headers {
        let v = value.to_str().unwrap_or("");
        assert!(
            !v.contains("evil"),
            "{what}: {name}: {v} reached the upstream"
        );
        let folded = name.as_str().replace('_', "-");
        let protected = folded.starts_with("x-remote-user-")
            || ["x-ingress-path", "x-supervisor-token", "x-hassio-key"].contains(&folded.as_str())
            || folded == "x-addon-sandbox-caller";
        assert!(
            !protected || allowed.contains(&name.as_str()),
            "{what}: {name} reached the upstream"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_spelling_of_a_protected_header_passes_on_any_forwarding_path() {
    let app = start_upstream().await;
    let mut spec = AddonSpec::new("local_web", "default");
    spec.ingress = app.addr;
    spec.homeassistant_api = true;
    let ingress = spec.ingress_token();
    let h = default_harness(&[spec]).await;
    let token = "token-of-local_web";
    let caller = &["x-addon-sandbox-caller"][..];
    for (path, what) in [
        ("/host/info", "api"),
        ("/core/api/states", "home assistant proxy"),
        ("/supervisor/ping", "open path"),
    ] {
        h.up.clear();
        let answer = raw(
            h.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: {token}\r\n{SPOOFED}Connection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{what}: {answer}");
        assert_nothing_spoofed(&h.up.last(), caller, what);
    }
    // Ingress, with and without a user: the gateway's values only.
    let user = new_session(
        &h,
        serde_json::json!({"user_id": "u-1", "user_name": "alice"}),
    )
    .await;
    let anonymous = new_session(&h, serde_json::json!({})).await;
    for (session, id) in [(user, Some("u-1")), (anonymous, None)] {
        let answer = raw(
            h.addr,
            &format!(
                "GET /ingress/{ingress}/x HTTP/1.1\r\nHost: s\r\nCookie: ingress_session={session}\r\n{SPOOFED}Connection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "ingress: {answer}");
        let seen = app.last();
        let set: &[&str] = if id.is_some() {
            &["x-remote-user-id", "x-remote-user-name", "x-ingress-path"]
        } else {
            &["x-ingress-path"]
        };
        assert_nothing_spoofed(&seen, set, "ingress");
        assert_eq!(
            seen.headers
                .get("x-remote-user-id")
                .map(|v| v.to_str().unwrap()),
            id
        );
        assert_eq!(
            seen.headers["x-ingress-path"],
            format!("/api/hassio_ingress/{ingress}").as_str()
        );
    }
}

/// A WSGI add-on: python3's wsgiref server on 127.0.0.1, answering with the CGI variables it
/// was given. Killed on drop.
struct Wsgi {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Drop for Wsgi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_wsgi() -> Wsgi {
    use std::io::BufRead;
    let app = r#"
import json, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *a): pass
def app(environ, start):
    keys = ("HTTP_X_REMOTE_USER_ID", "HTTP_X_REMOTE_USER_NAME", "HTTP_X_INGRESS_PATH",
            "HTTP_X_SUPERVISOR_TOKEN", "HTTP_X_ADDON_SANDBOX_CALLER")
    start("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({k: environ.get(k) for k in keys}).encode()]
server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", app])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the WSGI add-on");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the WSGI server's port");
    Wsgi {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wsgi_addon_sees_only_the_gateways_user_and_ingress_path() {
    let wsgi = start_wsgi();
    let mut spec = AddonSpec::new("local_wsgi", "default");
    spec.ingress = Some(wsgi.addr);
    let ingress = spec.ingress_token();
    let h = default_harness(&[spec]).await;
    let user = new_session(
        &h,
        serde_json::json!({"user_id": "u-1", "user_name": "alice"}),
    )
    .await;
    let anonymous = new_session(&h, serde_json::json!({})).await;
    for (session, id, name) in [
        (user, serde_json::json!("u-1"), serde_json::json!("alice")),
        (anonymous, serde_json::Value::Null, serde_json::Value::Null),
    ] {
        let answer = raw(
            h.addr,
            &format!(
                "GET /ingress/{ingress}/ HTTP/1.1\r\nHost: s\r\nCookie: ingress_session={session}\r\n{SPOOFED}Connection: close\r\n\r\n"
            ),
        )
        .await;
        // wsgiref answers HTTP/1.0, which the gateway passes on.
        assert_eq!(answer.split(' ').nth(1), Some("200"), "{answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let environ: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(environ["HTTP_X_REMOTE_USER_ID"], id, "{environ}");
        assert_eq!(environ["HTTP_X_REMOTE_USER_NAME"], name, "{environ}");
        assert_eq!(
            environ["HTTP_X_INGRESS_PATH"],
            format!("/api/hassio_ingress/{ingress}"),
            "{environ}"
        );
        assert!(environ["HTTP_X_SUPERVISOR_TOKEN"].is_null(), "{environ}");
        assert!(
            environ["HTTP_X_ADDON_SANDBOX_CALLER"].is_null(),
            "{environ}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_reach_the_backend_at_most_a_bucket_at_a_time() {
    use base64::Engine;
    let backend = start_slow_backend(&[("alice", "wonderland")], Duration::from_millis(300)).await;
    let mut authy = AddonSpec::new("local_authy", "default");
    authy.auth_api = true;
    let slow = Duration::from_secs(3600);
    let limits = AuthLimits {
        per_user: Rate {
            burst: 3,
            refill: slow,
        },
        per_addon: Rate {
            burst: 10,
            refill: slow,
        },
    };
    let h = harness(
        &[authy],
        Some(backend.addr),
        limits,
        Duration::from_secs(60),
    )
    .await;
    // 200 wrong guesses at once: first for one user, then each for a user of its own.
    let burst = |user_of: fn(usize) -> String| {
        let addr = h.addr;
        async move {
            let guesses = (0..200).map(|i| {
                let basic = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:guess{i}", user_of(i)));
                async move {
                    let auth = format!("Basic {basic}");
                    let headers = [
                        ("x-supervisor-token", "token-of-local_authy"),
                        ("authorization", auth.as_str()),
                    ];
                    send(addr, "POST", "/auth", &headers, "").await.0
                }
            });
            futures_util::future::join_all(guesses).await
        }
    };
    let statuses = burst(|_| "alice".to_owned()).await;
    let count = |code: u16| statuses.iter().filter(|s| s.as_u16() == code).count();
    assert_eq!(backend.calls.load(Ordering::SeqCst), 3, "one user's bucket");
    assert_eq!((count(401), count(429)), (3, 197));
    let statuses = burst(|i| format!("user{i}")).await;
    let count = |code: u16| statuses.iter().filter(|s| s.as_u16() == code).count();
    assert_eq!(
        backend.calls.load(Ordering::SeqCst),
        10,
        "the add-on's bucket, over all users"
    );
    assert_eq!((count(401), count(429)), (7, 193));
}

/// `addon-sandbox serve` itself, its standard error read line by line as it comes. Killed on
/// drop.
struct Served {
    child: std::process::Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// The log's lines once there are at least `n` of them (ten seconds at most).
    fn wait_lines(&self, n: usize) -> Vec<String> {
        let start = std::time::Instant::now();
        while self.lines.lock().unwrap().len() < n && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.lines.lock().unwrap().clone()
    }
}

fn serve_binary(
    up: SocketAddr,
    state: &std::path::Path,
    core: &std::path::Path,
    log: &[&str],
) -> Served {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
    command
        .args(["serve", "--upstream"])
        .arg(format!("http://{up}"))
        .args(log);
    spawn_serve(command, state, core)
}

/// `command` (a `serve`) on a free port of 127.0.0.1 with `state` and Home Assistant's token
/// file `core`, once it has said where it listens.
fn spawn_serve(
    mut command: std::process::Command,
    state: &std::path::Path,
    core: &std::path::Path,
) -> Served {
    use std::io::BufRead;
    let mut child = command
        .args(["--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state)
        .arg("--core-token-file")
        .arg(core)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let listen: serde_json::Value = serde_json::from_str(&first).expect("the listen line");
    assert!(listen.get("supervisor").is_none(), "{listen}");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    Served {
        child,
        addr: listen["listen"].as_str().unwrap().to_owned(),
        lines,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_denials_with_caller_path_role_and_reason_and_never_a_secret() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    write_addon(&state, &AddonSpec::new("local_logged", "default"));
    let core = dir.path().join("core-token");
    std::fs::write(&core, CORE_TOKEN).unwrap();
    let token = "token-of-local_logged";
    let requests = |addr: SocketAddr| async move {
        // Denied, spelled so that only the canonical path names it; then allowed; then unknown.
        let denied = format!(
            "GET //addons/./core_ssh/security?q=1 HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: {token}\r\nCookie: ingress_session=cookie-secret\r\nConnection: close\r\n\r\n"
        );
        assert!(raw(addr, &denied).await.starts_with("HTTP/1.1 403"));
        assert_eq!(get(addr, "/info", Some(token)).await, 200);
        assert_eq!(get(addr, "/host/info", Some("guessed-secret")).await, 403);
    };

    // Text, denials only (the default).
    let served = serve_binary(up.addr.unwrap(), &dir.path().join("state"), &core, &[]);
    requests(served.addr.parse().unwrap()).await;
    let lines = served.wait_lines(2);
    assert_eq!(
        lines.len(),
        2,
        "two denials, the forwarded request not logged: {lines:?}"
    );
    assert!(
        lines[0].ends_with(
            " denied status=403 caller=addon:local_logged role=default peer=127.0.0.1 method=GET \
             path=/addons/core_ssh/security reason=\"the add-on's role does not reach this path\""
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(" caller=unknown role=- "), "{}", lines[1]);
    drop(served);

    // JSON, everything.
    let served = serve_binary(
        up.addr.unwrap(),
        &dir.path().join("state"),
        &core,
        &["--log", "all", "--log-format", "json"],
    );
    requests(served.addr.parse().unwrap()).await;
    let lines = served.wait_lines(3);
    let json: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(json.len(), 3, "{lines:?}");
    let denied = &json[0];
    assert_eq!(denied["event"], "denied");
    assert_eq!(denied["status"], 403);
    assert_eq!(denied["caller"], "addon:local_logged");
    assert_eq!(denied["role"], "default");
    assert_eq!(denied["method"], "GET");
    assert_eq!(denied["path"], "/addons/core_ssh/security");
    assert_eq!(
        denied["reason"],
        "the add-on's role does not reach this path"
    );
    assert!(denied["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (&json[1]["event"], &json[1]["status"], &json[1]["path"]),
        (&"forwarded".into(), &200.into(), &"/info".into())
    );
    assert_eq!(
        (&json[2]["caller"], &json[2]["role"]),
        (&"unknown".into(), &serde_json::Value::Null)
    );
    let all = lines.join("\n");
    for secret in [token, "guessed-secret", "cookie-secret", CORE_TOKEN, "q=1"] {
        assert!(!all.contains(secret), "{secret} was logged: {all}");
    }
}

/// A connection from `source` (any 127.0.0.0/8 address is this host), with `bytes` written.
async fn connect_from(source: [u8; 4], addr: SocketAddr, bytes: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(bytes.as_bytes()).await.unwrap();
    stream
}

/// Whether the gateway ends the connection within `within` (end of stream or reset), and what
/// it sent first.
async fn closed_within(stream: TcpStream, within: Duration) -> Option<Vec<u8>> {
    drained_within(stream, within).await.map(|(first, _)| first)
}

/// The first bytes and the number of all bytes read until the gateway ends the connection, if
/// it does within `within`.
async fn drained_within(mut stream: TcpStream, within: Duration) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    total += n;
                    if out.len() < 4096 {
                        out.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some((out, total))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_timed_out_and_capped_while_others_are_served() {
    let conn_limits = ConnLimits {
        header_timeout: Duration::from_secs(3),
        body_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(4),
        per_peer: 100,
    };
    let spec = AddonSpec::new("local_busy", "default");
    let h = harness_with(
        &[spec],
        None,
        AuthLimits::default(),
        Duration::from_secs(60),
        conn_limits,
    )
    .await;
    let start = std::time::Instant::now();
    // 300 slow clients without a token, 100 from each of three addresses: headers never
    // finished, a body that stops after 10 of 100000 bytes, a kept-alive connection left idle.
    let mut slow = Vec::new();
    for _ in 0..100 {
        slow.push(
            connect_from(
                [127, 0, 0, 2],
                h.addr,
                "GET /supervisor/ping HTTP/1.1\r\nHost: s\r\n",
            )
            .await,
        );
        slow.push(
            connect_from(
                [127, 0, 0, 3],
                h.addr,
                "POST /supervisor/ping HTTP/1.1\r\nHost: s\r\nContent-Length: 100000\r\n\r\n0123456789",
            )
            .await,
        );
        slow.push(
            connect_from(
                [127, 0, 0, 4],
                h.addr,
                "GET /supervisor/ping HTTP/1.1\r\nHost: s\r\n\r\n",
            )
            .await,
        );
    }
    // Five clients that ask for 64 MiB and never read it.
    let mut readers = Vec::new();
    for _ in 0..5 {
        readers.push(
            connect_from([127, 0, 0, 5], h.addr, &format!("GET /big/{} HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: token-of-local_busy\r\n\r\n", 64 << 20)).await,
        );
    }
    // Legitimate requests from another address are served at once while all of those are held.
    for _ in 0..20 {
        let served = tokio::time::timeout(
            Duration::from_secs(1),
            get(h.addr, "/info", Some("token-of-local_busy")),
        )
        .await;
        assert_eq!(served.ok(), Some(StatusCode::OK));
    }
    // One more connection from a full address is turned away at once.
    for _ in 0..10 {
        let extra = connect_from(
            [127, 0, 0, 2],
            h.addr,
            "GET /supervisor/ping HTTP/1.1\r\nHost: s\r\n\r\n",
        )
        .await;
        let answer = closed_within(extra, Duration::from_secs(1))
            .await
            .expect("refused at once");
        assert!(
            answer.starts_with(b"HTTP/1.1 503"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "all of this within the header timeout"
    );
    // Then every slow connection is ended by the gateway: headers and idle keep-alive after the
    // header timeout, the stalled body after the body timeout, the non-reader after the idle one.
    let ended = futures_util::future::join_all(
        slow.into_iter()
            .map(|s| closed_within(s, Duration::from_secs(15))),
    )
    .await;
    let open = ended.iter().filter(|e| e.is_none()).count();
    assert_eq!(open, 0, "{open} of 300 slow connections still open");
    // The non-readers read only now, past the idle timeout: they find what was buffered
    // before the gateway gave up, not the 64 MiB.
    tokio::time::sleep_until((start + Duration::from_secs(6)).into()).await;
    for reader in readers {
        let (_, total) = drained_within(reader, Duration::from_secs(15))
            .await
            .expect("the non-reader was cut off");
        assert!(
            total < 64 << 20,
            "the whole response was held for a client that never read"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(15));
    // And the slots came back: the first address is served again.
    let again = connect_from(
        [127, 0, 0, 2],
        h.addr,
        "GET /supervisor/ping HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
    )
    .await;
    let answer = closed_within(again, Duration::from_secs(5)).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// One call to a gateway with the add-on token `token` (None: no token), answered as JSON.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let headers: Vec<(&str, &str)> = token.iter().map(|t| ("x-supervisor-token", *t)).collect();
    let (status, headers, body) = send(addr, method, path, &headers, body).await;
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..]),
        "{method} {path}"
    );
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// The Supervisor's error envelope with `status` and exactly `message`.
fn refused(answer: &(StatusCode, serde_json::Value), status: u16, message: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(
        answer.1,
        serde_json::json!({"result": "error", "message": message})
    );
}

/// A standalone host's add-ons: each with its `services` entries and a data folder holding
/// its options (written by `run` in real use).
struct Standalone {
    dir: tempfile::TempDir,
    core: std::path::PathBuf,
}

impl Standalone {
    fn new() -> Standalone {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let core = dir.path().join("core-token");
        std::fs::write(&core, CORE_TOKEN).unwrap();
        for (slug, role, services) in [
            ("local_broker", "default", &["mqtt:provide"][..]),
            ("local_second", "default", &["mqtt:provide"]),
            ("local_client", "default", &["mqtt:want"]),
            ("local_needy", "default", &["mqtt:need", "mysql:need"]),
            ("local_plain", "default", &[]),
            ("local_manager", "manager", &[]),
        ] {
            let data = dir.path().join("data").join(slug);
            std::fs::create_dir_all(&data).unwrap();
            let info = addon_sandbox::launch::state::AddonInfo {
                name: format!("Add-on {slug}"),
                slug: slug.trim_start_matches("local_").into(),
                version: "1.2.3".into(),
                services: services.iter().map(|s| s.to_string()).collect(),
                data_dir: Some(data.to_string_lossy().into_owned()),
                ..Default::default()
            };
            write_addon_with(&state, &AddonSpec::new(slug, role), Some(info));
        }
        Standalone { dir, core }
    }

    fn data(&self, slug: &str) -> std::path::PathBuf {
        self.dir.path().join("data").join(slug)
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// `serve --no-network` (no Docker) on this state directory, with `args`.
    fn serve(&self, args: &[&str]) -> (Served, SocketAddr) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
        command.args(["serve", "--no-network"]).args(args);
        let served = spawn_serve(command, &self.state(), &self.core);
        let addr = served.addr.parse().unwrap();
        (served, addr)
    }
}

const BROKER: Option<&str> = Some("token-of-local_broker");
const SECOND: Option<&str> = Some("token-of-local_second");
const CLIENT: Option<&str> = Some("token-of-local_client");
const NEEDY: Option<&str> = Some("token-of-local_needy");
const PLAIN: Option<&str> = Some("token-of-local_plain");
const MANAGER: Option<&str> = Some("token-of-local_manager");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_serve_answers_the_addons_own_endpoints_in_the_envelope() {
    let host = Standalone::new();
    std::fs::write(
        host.data("local_broker").join("options.json"),
        r#"{"greeting": "hello", "port": 1883}"#,
    )
    .unwrap();
    // An add-on writes its own data folder: a link to a file it cannot read, and a FIFO that
    // would hang a reader, must not be read for it.
    let outside = host.dir.path().join("outside-secret.json");
    std::fs::write(&outside, r#"{"secret": "not for the add-on"}"#).unwrap();
    std::os::unix::fs::symlink(&outside, host.data("local_plain").join("options.json")).unwrap();
    nix::unistd::mkfifo(
        &host.data("local_client").join("options.json"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let (_served, addr) = host.serve(&[]);

    let ping = call(addr, "GET", "/supervisor/ping", None, "").await;
    assert_eq!(
        ping,
        (
            StatusCode::OK,
            serde_json::json!({"result": "ok", "data": {}})
        )
    );

    let (status, info) = call(addr, "GET", "/addons/self/info", BROKER, "").await;
    assert_eq!(
        (status, &info["result"]),
        (StatusCode::OK, &"ok".into()),
        "{info}"
    );
    let data = &info["data"];
    assert_eq!(data["slug"], "local_broker", "{info}");
    assert_eq!(data["name"], "Add-on local_broker");
    assert_eq!(data["version"], "1.2.3");
    assert_eq!(data["services_role"], serde_json::json!(["mqtt:provide"]));
    assert_eq!(data["hassio_role"], "default");

    let config = serde_json::json!({"result": "ok", "data": {"greeting": "hello", "port": 1883}});
    for path in [
        "/addons/self/options/config",
        "/v2/apps/self/options/config",
    ] {
        assert_eq!(
            call(addr, "GET", path, BROKER, "").await,
            (StatusCode::OK, config.clone())
        );
    }
    // Its own slug is not `self`: the default role does not reach it, as with an upstream.
    let own = call(
        addr,
        "GET",
        "/addons/local_broker/options/config",
        BROKER,
        "",
    )
    .await;
    refused(&own, 403, "the add-on's role does not reach this path");
    // A manager reaches other add-ons' paths, which only a Supervisor could answer.
    let theirs = call(
        addr,
        "GET",
        "/addons/local_broker/options/config",
        MANAGER,
        "",
    )
    .await;
    refused(&theirs, 501, addon_sandbox_no_upstream());

    let linked = call(addr, "GET", "/addons/self/options/config", PLAIN, "").await;
    assert_eq!(linked.0, StatusCode::NOT_FOUND, "{}", linked.1);
    assert!(!linked.1.to_string().contains("secret"), "{}", linked.1);
    let fifo = tokio::time::timeout(
        Duration::from_secs(10),
        call(addr, "GET", "/addons/self/options/config", CLIENT, ""),
    )
    .await
    .expect("a FIFO is not waited on");
    refused(
        &fifo,
        404,
        "the add-on's options.json is not a regular file of at most 1 MiB",
    );

    let (status, info) = call(addr, "GET", "/info", PLAIN, "").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert!(
        info["data"]["supervisor"]
            .as_str()
            .unwrap()
            .starts_with("addon-sandbox-"),
        "{info}"
    );
    assert!(info["data"]["arch"].is_string(), "{info}");

    // No Home Assistant given: /core/info is the JSON 501 naming the flag.
    let core = call(addr, "GET", "/core/info", MANAGER, "").await;
    refused(
        &core,
        501,
        "no Home Assistant is configured (serve --homeassistant URL)",
    );

    // Without the add-ons' network (--no-network) there is no interface to describe.
    refused(
        &call(addr, "GET", "/network/info", PLAIN, "").await,
        501,
        "this gateway made no add-ons' network (serve --no-network)",
    );

    // What the role reaches but a standalone host cannot answer: the JSON 501.
    let host_info = call(addr, "GET", "/host/info", MANAGER, "").await;
    refused(&host_info, 501, addon_sandbox_no_upstream());
    // What the role does not reach: the same refusal as with an upstream, before anything.
    refused(
        &call(addr, "GET", "/backups", PLAIN, "").await,
        403,
        "the add-on's role does not reach this path",
    );
    refused(
        &call(addr, "GET", "/info", Some("guessed"), "").await,
        403,
        "unknown token",
    );
    refused(&call(addr, "GET", "/info", None, "").await, 401, "no token");
    assert!(
        !host.state().join("gateway.json").exists(),
        "--no-network writes no gateway.json"
    );

    // With --homeassistant, /core/info names it.
    let (_served, addr) = host.serve(&["--homeassistant", "http://192.0.2.10:8124"]);
    let (status, core) = call(addr, "GET", "/core/info", MANAGER, "").await;
    assert_eq!(status, StatusCode::OK, "{core}");
    assert_eq!(
        (&core["data"]["ip_address"], &core["data"]["port"]),
        (&"192.0.2.10".into(), &8124.into())
    );
}

/// The text a standalone gateway gives for what it cannot answer.
fn addon_sandbox_no_upstream() -> &'static str {
    "no upstream Supervisor is configured (serve --upstream): this standalone gateway answers only the add-on's own endpoints (/addons/self/info, /addons/self/options/config, /info, /core/info, /services, /network/info)"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_services_registry_follows_the_supervisors_rights() {
    let host = Standalone::new();
    let (_served, addr) = host.serve(&[]);
    let mqtt = "/services/mqtt";
    let registered = || std::fs::read(host.state().join("services.json")).ok();

    let (status, list) = call(addr, "GET", "/services", PLAIN, "").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list["data"]["services"],
        serde_json::json!([
            {"slug": "mqtt", "available": false, "providers": ["local_broker", "local_second"]},
            {"slug": "mysql", "available": false, "providers": []},
        ])
    );
    refused(
        &call(addr, "GET", mqtt, CLIENT, "").await,
        400,
        "Service not enabled",
    );
    refused(
        &call(addr, "GET", "/services/redis", BROKER, "").await,
        404,
        "Service does not exist",
    );

    // Only `provide` writes (the Supervisor lets `want` write too: fail closed here).
    let body = r#"{"host": "core-mosquitto", "port": "1883", "username": "u", "password": "p"}"#;
    for who in [CLIENT, NEEDY] {
        refused(
            &call(addr, "POST", mqtt, who, body).await,
            403,
            "No access to write mqtt service!",
        );
    }
    refused(
        &call(addr, "POST", mqtt, PLAIN, body).await,
        403,
        "No access to mqtt service!",
    );
    // Home Assistant has no services role; no token or an unknown one, as always.
    let core = call(addr, "POST", mqtt, Some(CORE_TOKEN), body).await;
    assert_eq!(core.0, StatusCode::FORBIDDEN, "{}", core.1);
    refused(&call(addr, "POST", mqtt, None, body).await, 401, "no token");
    refused(
        &call(addr, "POST", mqtt, Some("guessed"), body).await,
        403,
        "unknown token",
    );

    // The schema, as SCHEMA_SERVICE_MQTT refuses it.
    for (bad, why) in [
        (
            r#"{"host": "h"}"#,
            "required key not provided @ data['port']",
        ),
        (
            r#"{"port": 1883}"#,
            "required key not provided @ data['host']",
        ),
        (
            r#"{"host": "h", "port": 70000}"#,
            "expected a port (1-65535) for dictionary value @ data['port']",
        ),
        (
            r#"{"host": "h", "port": 1883, "protocol": "5"}"#,
            "extra keys not allowed or bad value @ data['protocol']",
        ),
        (
            r#"{"host": "h", "port": 1883, "database": "x"}"#,
            "extra keys not allowed or bad value @ data['database']",
        ),
        ("[1]", "expected a dictionary"),
        ("not json", "the body is not JSON"),
    ] {
        refused(&call(addr, "POST", mqtt, BROKER, bad).await, 400, why);
    }
    assert_eq!(registered(), None, "nothing refused was stored");

    assert_eq!(
        call(addr, "POST", mqtt, BROKER, body).await,
        (
            StatusCode::OK,
            serde_json::json!({"result": "ok", "data": {}})
        )
    );
    let expected = serde_json::json!({
        "host": "core-mosquitto", "port": 1883, "username": "u", "password": "p",
        "ssl": false, "protocol": "3.1.1", "addon": "local_broker",
    });
    for who in [CLIENT, NEEDY, BROKER] {
        let (status, got) = call(addr, "GET", mqtt, who, "").await;
        assert_eq!((status, &got["data"]), (StatusCode::OK, &expected), "{got}");
    }
    refused(
        &call(addr, "GET", mqtt, PLAIN, "").await,
        403,
        "No access to mqtt service!",
    );
    refused(
        &call(addr, "GET", "/services/mysql", NEEDY, "").await,
        400,
        "Service not enabled",
    );

    // A second provider is refused as the Supervisor refuses it; the first one stays.
    let other = r#"{"host": "elsewhere", "port": 1884}"#;
    refused(
        &call(addr, "POST", mqtt, SECOND, other).await,
        409,
        "The mqtt service is already provided by local_broker",
    );
    let stored: serde_json::Value = serde_json::from_slice(&registered().unwrap()).unwrap();
    assert_eq!(stored, serde_json::json!({"mqtt": expected}));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(host.state().join("services.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the providers' credentials are the owner's only"
    );
    let (_, list) = call(addr, "GET", "/services", CLIENT, "").await;
    assert_eq!(list["data"]["services"][0]["available"], true, "{list}");

    // The registry is the file: another gateway on the state directory reads it.
    {
        let (_again, again) = host.serve(&[]);
        let (status, got) = call(again, "GET", mqtt, CLIENT, "").await;
        assert_eq!((status, &got["data"]), (StatusCode::OK, &expected), "{got}");
    }

    refused(
        &call(addr, "DELETE", mqtt, CLIENT, "").await,
        403,
        "No access to write mqtt service!",
    );
    refused(
        &call(addr, "PUT", mqtt, BROKER, body).await,
        405,
        "method not allowed",
    );
    assert_eq!(
        call(addr, "DELETE", mqtt, BROKER, "").await,
        (
            StatusCode::OK,
            serde_json::json!({"result": "ok", "data": {}})
        )
    );
    refused(
        &call(addr, "GET", mqtt, CLIENT, "").await,
        400,
        "Service not enabled",
    );
    refused(
        &call(addr, "DELETE", mqtt, BROKER, "").await,
        404,
        "The mqtt service is not currently provided by any app",
    );
    // Once removed, another provider may take it.
    let (status, _) = call(addr, "POST", mqtt, SECOND, other).await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = call(addr, "GET", mqtt, NEEDY, "").await;
    assert_eq!(got["data"]["addon"], "local_second", "{got}");
}
