//! Forwarding: headers that belong to one hop are dropped, bodies stream in both directions,
//! and a websocket upgrade becomes a byte relay between the two upgraded connections (frames
//! are passed untouched, so extensions and subprotocols stay between client and server).

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::log::Answered;

pub type ResBody = BoxBody<Bytes, hyper::Error>;
/// A client's request body as the gateway passes it on.
pub type ReqBody = super::conn::TimedBody;

/// How long an upstream may take to send its response headers. Bodies (log streams, backups)
/// may then take as long as they need.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(300);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResBody> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The Supervisor's error shape: `{"result": "error", "message": ...}`.
/// Marked as the gateway's own answer, with `message` as the reason the log gives.
pub fn error(status: StatusCode, message: &str) -> Response<ResBody> {
    let body = serde_json::json!({"result": "error", "message": message});
    let mut response = full(status, "application/json", body.to_string());
    response.extensions_mut().insert(Answered {
        reason: Some(message.to_owned()),
    });
    response
}

pub fn ok(data: serde_json::Value) -> Response<ResBody> {
    let body = serde_json::json!({"result": "ok", "data": data});
    let mut response = full(StatusCode::OK, "application/json", body.to_string());
    response.extensions_mut().insert(Answered { reason: None });
    response
}

/// Remove hop-by-hop headers, including every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Header names equal with `_` read as `-`: CGI and WSGI servers turn both into the same
/// `HTTP_X_REMOTE_USER_ID`, so `X_Remote_User_Id` is the header it will be taken for.
fn same_name(a: &str, b: &str) -> bool {
    let fold = |c: u8| if c == b'_' { b'-' } else { c };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// Remove every header (every copy) whose name is one of `names` in any spelling: letter case
/// (`HeaderMap` names are lowercase whatever the client sent) and `_` for `-`.
pub fn strip_named(headers: &mut HeaderMap, names: &[&str]) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| names.iter().any(|n| same_name(k.as_str(), n)))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `Connection: upgrade` with `Upgrade: websocket`, as the Supervisor tests it.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket")
}

/// `X-Forwarded-For`: what the client sent, then the peer that connected to us. (The Supervisor
/// writes the literal `None, <peer>` when there was nothing before.)
pub fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    let prior: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let value = if prior.is_empty() {
        peer.to_string()
    } else {
        format!("{}, {peer}", prior.join(", "))
    };
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("unknown")),
    );
}

/// The pooled HTTP/1 client used for every forwarded request that is not an upgrade.
pub fn client() -> Client<HttpConnector, ReqBody> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build(connector)
}

fn bad_gateway(what: impl std::fmt::Display) -> Response<ResBody> {
    error(
        StatusCode::BAD_GATEWAY,
        &format!("upstream unavailable: {what}"),
    )
}

fn finish(response: Response<Incoming>) -> Response<ResBody> {
    let (mut parts, body) = response.into_parts();
    if parts.status != StatusCode::SWITCHING_PROTOCOLS {
        strip_hop_by_hop(&mut parts.headers);
    }
    Response::from_parts(parts, body.boxed())
}

/// Send `request` (its URI already absolute, its headers already rewritten) and stream the
/// answer back.
pub async fn forward(
    client: &Client<HttpConnector, ReqBody>,
    request: Request<ReqBody>,
) -> Response<ResBody> {
    match tokio::time::timeout(HEADER_TIMEOUT, client.request(request)).await {
        Ok(Ok(response)) => finish(response),
        Ok(Err(e)) => bad_gateway(e),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream sent no response in time",
        ),
    }
}

/// Forward a websocket handshake over a connection of its own and, when the upstream switches
/// protocols, relay bytes between the client's and the upstream's upgraded connections.
pub async fn forward_upgrade(mut request: Request<ReqBody>, target: &Uri) -> Response<ResBody> {
    let Some(authority) = target.authority().map(|a| a.to_string()) else {
        return bad_gateway("no upstream address");
    };
    let client_side = hyper::upgrade::on(&mut request);
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&authority));
    let stream = match connect.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return bad_gateway(e),
        Err(_) => return bad_gateway("connect timed out"),
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return bad_gateway(e),
        };
    tokio::spawn(connection.with_upgrades());
    let (mut parts, body) = request.into_parts();
    parts.uri = target
        .path_and_query()
        .map(|pq| Uri::from(pq.clone()))
        .unwrap_or_else(|| Uri::from_static("/"));
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    parts
        .headers
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if !parts.headers.contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(&authority)
    {
        parts.headers.insert(header::HOST, host);
    }
    let sent = sender.send_request(Request::from_parts(parts, body));
    let mut response = match tokio::time::timeout(HEADER_TIMEOUT, sent).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return bad_gateway(e),
        Err(_) => {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream sent no response in time",
            );
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_side = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(client_io), Ok(upstream_io)) = tokio::join!(client_side, upstream_side) else {
                return;
            };
            let mut client_io = TokioIo::new(client_io);
            let mut upstream_io = TokioIo::new(upstream_io);
            let _ = tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await;
        });
    }
    finish(response)
}
