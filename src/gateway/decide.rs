//! The pure decision on an API request (ingress aside): the blacklist, the open paths, the
//! caller its token names and, for an add-on, whether its plan reaches the path. Nothing here
//! touches the network, so the tests hold it against the Supervisor's own regexes.

use http::StatusCode;

use super::callers::AddonCaller;
use super::{Caller, Decision, Gateway, Presented};

/// Equal without an early exit, so timing does not tell how much of a token was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn is_ingress_path(canonical: &str) -> bool {
    canonical.starts_with("/ingress/") || canonical.starts_with("/v2/ingress/")
}

impl Gateway {
    /// What happens to an API request (ingress aside), from its canonical path and the caller
    /// its token names. Pure: the tests hold it against the Supervisor's own regexes.
    pub fn decide(&self, canonical: &str, presented: Presented) -> Decision {
        let lower = canonical.to_ascii_lowercase();
        if self.tables.blacklist.matches(canonical) || self.tables.blacklist.matches(&lower) {
            return Decision::Deny(StatusCode::FORBIDDEN, "blocked for every caller");
        }
        let tables = self.tables.for_path(canonical);
        if matches!(canonical, "/auth" | "/v2/auth") {
            return match presented {
                Presented::Missing => Decision::Deny(StatusCode::UNAUTHORIZED, "no token"),
                Presented::Unknown => Decision::Deny(StatusCode::FORBIDDEN, "unknown token"),
                Presented::Known(Caller::Addon(addon)) => Decision::Auth(addon),
                Presented::Known(_) => {
                    Decision::Deny(StatusCode::FORBIDDEN, "can't use home assistant auth")
                }
            };
        }
        if tables.no_security_check.matches(canonical) {
            let core_proxy = ["/homeassistant/api/", "/core/api/"]
                .iter()
                .any(|p| canonical.starts_with(p))
                || matches!(canonical, "/homeassistant/websocket" | "/core/websocket");
            if core_proxy {
                return Decision::CoreProxy;
            }
            if is_ingress_path(canonical) {
                // Only the literal spelling routes to ingress (before this point); another
                // spelling of it is a trick, and forwarding it would reach the upstream's own
                // ingress past our header rules.
                return Decision::Deny(
                    StatusCode::BAD_REQUEST,
                    "ingress path is not in canonical form",
                );
            }
            return Decision::Open;
        }
        let caller = match presented {
            Presented::Missing => return Decision::Deny(StatusCode::UNAUTHORIZED, "no token"),
            Presented::Unknown => return Decision::Deny(StatusCode::FORBIDDEN, "unknown token"),
            Presented::Known(caller) => caller,
        };
        if let Caller::Addon(addon) = &caller
            && let Err(why) = self.addon_may(addon, canonical, &lower)
        {
            return Decision::Deny(StatusCode::FORBIDDEN, why);
        }
        Decision::Forward(caller)
    }

    /// The caller a token names, if any.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        if self
            .core_token
            .as_deref()
            .is_some_and(|core| same_secret(core, token))
        {
            return Some(Caller::HomeAssistant);
        }
        self.registry.by_token(token).map(Caller::Addon)
    }

    /// The add-on part of the Supervisor's `token_validation`, on both spellings of the path.
    pub fn addon_may(
        &self,
        addon: &AddonCaller,
        canonical: &str,
        lower: &str,
    ) -> Result<(), &'static str> {
        let tables = self.tables.for_path(canonical);
        let allowed = |p: &str| {
            tables.api_bypass.matches(p) || (addon.hassio_api && tables.role(addon.role).matches(p))
        };
        if tables.core_only.matches(canonical) || tables.core_only.matches(lower) {
            return Err("only home assistant may call this");
        }
        if addon.strict && self.own_security(addon, lower) {
            return Err("an add-on may not change its own protection mode");
        }
        if !(allowed(canonical) && allowed(lower)) {
            return Err(if addon.hassio_api {
                "the add-on's role does not reach this path"
            } else {
                "the add-on has no hassio_api"
            });
        }
        Ok(())
    }

    fn own_security(&self, addon: &AddonCaller, lower: &str) -> bool {
        let rest = lower
            .strip_prefix("/v2/apps/")
            .or_else(|| lower.strip_prefix("/addons/"));
        // `/security/` is the same endpoint to a server that ignores a trailing slash.
        rest.map(|r| r.trim_end_matches('/'))
            .and_then(|r| r.strip_suffix("/security"))
            .is_some_and(|slug| slug == "self" || slug == addon.full_slug.to_ascii_lowercase())
    }
}
