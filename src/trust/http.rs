//! The registry client of `trust fetch`: the OCI distribution API over HTTPS, verified against
//! the system's certificate store and an operator's extra CA file, with the registries'
//! anonymous token flow (a `401` naming a Bearer realm is answered by a token request and the
//! request sent again once), and redirects to blob storage followed to HTTPS only, never with
//! the registry's token. A registry on the loopback address is tried over HTTPS and, when it
//! does not speak TLS, over plain HTTP, as Docker treats 127.0.0.0/8 as insecure registries;
//! any other registry is HTTPS or nothing.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use rustls::pki_types::ServerName;

use super::TrustError;

/// Token answers larger than this are refused.
const MAX_TOKEN: usize = 64 * 1024;
/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 3;

/// Where one request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// Path and query.
    path: String,
}

impl Target {
    /// `https://host[:port]/path?query` or `http://...`.
    fn parse(url: &str) -> Result<Target, TrustError> {
        let bad = || TrustError::Registry(format!("{url}: not an http(s) URL"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        let (host, port) =
            split_authority(authority, if tls { 443 } else { 80 }).ok_or_else(bad)?;
        Ok(Target {
            tls,
            host,
            port,
            path: path.to_owned(),
        })
    }

    fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.tls { "https" } else { "http" },
            self.authority(),
            self.path
        )
    }
}

/// `host[:port]` (a bracketed IPv6 address too).
fn split_authority(authority: &str, default: u16) -> Option<(String, u16)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One answer: status, the headers the client reads, body.
struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    challenge: Option<String>,
    body: Bytes,
}

/// A client of one registry.
pub struct RegistryClient {
    /// `https://registry` or, for a loopback registry without TLS, `http://registry`.
    base: Mutex<Option<String>>,
    registry: String,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    token: Mutex<Option<String>>,
}

impl RegistryClient {
    /// A client of `registry` (`ghcr.io`, `127.0.0.1:5000`; `docker.io` is Docker Hub's API
    /// host), trusting the system's CAs and those of `extra_ca` (PEM).
    pub fn new(
        registry: &str,
        timeout: Duration,
        extra_ca: Option<&Path>,
    ) -> Result<RegistryClient, TrustError> {
        let registry = match registry {
            "docker.io" => "registry-1.docker.io".to_owned(),
            other => other.to_owned(),
        };
        Ok(RegistryClient {
            base: Mutex::new(None),
            registry,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls_config(extra_ca)?)),
            timeout,
            token: Mutex::new(None),
        })
    }

    /// GET `path` (`/v2/...`): `None` for 404, the body (at most `limit` bytes) and its
    /// content type otherwise; any other status is an error naming it.
    pub async fn get(
        &self,
        path: &str,
        accept: &str,
        limit: usize,
    ) -> Result<Option<(Bytes, String)>, TrustError> {
        let base = self.base().await?;
        let mut target = Target::parse(&format!("{base}{path}"))?;
        let mut token = self.token.lock().map_or(None, |t| t.clone());
        let mut challenged = false;
        let mut redirects = 0;
        loop {
            let on_registry = format!("{}{}", base, target.path) == target.url();
            let auth = token.as_deref().filter(|_| on_registry);
            let answer = self.send(&target, accept, auth, limit).await?;
            match answer.status {
                200..=299 => return Ok(Some((answer.body, answer.content_type))),
                404 => return Ok(None),
                401 if on_registry && !challenged => {
                    let challenge = answer.challenge.ok_or_else(|| {
                        TrustError::Registry(format!(
                            "{} answered 401 without a Bearer challenge (private images need credentials, which trust fetch does not take)",
                            target.url()
                        ))
                    })?;
                    token = Some(self.token_for(&challenge).await?);
                    if let Ok(mut t) = self.token.lock() {
                        t.clone_from(&token);
                    }
                    challenged = true;
                }
                301 | 302 | 303 | 307 | 308 if redirects < MAX_REDIRECTS => {
                    let location = answer.location.ok_or_else(|| {
                        TrustError::Registry(format!("{} redirected nowhere", target.url()))
                    })?;
                    let next = if location.starts_with('/') {
                        Target {
                            path: location.clone(),
                            ..target.clone()
                        }
                    } else {
                        Target::parse(&location)?
                    };
                    if !next.tls && !is_loopback(&next.host) {
                        return Err(TrustError::Registry(format!(
                            "{} redirected to {location} without TLS: refused",
                            target.url()
                        )));
                    }
                    target = next;
                    redirects += 1;
                }
                status => {
                    return Err(TrustError::Registry(format!(
                        "{} answered {status}",
                        target.url()
                    )));
                }
            }
        }
    }

    /// The registry's base URL, decided once: HTTPS, or plain HTTP for a loopback registry
    /// that does not speak TLS.
    async fn base(&self) -> Result<String, TrustError> {
        if let Some(base) = self.base.lock().ok().and_then(|b| b.clone()) {
            return Ok(base);
        }
        let https = format!("https://{}", self.registry);
        let target = Target::parse(&format!("{https}/v2/"))?;
        let base = match self.send(&target, "*/*", None, MAX_TOKEN).await {
            Ok(_) => https,
            // A peer that does not speak TLS, not one whose certificate is refused: that
            // stays an error (the certificate error says which CA to add).
            Err(e)
                if is_loopback(&target.host)
                    && e.to_string().contains(TLS_REFUSED)
                    && !e.to_string().contains("certificate") =>
            {
                format!("http://{}", self.registry)
            }
            Err(e) => return Err(e),
        };
        if let Ok(mut b) = self.base.lock() {
            *b = Some(base.clone());
        }
        Ok(base)
    }

    /// A token from the realm of a `Bearer realm="...",service="...",scope="..."` challenge,
    /// asked anonymously.
    async fn token_for(&self, challenge: &str) -> Result<String, TrustError> {
        let params = parse_challenge(challenge).ok_or_else(|| {
            TrustError::Registry(format!("unreadable authentication challenge: {challenge}"))
        })?;
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TrustError::Registry(format!("no realm in: {challenge}")))?;
        let mut target = Target::parse(&realm)?;
        if !target.tls && !is_loopback(&target.host) {
            return Err(TrustError::Registry(format!(
                "the token realm {realm} is not HTTPS: refused"
            )));
        }
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        if !query.is_empty() {
            let sep = if target.path.contains('?') { '&' } else { '?' };
            target.path = format!("{}{sep}{}", target.path, query.join("&"));
        }
        let answer = self
            .send(&target, "application/json", None, MAX_TOKEN)
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(TrustError::Registry(format!(
                "the token service {realm} answered {}",
                answer.status
            )));
        }
        let doc: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| {
            TrustError::Registry(format!("the token service {realm} answered no JSON: {e}"))
        })?;
        doc["token"]
            .as_str()
            .or(doc["access_token"].as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| TrustError::Registry(format!("the token service {realm} gave no token")))
    }

    /// One request on a connection of its own.
    async fn send(
        &self,
        target: &Target,
        accept: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<Answer, TrustError> {
        let exchange = self.exchange(target, accept, token, limit);
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                TrustError::Registry(format!(
                    "{} did not answer within {:?}",
                    target.url(),
                    self.timeout
                ))
            })?
    }

    async fn exchange(
        &self,
        target: &Target,
        accept: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<Answer, TrustError> {
        let url = target.url();
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            TrustError::Registry(format!("{url}: {what}: {e}"))
        };
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| fail("cannot connect", &e))?;
        let request = {
            let mut r = http::Request::get(target.path.as_str())
                .header(http::header::HOST, target.authority())
                .header(http::header::ACCEPT, accept)
                .header(http::header::USER_AGENT, "addon-sandbox-trust-fetch");
            if let Some(token) = token {
                r = r.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            r.body(Empty::<Bytes>::new())
                .map_err(|e| fail("request", &e))?
        };
        let response = if target.tls {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| fail("not a server name", &e))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| fail(TLS_REFUSED, &e))?;
            crate::tls::send_on(tls, request).await
        } else {
            crate::tls::send_on(tcp, request).await
        }
        .map_err(|e| fail("HTTP", &e))?;
        let header = |name: http::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status().as_u16();
        let content_type = header(http::header::CONTENT_TYPE).unwrap_or_default();
        let location = header(http::header::LOCATION);
        let challenge = header(http::header::WWW_AUTHENTICATE).filter(|c| {
            c.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
        });
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| fail(&format!("the answer (limit {limit} bytes)"), &e))?
            .to_bytes();
        Ok(Answer {
            status,
            content_type,
            location,
            challenge,
            body,
        })
    }
}

