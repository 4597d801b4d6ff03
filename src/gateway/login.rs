//! `/auth` answered by the gateway for an add-on with `auth_api`: the credentials read from
//! the request, the per-add-on and per-user limits on failed logins, and the backend's verdict.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::callers::AddonCaller;
use super::proxy::{self, ReqBody, ResBody, error};
use super::{Gateway, auth};

impl Gateway {
    /// One failure reserved from the add-on's bucket and the user's, or neither.
    fn reserve_attempt(&self, addon: &str, user_key: &(String, String)) -> Result<(), Duration> {
        self.per_addon.take(&addon.to_owned())?;
        self.per_user.take(user_key).inspect_err(|_| {
            self.per_addon.give_back(&addon.to_owned());
        })
    }

    pub(super) async fn auth(
        &self,
        request: Request<ReqBody>,
        addon: &AddonCaller,
    ) -> Response<ResBody> {
        if !addon.auth_api {
            return error(StatusCode::FORBIDDEN, "can't use home assistant auth");
        }
        if request.method() != Method::GET && request.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "use get or post");
        }
        let Some(backend) = &self.auth_backend else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no credential backend configured",
            );
        };
        let (parts, body) = request.into_parts();
        let credentials = match auth::read_credentials(&parts.headers, body).await {
            Ok(c) => c,
            Err(e) => {
                let mut response = error(e.status(), &e.to_string());
                if e.status() == StatusCode::UNAUTHORIZED {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"Home Assistant Authentication\""),
                    );
                }
                return response;
            }
        };
        let user_key = (addon.full_slug.clone(), credentials.username.clone());
        if let Err(wait) = self.reserve_attempt(&addon.full_slug, &user_key) {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins, wait",
            );
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return response;
        }
        let verdict = backend.check(&credentials, &addon.full_slug).await;
        // Only a no-match keeps the reservation; a request dropped while the backend decides
        // keeps it too (fail closed: the guess may have reached the backend).
        if verdict != auth::Verdict::NoMatch {
            self.per_addon.give_back(&addon.full_slug);
            self.per_user.give_back(&user_key);
        }
        match verdict {
            auth::Verdict::Match => proxy::ok(serde_json::json!({})),
            auth::Verdict::NoMatch => {
                error(StatusCode::UNAUTHORIZED, "invalid username or password")
            }
            auth::Verdict::Unavailable(why) => error(StatusCode::SERVICE_UNAVAILABLE, &why),
        }
    }
}
