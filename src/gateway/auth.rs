//! `/auth`: an add-on with `auth_api: true` checks a Home Assistant username and password.
//!
//! Credentials are read as the Supervisor reads them (`supervisor/api/auth.py`): a Basic
//! `Authorization` header, else a JSON body (`username` or `user`, `password`) when the
//! content type is exactly `application/json`, else a form when it is exactly
//! `application/x-www-form-urlencoded`, else 401 with a Basic challenge. They are then checked
//! by a credential backend: an HTTP endpoint that takes `{"username", "password", "addon"}`
//! and answers 200 for a match, 400/401/403/404 for no match (Home Assistant's
//! `api/hassio_auth` contract). Any other answer, or no answer, is an error (503), never a
//! success, and is not counted as a failed guess.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;

pub const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Credentials never need more than this; a bigger body is refused unread.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Why no credentials could be read; each maps to the Supervisor's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("no credentials: send basic auth, json or a form")]
    Missing,
    #[error("credentials must be strings")]
    NotStrings,
    #[error("credentials are malformed")]
    Malformed,
    #[error("request body is too large")]
    TooLarge,
}

impl CredentialsError {
    pub fn status(&self) -> StatusCode {
        match self {
            CredentialsError::Missing => StatusCode::UNAUTHORIZED,
            CredentialsError::NotStrings | CredentialsError::Malformed => StatusCode::BAD_REQUEST,
            CredentialsError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

fn basic(headers: &HeaderMap) -> Option<Result<Credentials, CredentialsError>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Some(match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((user, password)) => Ok(Credentials {
            username: user.to_owned(),
            password: password.to_owned(),
        }),
        None => Err(CredentialsError::Malformed),
    })
}

fn from_json(body: &[u8]) -> Result<Credentials, CredentialsError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| CredentialsError::Malformed)?;
    let field = |names: &[&str]| -> Result<String, CredentialsError> {
        let found = names.iter().find_map(|n| value.get(*n));
        match found {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(CredentialsError::NotStrings),
            None => Err(CredentialsError::Missing),
        }
    };
    Ok(Credentials {
        username: field(&["username", "user"])?,
        password: field(&["password"])?,
    })
}

fn form_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn from_form(body: &[u8]) -> Result<Credentials, CredentialsError> {
    let text = std::str::from_utf8(body).map_err(|_| CredentialsError::Malformed)?;
    let mut username = None;
    let mut password = None;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = form_decode(k).ok_or(CredentialsError::Malformed)?;
        let v = form_decode(v).ok_or(CredentialsError::Malformed)?;
        match k.as_str() {
            "username" | "user" if username.is_none() => username = Some(v),
            "password" if password.is_none() => password = Some(v),
            _ => {}
        }
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(Credentials { username, password }),
        _ => Err(CredentialsError::Missing),
    }
}

/// Read the credentials of an `/auth` request.
pub async fn read_credentials(
    headers: &HeaderMap,
    body: super::proxy::ReqBody,
) -> Result<Credentials, CredentialsError> {
    if let Some(found) = basic(headers) {
        return found;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parse: fn(&[u8]) -> Result<Credentials, CredentialsError> = match content_type {
        "application/json" => from_json,
        "application/x-www-form-urlencoded" => from_form,
        _ => return Err(CredentialsError::Missing),
    };
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| CredentialsError::TooLarge)?
        .to_bytes();
    parse(&bytes)
}

/// What the backend said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    NoMatch,
    /// The backend could not decide (down, slow, or an unexpected answer).
    Unavailable(String),
}

/// Home Assistant's `api/hassio_auth` contract over HTTP.
pub struct HttpBackend {
    url: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpBackend {
    pub fn new(url: Uri) -> HttpBackend {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        HttpBackend {
            url,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    pub async fn check(&self, credentials: &Credentials, addon: &str) -> Verdict {
        let body = serde_json::json!({
            "username": credentials.username,
            "password": credentials.password,
            "addon": addon,
        });
        let request = http::Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())));
        let Ok(request) = request else {
            return Verdict::Unavailable("bad backend url".into());
        };
        match tokio::time::timeout(BACKEND_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => match response.status().as_u16() {
                200 => Verdict::Match,
                400 | 401 | 403 | 404 => Verdict::NoMatch,
                other => Verdict::Unavailable(format!("backend answered {other}")),
            },
            Ok(Err(e)) => Verdict::Unavailable(format!("backend unreachable: {e}")),
            Err(_) => Verdict::Unavailable("backend timed out".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supervisors_credential_shapes() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "Basic dXNlcjpwYTpzcw==".parse().unwrap(),
        );
        assert_eq!(
            basic(&headers),
            Some(Ok(Credentials {
                username: "user".into(),
                password: "pa:ss".into()
            }))
        );
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic(&headers), None);
        assert_eq!(
            from_json(br#"{"user": "u", "password": "p"}"#)
                .unwrap()
                .username,
            "u"
        );
        assert_eq!(
            from_json(br#"{"username": 1, "password": "p"}"#),
            Err(CredentialsError::NotStrings)
        );
        assert_eq!(
            from_form(b"username=a+b&password=%26x").unwrap(),
            Credentials {
                username: "a b".into(),
                password: "&x".into()
            }
        );
        assert_eq!(from_form(b"username=a"), Err(CredentialsError::Missing));
    }
}
