//! The hyper server: the accept loop, and the dispatch of each request to the step that
//! answers it, in the Supervisor's order (filters, session endpoints, ingress, the decision).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::ingress::ingress_route;
use super::proxy::{ResBody, error};
use super::{Caller, Decision, Gateway, Presented, extract_token, path};

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
    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResBody> {
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
}
