//! API forwarding: the Home Assistant proxy's own token check, and the request that goes
//! upstream with the gateway's credential in place of the caller's token and every client
//! copy of a credential or caller header removed.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};

use super::callers::AddonCaller;
use super::log::Seen;
use super::proxy::{self, ReqBody, ResBody, error};
use super::websocket::is_core_websocket;
use super::{CALLER_HEADER, Caller, Gateway, PROTECTED_HEADERS, Presented, extract_token, path};

impl Gateway {
    /// The Supervisor's Home Assistant proxy (`/core/api/…`, `/core/websocket`) skips its
    /// token middleware and checks for itself that the token (`Authorization` or `X-Ha-Access`)
    /// belongs to an add-on with `homeassistant_api`; so does this. The websocket's token may
    /// instead come in its first message ([`super::websocket`]); a token in a header is still
    /// checked first.
    pub(super) async fn core_proxy(
        self: &Arc<Self>,
        request: Request<ReqBody>,
        peer: IpAddr,
        canonical: &str,
        seen: &mut Seen,
    ) -> Response<ResBody> {
        let token = extract_token(request.headers()).or_else(|| {
            request
                .headers()
                .get("x-ha-access")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        if let Some(t) = &token {
            seen.describe(&self.caller(t).map_or(Presented::Unknown, Presented::Known));
        }
        let websocket = is_core_websocket(canonical, &request);
        let addon = match token.as_deref().map(|t| self.proxy_caller(t)) {
            None if websocket => return self.core_websocket(request, peer, canonical),
            None => return error(StatusCode::UNAUTHORIZED, "no token"),
            Some(Err((status, why))) => return error(status, why),
            Some(Ok(addon)) => addon,
        };
        if websocket {
            return self.core_websocket(request, peer, canonical);
        }
        self.forward_api(request, peer, canonical, &Caller::Addon(addon))
            .await
    }

    /// The add-on a Home Assistant proxy token names, if it has `homeassistant_api`.
    pub(super) fn proxy_caller(
        &self,
        token: &str,
    ) -> Result<Arc<AddonCaller>, (StatusCode, &'static str)> {
        match self.caller(token) {
            Some(Caller::Addon(addon)) if addon.homeassistant_api => Ok(addon),
            Some(Caller::Addon(_)) => {
                Err((StatusCode::FORBIDDEN, "the add-on has no homeassistant_api"))
            }
            Some(_) => Err((
                StatusCode::FORBIDDEN,
                "home assistant does not proxy to itself",
            )),
            None => Err((StatusCode::FORBIDDEN, "unknown token")),
        }
    }

    fn upstream_uri(&self, canonical: &str, query: Option<&str>) -> Option<Uri> {
        let upstream = self.upstream.as_ref()?;
        let base = upstream.path().trim_end_matches('/');
        let mut target = format!(
            "{}://{}{base}{}",
            upstream.scheme_str().unwrap_or("http"),
            upstream.authority()?,
            path::encode(canonical)
        );
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        target.parse().ok()
    }

    pub(super) async fn forward_api(
        &self,
        request: Request<ReqBody>,
        peer: IpAddr,
        canonical: &str,
        caller: &Caller,
    ) -> Response<ResBody> {
        if self.upstream.is_none() {
            return error(StatusCode::NOT_IMPLEMENTED, super::standalone::NO_UPSTREAM);
        }
        let Some(target) = self.upstream_uri(canonical, request.uri().query()) else {
            return error(StatusCode::BAD_REQUEST, "query cannot be forwarded");
        };
        let websocket = proxy::is_websocket(request.headers());
        let (mut parts, body) = request.into_parts();
        proxy::strip_hop_by_hop(&mut parts.headers);
        proxy::strip_named(&mut parts.headers, &PROTECTED_HEADERS);
        proxy::strip_named(
            &mut parts.headers,
            &["authorization", "x-ha-access", "host"],
        );
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
    pub(super) async fn send(
        &self,
        mut parts: http::request::Parts,
        body: ReqBody,
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
}