/// The word an error of the TLS handshake carries (a loopback registry that gives it falls
/// back to plain HTTP).
const TLS_REFUSED: &str = "TLS handshake refused";

/// The system's CAs (the operator's store: `/etc/ssl/certs` on Debian) and an extra CA file.
fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, TrustError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A certificate the store holds but rustls cannot use is left out, as curl does.
        let _ = roots.add(cert);
    }
    if let Some(file) = extra_ca {
        let pem = std::fs::read(file)?;
        let added = crate::tls::add_pem_cas(&mut roots, &pem)
            .map_err(|e| TrustError::Registry(format!("{}: {e}", file.display())))?;
        if added == 0 {
            return Err(TrustError::Registry(format!(
                "{}: no certificate in it",
                file.display()
            )));
        }
    }
    crate::tls::client_config(roots).map_err(|e| TrustError::Registry(e.to_string()))
}

/// `Bearer realm="...",service="...",scope="..."` as (key, value) pairs.
fn parse_challenge(challenge: &str) -> Option<Vec<(String, String)>> {
    let mut rest = challenge.get(7..)?.trim();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key, value.to_owned()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

/// A query value, percent-encoded but for the characters a scope is made of.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_challenges() {
        let t = Target::parse("https://ghcr.io/token?x=1").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "ghcr.io", 443));
        assert_eq!(t.path, "/token?x=1");
        assert_eq!(t.url(), "https://ghcr.io/token?x=1");
        let t = Target::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!((t.port, t.path.as_str()), (5000, "/"));
        assert_eq!(t.authority(), "127.0.0.1:5000");
        let t = Target::parse("https://[::1]:8443/v2/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("https://user@host/").is_err());
        let c = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:home-assistant/amd64-addon-ssh:pull""#,
        )
        .unwrap();
        assert_eq!(c[0], ("realm".into(), "https://ghcr.io/token".into()));
        assert_eq!(c[1], ("service".into(), "ghcr.io".into()));
        assert_eq!(
            c[2].1, "repository:home-assistant/amd64-addon-ssh:pull",
            "{c:?}"
        );
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository:a/b:pull%2Cpush"
        );
        assert!(is_loopback("127.0.0.1") && is_loopback("localhost") && !is_loopback("ghcr.io"));
    }
}
