//! `/core/websocket` and `/homeassistant/websocket`: Home Assistant's websocket API through the
//! gateway, as the Supervisor's `api/proxy.py` serves it.
//!
//! The add-on's credential travels *inside* the socket: the first message it sends is
//! `{"type": "auth", "access_token": <its SUPERVISOR_TOKEN>}`. Relaying bytes would carry that
//! token upstream, so the gateway ends the add-on's socket itself: it sends `auth_required`,
//! reads the add-on's auth message and checks the token (an add-on with `homeassistant_api`),
//! and only then opens its own socket upstream, authenticates there with its own credential
//! and relays messages from then on. The upstream never sees the add-on's token, in a header
//! or a message; an add-on that fails gets `auth_invalid` and no upstream connection at all.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::callers::AddonCaller;
use super::log::{Line, Seen};
use super::proxy::{self, ReqBody, ResBody, error};
use super::{CALLER_HEADER, Gateway, Presented};

/// How long each side has for each step of the authentication (Home Assistant allows 10 s).
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a request is the websocket of the Home Assistant proxy.
pub(super) fn is_core_websocket(canonical: &str, request: &Request<ReqBody>) -> bool {
    matches!(canonical, "/core/websocket" | "/homeassistant/websocket")
        && proxy::is_websocket(request.headers())
}

fn json(value: serde_json::Value) -> Message {
    Message::text(value.to_string())
}

fn invalid(message: &str) -> Message {
    json(serde_json::json!({"type": "auth_invalid", "message": message}))
}

/// The next text message as JSON, within [`AUTH_TIMEOUT`]; `None` for anything else.
async fn next_json<S>(ws: &mut WebSocketStream<S>) -> Option<serde_json::Value>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(AUTH_TIMEOUT, ws.next()).await.ok()??;
        match message.ok()? {
            Message::Text(text) => return serde_json::from_str(text.as_str()).ok(),
            Message::Ping(_) | Message::Pong(_) => continue,
            _ => return None,
        }
    }
}

/// The token of an auth message, as the Supervisor reads it.
fn message_token(message: &serde_json::Value) -> Option<&str> {
    if message.get("type").and_then(|t| t.as_str()) != Some("auth") {
        return None;
    }
    ["api_password", "access_token"]
        .iter()
        .find_map(|k| message.get(*k).and_then(|v| v.as_str()))
        .filter(|t| !t.is_empty())
}

impl Gateway {
    /// Answer the add-on's handshake with 101 and run the socket on a task of its own.
    pub(super) fn core_websocket(
        self: &Arc<Self>,
        mut request: Request<ReqBody>,
        peer: IpAddr,
        canonical: &str,
    ) -> Response<ResBody> {
        let Some(credential) = self.upstream_token.clone() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway has no upstream credential for the websocket",
            );
        };
        let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY) else {
            return error(StatusCode::BAD_REQUEST, "no sec-websocket-key");
        };
        let accept = derive_accept_key(key.as_bytes());
        let Some(target) = self.websocket_target(canonical) else {
            return error(StatusCode::BAD_GATEWAY, "no upstream address");
        };
        let upgrade = hyper::upgrade::on(&mut request);
        let gateway = self.clone();
        let canonical = canonical.to_owned();
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            gateway
                .run_socket(ws, peer, (&canonical, target), credential)
                .await;
        });
        let mut response = proxy::full(StatusCode::SWITCHING_PROTOCOLS, "text/plain", "");
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_TYPE);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        response
    }

    fn websocket_target(&self, canonical: &str) -> Option<Uri> {
        let upstream = self.upstream.as_ref()?;
        let base = upstream.path().trim_end_matches('/');
        let authority = upstream.authority()?;
        format!("ws://{authority}{base}{canonical}").parse().ok()
    }

    /// The add-on's authentication, then the upstream's, then the relay.
    async fn run_socket<S>(
        &self,
        mut client: WebSocketStream<S>,
        peer: IpAddr,
        (canonical, target): (&str, Uri),
        credential: String,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let required = json(serde_json::json!({"type": "auth_required"}));
        if client.send(required).await.is_err() {
            return;
        }
        let first = next_json(&mut client).await;
        let addon = match first.as_ref().and_then(message_token) {
            Some(token) => self.proxy_caller(token),
            None => Err((StatusCode::UNAUTHORIZED, "no auth message")),
        };
        let addon = match addon {
            Ok(addon) => addon,
            Err((status, why)) => {
                self.log_socket_denial(peer, canonical, first.as_ref(), (status, why));
                let _ = client.send(invalid("Invalid access")).await;
                let _ = client.close(None).await;
                return;
            }
        };
        let Some((upstream, auth_ok)) = upstream_socket(&target, &addon, peer, &credential).await
        else {
            let _ = client.send(invalid("upstream refused the gateway")).await;
            let _ = client.close(None).await;
            return;
        };
        if client.send(auth_ok).await.is_ok() {
            relay(client, upstream).await;
        }
    }
}

