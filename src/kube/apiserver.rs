//! The one corner of the Kubernetes API the loader uses: its own Node, read (`GET`) and its
//! labels changed (`PATCH` with a JSON merge patch), as the pod's service account, over TLS
//! verified against the service account's CA (never skipped: a loader that labelled a node
//! through an impostor would let pods onto nodes without their profiles). I/O.
//!
//! The address is the in-cluster one (`KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`,
//! set by the kubelet in every pod) unless given. The token is read again for every request:
//! the kubelet rotates a projected service account token in place.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use rustls::pki_types::ServerName;

use super::names::is_dns_subdomain;

/// Where the kubelet mounts the pod's service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// One request, connection and TLS handshake included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A Node object is a few KiB; anything far larger is not an answer to read.
const MAX_ANSWER: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it (the API server's CA is expected)")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {detail}")]
    BadCertificate { path: PathBuf, detail: String },
    #[error("{path}: the service account token is empty")]
    EmptyToken { path: PathBuf },
    #[error(
        "the API server address {0:?}: expected https://HOST[:PORT] (never plain http: the token would travel in clear)"
    )]
    BadServer(String),
    #[error("the node name {0:?} is not a DNS subdomain, so not a node's name")]
    BadNodeName(String),
    #[error("the API server {server}: {what}: {detail}")]
    Transport {
        server: String,
        what: &'static str,
        detail: String,
    },
    #[error("the API server {server}: no answer within {seconds} s")]
    Timeout { server: String, seconds: u64 },
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{method} {path}: the answer is not a Node object: {detail}")]
    BadAnswer {
        method: &'static str,
        path: String,
        detail: String,
    },
}

impl ApiError {
    /// Retrying cannot help: the CA, the token, the permissions or the node name are wrong.
    pub fn is_permanent(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => matches!(status, 400 | 401 | 403 | 404 | 422),
            ApiError::Transport { what, .. } => *what == TLS_HANDSHAKE,
            ApiError::Timeout { .. } => false,
            _ => true,
        }
    }
}

const TLS_HANDSHAKE: &str =
    "TLS handshake refused (its certificate is checked against the service account's CA)";

/// The API server's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

impl Server {
    /// `https://HOST[:PORT]` (port 443 by default; an IPv6 address in brackets).
    pub fn parse(url: &str) -> Result<Server, ApiError> {
        let bad = || ApiError::BadServer(url.to_owned());
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None => 443,
        };
        let host_ok = host.parse::<IpAddr>().is_ok() || is_dns_subdomain(host);
        if !host_ok || port == 0 {
            return Err(bad());
        }
        Ok(Server {
            host: host.to_owned(),
            port,
        })
    }

    /// The in-cluster address from `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`
    /// (as given: `None` when the host is unset, i.e. not in a pod).
    pub fn in_cluster(
        host: Option<String>,
        port: Option<String>,
    ) -> Option<Result<Server, ApiError>> {
        let host = host.filter(|h| !h.is_empty())?;
        let port = port.unwrap_or_else(|| "443".into());
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Some(Server::parse(&format!("https://{host}:{port}")))
    }

    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A client of the API server as one service account.
pub struct Client {
    server: Server,
    token_file: PathBuf,
    tls: tokio_rustls::TlsConnector,
    runtime: tokio::runtime::Runtime,
}

fn read(path: &Path) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|source| ApiError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The TLS settings: only `ca_file`'s certificates are trusted, nothing else.
fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, ApiError> {
    let pem = read(ca_file)?;
    let bad = |detail: String| ApiError::BadCertificate {
        path: ca_file.to_owned(),
        detail,
    };
    let mut roots = rustls::RootCertStore::empty();
    let added = crate::tls::add_pem_cas(&mut roots, &pem).map_err(|e| bad(e.to_string()))?;
    if added == 0 {
        return Err(ApiError::NoCertificate {
            path: ca_file.to_owned(),
        });
    }
    crate::tls::client_config(roots).map_err(|e| bad(e.to_string()))
}

impl Client {
    /// Reads the CA now (a bad one is an error before anything else happens); the token is
    /// read for each request.
    pub fn new(server: Server, token_file: &Path, ca_file: &Path) -> Result<Client, ApiError> {
        let config = tls_config(ca_file)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ApiError::Read {
                path: PathBuf::from("(tokio runtime)"),
                source,
            })?;
        Ok(Client {
            server,
            token_file: token_file.to_owned(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            runtime,
        })
    }

    /// The node's labels.
    pub fn node_labels(&self, node: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let path = node_path(node)?;
        let answer = self.request("GET", &path, None)?;
        labels_of(answer, "GET", &path)
    }

