//! API forwarding: the Home Assistant proxy's own token check, and the request that goes
//! upstream with the gateway's credential in place of the caller's token and every client
//! copy of a credential or caller header removed.

use std::net::IpAddr;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use super::proxy::{self, ResBody, error};
use super::{CALLER_HEADER, Caller, Gateway, PROTECTED_HEADERS, extract_token, path};

impl Gateway {
    /// The Supervisor's Home Assistant proxy (`/core/api/…`, `/core/websocket`) skips its
    /// token middleware and checks for itself that the token (`Authorization` or `X-Ha-Access`)
    /// belongs to an add-on with `homeassistant_api`; so does this.
    pub(super) async fn core_proxy(
        &self,
        request: Request<Incoming>,
        peer: IpAddr,
        canonical: &str,
    ) -> Response<ResBody> {
        let token = extract_token(request.headers()).or_else(|| {
            request
                .headers()
                .get("x-ha-access")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let Some(token) = token else {
            return error(StatusCode::UNAUTHORIZED, "no token");
        };
        match self.caller(&token) {
            Some(Caller::Addon(addon)) if addon.homeassistant_api => {
                self.forward_api(request, peer, canonical, &Caller::Addon(addon))
                    .await
            }
            Some(Caller::Addon(_)) => {
                error(StatusCode::FORBIDDEN, "the add-on has no homeassistant_api")
            }
            Some(_) => error(
                StatusCode::FORBIDDEN,
                "home assistant does not proxy to itself",
            ),
            None => error(StatusCode::FORBIDDEN, "unknown token"),
        }
    }

    fn upstream_uri(&self, canonical: &str, query: Option<&str>) -> Option<Uri> {
        let base = self.upstream.path().trim_end_matches('/');
        let mut target = format!(
            "{}://{}{base}{}",
            self.upstream.scheme_str().unwrap_or("http"),
            self.upstream.authority()?,
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
        request: Request<Incoming>,
        peer: IpAddr,
        canonical: &str,
        caller: &Caller,
    ) -> Response<ResBody> {
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
        body: Incoming,
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