impl Gateway {
    /// A refused auth message is a denial like any other, logged after the 101 was.
    fn log_socket_denial(
        &self,
        peer: IpAddr,
        canonical: &str,
        message: Option<&serde_json::Value>,
        (status, why): (StatusCode, &str),
    ) {
        if !self.log.wants(true) {
            return;
        }
        let mut seen = Seen {
            path: Some(canonical.to_owned()),
            ..Seen::default()
        };
        seen.describe(&match message.and_then(message_token) {
            None => Presented::Missing,
            Some(t) => self.caller(t).map_or(Presented::Unknown, Presented::Known),
        });
        self.log.write(&Line {
            event: "denied",
            status: status.as_u16(),
            peer,
            method: "GET",
            seen: &seen,
            reason: Some(why),
        });
    }
}

/// The gateway's own socket to the upstream, authenticated with its own credential; with the
/// upstream's `auth_ok` (which carries its version) for the add-on.
async fn upstream_socket(
    target: &Uri,
    addon: &AddonCaller,
    peer: IpAddr,
    credential: &str,
) -> Option<(WebSocketStream<tokio::net::TcpStream>, Message)> {
    let authority = target.authority()?.to_string();
    let stream = tokio::time::timeout(
        proxy::CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&authority),
    )
    .await
    .ok()?
    .ok()?;
    let _ = stream.set_nodelay(true);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            target.to_string(),
        )
        .ok()?;
    let headers = request.headers_mut();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {credential}")).ok()?,
    );
    let caller = HeaderValue::from_str(&format!("addon:{}", addon.full_slug)).ok()?;
    headers.insert(CALLER_HEADER, caller);
    proxy::append_forwarded_for(headers, peer);
    let handshake = tokio_tungstenite::client_async(request, stream);
    let (mut ws, _) = tokio::time::timeout(AUTH_TIMEOUT, handshake)
        .await
        .ok()?
        .ok()?;
    let first = next_json(&mut ws).await?;
    let mut answer = first.clone();
    if first["type"] == "auth_required" {
        let auth = serde_json::json!({"type": "auth", "access_token": credential});
        ws.send(json(auth)).await.ok()?;
        answer = next_json(&mut ws).await?;
    }
    (answer["type"] == "auth_ok").then(|| (ws, json(answer)))
}

/// Messages both ways until either side closes. Pings are answered by each side's own
/// library, so only data and close frames are passed on.
async fn relay<A, B>(client: WebSocketStream<A>, upstream: WebSocketStream<B>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (client_tx, client_rx) = client.split();
    let (upstream_tx, upstream_rx) = upstream.split();
    tokio::select! {
        _ = pump(client_rx, upstream_tx) => {}
        _ = pump(upstream_rx, client_tx) => {}
    }
}

/// One direction of the relay.
async fn pump<R, W>(mut from: R, mut to: W)
where
    R: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
    W: futures_util::Sink<Message> + Unpin,
{
    while let Some(Ok(m)) = from.next().await {
        let close = m.is_close();
        if (m.is_text() || m.is_binary() || close) && to.send(m).await.is_err() {
            break;
        }
        if close {
            break;
        }
    }
    let _ = to.close().await;
}
