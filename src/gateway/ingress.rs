//! Ingress: the session endpoints Home Assistant calls, and the proxy from
//! `/ingress/<token>/…` to the add-on's ingress server, with `X-Remote-User-*` set from the
//! session and every client copy of a user, credential or session header removed.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};

use super::log::Seen;
use super::proxy::{self, ReqBody, ResBody, error};
use super::sessions::SessionUser;
use super::{
    Caller, Gateway, INGRESS_PATH_HEADER, PROTECTED_HEADERS, SESSION_COOKIE, USER_HEADERS,
    extract_token,
};

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
pub(super) fn ingress_route(raw_path: &str) -> Option<(&str, &str)> {
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

impl Gateway {
    /// `POST /ingress/session` and `/ingress/validate_session`: Home Assistant only.
    pub(super) async fn session_endpoint(
        &self,
        request: Request<ReqBody>,
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

    pub(super) async fn ingress(
        &self,
        request: Request<ReqBody>,
        peer: IpAddr,
        (token, rest): (&str, &str),
        query: Option<&str>,
        seen: &mut Seen,
    ) -> Response<ResBody> {
        // The log names the add-on, not its ingress token.
        let addon = self.registry.by_ingress_token(token);
        let slug = addon.as_ref().map_or("?", |a| a.full_slug.as_str());
        seen.path = Some(format!("/ingress/{slug}{rest}"));
        let user = match session_cookie(request.headers()).and_then(|id| self.sessions.check(id)) {
            Some(user) => user,
            None => return error(StatusCode::UNAUTHORIZED, "no valid ingress session"),
        };
        seen.caller = Some(match &user {
            Some(u) => format!("user:{}", u.id),
            None => "session".to_owned(),
        });
        let Some(addon) = addon else {
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
        proxy::strip_named(&mut parts.headers, &PROTECTED_HEADERS);
        drop_session_cookie(&mut parts.headers);
        if let Some(user) = user {
            set_user_headers(&mut parts.headers, &user);
        }
        // As the Supervisor sets it; the token was checked to be `[A-Za-z0-9_-]+`.
        if let Ok(v) = HeaderValue::from_str(&format!("/api/hassio_ingress/{token}")) {
            parts.headers.insert(INGRESS_PATH_HEADER, v);
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