    /// Applies a JSON merge patch to the node; its labels afterwards.
    pub fn patch_node(
        &self,
        node: &str,
        patch: &serde_json::Value,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let path = node_path(node)?;
        let answer = self.request("PATCH", &path, Some(patch.to_string().into_bytes()))?;
        labels_of(answer, "PATCH", &path)
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<serde_json::Value, ApiError> {
        let token = String::from_utf8_lossy(&read(&self.token_file)?)
            .trim()
            .to_owned();
        if token.is_empty() {
            return Err(ApiError::EmptyToken {
                path: self.token_file.clone(),
            });
        }
        let server = self.server.authority();
        let exchange = self.exchange(method, path, &token, body);
        let (status, bytes) = self
            .runtime
            .block_on(async { tokio::time::timeout(TIMEOUT, exchange).await })
            .map_err(|_| ApiError::Timeout {
                server: server.clone(),
                seconds: TIMEOUT.as_secs(),
            })??;
        if !(200..300).contains(&status) {
            return Err(ApiError::Status {
                method,
                path: path.to_owned(),
                status,
                message: status_message(&bytes),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadAnswer {
            method,
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// One request on its own connection (a pass makes at most two).
    async fn exchange(
        &self,
        method: &'static str,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), ApiError> {
        let server = self.server.authority();
        let transport = |what: &'static str| {
            let server = server.clone();
            move |e: &dyn std::fmt::Display| ApiError::Transport {
                server,
                what,
                detail: e.to_string(),
            }
        };
        let tcp = tokio::net::TcpStream::connect((self.server.host.as_str(), self.server.port))
            .await
            .map_err(|e| transport("cannot connect")(&e))?;
        let name = ServerName::try_from(self.server.host.clone())
            .map_err(|e| transport("not a server name")(&e))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| transport(TLS_HANDSHAKE)(&e))?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &server)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "addon-sandbox-profile-loader");
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/merge-patch+json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| transport("HTTP")(&e))?;
        let response = crate::tls::send_on(tls, request)
            .await
            .map_err(|e| transport("HTTP")(&e))?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| transport("reading the answer")(&e))?
            .to_bytes();
        Ok((status, bytes))
    }
}

fn node_path(node: &str) -> Result<String, ApiError> {
    if !is_dns_subdomain(node) {
        return Err(ApiError::BadNodeName(node.to_owned()));
    }
    Ok(format!("/api/v1/nodes/{node}"))
}

/// The `message` of a `Status` answer (what the API server says went wrong), else the text.
fn status_message(bytes: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    if let Some(message) = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(|m| m.as_str())
    {
        let reason = parsed
            .as_ref()
            .and_then(|v| v.get("reason"))
            .and_then(|r| r.as_str());
        return match reason {
            Some(reason) if !reason.is_empty() => format!("{message} ({reason})"),
            _ => message.to_owned(),
        };
    }
    let text = String::from_utf8_lossy(bytes);
    let text: String = text.trim().chars().take(300).collect();
    if text.is_empty() {
        "(no message)".into()
    } else {
        text
    }
}

fn labels_of(
    answer: serde_json::Value,
    method: &'static str,
    path: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = |detail: String| ApiError::BadAnswer {
        method,
        path: path.to_owned(),
        detail,
    };
    if answer.get("kind").and_then(|k| k.as_str()) != Some("Node") {
        return Err(bad(format!("kind {}", answer["kind"])));
    }
    match answer.pointer("/metadata/labels") {
        None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Some(labels) => serde_json::from_value(labels.clone()).map_err(|e| bad(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        let s = Server::parse("https://10.96.0.1:6443").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("10.96.0.1", 6443));
        assert_eq!(
            Server::parse("https://kubernetes.default.svc/")
                .unwrap()
                .port,
            443
        );
        let v6 = Server::parse("https://[fd00::1]:443").unwrap();
        assert_eq!(v6.authority(), "[fd00::1]:443");
        for bad in [
            "http://10.0.0.1",
            "10.0.0.1:443",
            "https://",
            "https://a:0",
            "https://a:x",
            "https://a/b",
        ] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
        assert!(Server::in_cluster(None, Some("443".into())).is_none());
        let v6 = Server::in_cluster(Some("fd00::1".into()), Some("443".into()));
        assert_eq!(v6.unwrap().unwrap().host, "fd00::1");
    }

    #[test]
    fn status_messages() {
        let status = br#"{"kind":"Status","status":"Failure","message":"nodes \"x\" not found","reason":"NotFound","code":404}"#;
        assert_eq!(status_message(status), "nodes \"x\" not found (NotFound)");
        assert_eq!(status_message(b"  "), "(no message)");
        assert!(node_path("../secrets").is_err());
        assert_eq!(node_path("node-1").unwrap(), "/api/v1/nodes/node-1");
    }
}
