//! The hyper server: the accept loop, and the dispatch of each request to the step that
//! answers it, in the Supervisor's order (filters, session endpoints, ingress, the decision).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::conn::{Activity, PeerSlot, TimedBody, Tracked};

use super::ingress::ingress_route;
use super::log::{Answered, Line, Seen};
use super::proxy::{ReqBody, ResBody, error};
use super::{Caller, Decision, Gateway, Presented, extract_token, path};

/// The answer to a connection over the per-peer limit.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
    content-length: 63\r\nconnection: close\r\n\r\n\
    {\"result\": \"error\", \"message\": \"too many connections from you\"}";

impl Gateway {
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
            let Some(slot) = self.peers.admit(peer.ip(), self.conn_limits.per_peer) else {
                // Best effort: the peer learns why, and nothing waits on its socket.
                let _ = stream.try_write(TOO_MANY);
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(self.clone().connection(stream, peer, slot));
        }
    }

    /// One connection, until it ends, upgrades, or goes idle.
    async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, slot: PeerSlot) {
        let limits = self.conn_limits;
        let activity = Activity::default();
        let io = TokioIo::new(Tracked::new(stream, activity.clone()));
        let gateway = self.clone();
        let service = service_fn(move |request| {
            let gateway = gateway.clone();
            async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(connection);
        loop {
            let deadline = activity.deadline(limits.idle_timeout);
            tokio::select! {
                _ = &mut connection => break,
                _ = tokio::time::sleep_until(deadline) => {
                    if activity.deadline(limits.idle_timeout) <= tokio::time::Instant::now() {
                        break;
                    }
                }
            }
        }
        drop(slot);
    }

    /// Decide and answer one request, and log it as the log level asks.
    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResBody> {
        let method = request.method().clone();
        let body_timeout = self.conn_limits.body_timeout;
        let request = request.map(|body| TimedBody::new(body, body_timeout));
        let mut seen = Seen::default();
        let response = self.route(request, peer, &mut seen).await;
        self.log_response(method.as_str(), peer.ip(), &seen, &response);
        response
    }

    fn log_response(&self, method: &str, peer: IpAddr, seen: &Seen, response: &Response<ResBody>) {
        let answered = response.extensions().get::<Answered>();
        let status = response.status();
        let (event, denied) = match answered {
            None => ("forwarded", false),
            Some(_) if status.is_client_error() => ("denied", true),
            Some(_) if status.is_server_error() => ("failed", true),
            Some(_) => ("answered", false),
        };
        if self.log.wants(denied) {
            self.log.write(&Line {
                event,
                status: status.as_u16(),
                peer,
                method,
                seen,
                reason: answered.and_then(|a| a.reason.as_deref()),
            });
        }
    }

    async fn route(
        self: &Arc<Self>,
        request: Request<ReqBody>,
        peer: SocketAddr,
        seen: &mut Seen,
    ) -> Response<ResBody> {
        let raw_path = request.uri().path().to_owned();
        let query = request.uri().query().map(str::to_owned);
        let presented = match extract_token(request.headers()) {
            None => Presented::Missing,
            Some(t) => self.caller(&t).map_or(Presented::Unknown, Presented::Known),
        };
        seen.describe(&presented);
        seen.path = Some(raw_path.clone());
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
                .ingress(request, peer.ip(), (&token, &rest), query.as_deref(), seen)
                .await;
        }
        let canonical = match path::normalise(&raw_path) {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        seen.path = Some(canonical.clone());
        match self.decide(&canonical, presented) {
            Decision::Forward(caller) if self.upstream.is_none() => {
                self.standalone(request, &canonical, &caller).await
            }
            Decision::Open if self.upstream.is_none() => {
                self.standalone(request, &canonical, &Caller::Open).await
            }
            Decision::Forward(caller) => {
                self.forward_api(request, peer.ip(), &canonical, &caller)
                    .await
            }
            Decision::Open => {
                self.forward_api(request, peer.ip(), &canonical, &Caller::Open)
                    .await
            }
            Decision::CoreProxy => self.core_proxy(request, peer.ip(), &canonical, seen).await,
            Decision::Auth(addon) => self.auth(request, &addon).await,
            Decision::Deny(status, why) => error(status, why),
        }
    }
}

impl Seen {
    /// The caller as the log names it: never by its token.
    pub(super) fn describe(&mut self, presented: &Presented) {
        let (caller, role) = match presented {
            Presented::Missing => ("none".to_owned(), None),
            Presented::Unknown => ("unknown".to_owned(), None),
            Presented::Known(caller) => describe_caller(caller),
        };
        self.caller = Some(caller);
        self.role = role;
    }
}

pub(super) fn describe_caller(caller: &Caller) -> (String, Option<&'static str>) {
    match caller {
        Caller::HomeAssistant => ("homeassistant".to_owned(), None),
        Caller::Addon(a) => (format!("addon:{}", a.full_slug), Some(a.role.name())),
        Caller::Open => ("none".to_owned(), None),
    }
}
