//! A standalone gateway (no upstream Supervisor) answers, after the same decision as always,
//! what an add-on asks of the Supervisor about itself, in the Supervisor's envelope
//! `{"result": "ok", "data": …}`: `/addons/self/info` and `/addons/self/options/config` (also
//! as `/v2/apps/self/…`), `/info`, `/core/info` (when a Home Assistant URL is set),
//! `/supervisor/ping`, the services registry ([`super::services`]) and `/network/info`,
//! `/network/interface/<name>/info` ([`super::network`]). Everything else is a
//! JSON error naming what is missing.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::callers::AddonCaller;
use super::proxy::{ReqBody, ResBody, error, ok};
use super::{Caller, Gateway, network, services};

pub const NO_UPSTREAM: &str = "no upstream Supervisor is configured (serve --upstream): this standalone gateway answers only the add-on's own endpoints (/addons/self/info, /addons/self/options/config, /info, /core/info, /services, /network/info)";
/// The largest `options.json` served (the Supervisor's options are small).
const MAX_OPTIONS: u64 = 1 << 20;
/// The largest service registration read.
const MAX_BODY: usize = 64 * 1024;

type Answer = Result<Value, (StatusCode, String)>;

impl Gateway {
    pub(super) async fn standalone(
        &self,
        request: Request<ReqBody>,
        canonical: &str,
        caller: &Caller,
    ) -> Response<ResBody> {
        let method = request.method().clone();
        let answer = match (&method, canonical, caller) {
            (&Method::GET, "/supervisor/ping", _) => Ok(json!({})),
            (_, _, Caller::Open) => Err((StatusCode::NOT_IMPLEMENTED, NO_UPSTREAM.to_owned())),
            (&Method::GET, "/info" | "/v2/info", _) => Ok(self.host_info()),
            (&Method::GET, "/core/info", _) => self.core_info(),
            (_, p, _) if p == "/services" || p.starts_with("/services/") => {
                self.services_endpoint(request, canonical, caller).await
            }
            (&Method::GET, "/network/info" | "/v2/network/info", Caller::Addon(addon)) => {
                self.network_info(addon, None)
            }
            (&Method::GET, p, Caller::Addon(addon)) if interface_name(p).is_some() => {
                self.network_info(addon, interface_name(p))
            }
            (&Method::GET, p, Caller::Addon(addon)) => match own_endpoint(p, addon) {
                Some("info") => Ok(self.addon_info(addon)),
                Some("options/config") => read_options(addon),
                _ => Err((StatusCode::NOT_IMPLEMENTED, NO_UPSTREAM.to_owned())),
            },
            _ => Err((StatusCode::NOT_IMPLEMENTED, NO_UPSTREAM.to_owned())),
        };
        match answer {
            Ok(data) => ok(data),
            Err((status, why)) => error(status, &why),
        }
    }

    /// `/info`: what a standalone host can say about itself.
    fn host_info(&self) -> Value {
        let arch = supervisor_arch();
        json!({
            "supervisor": format!("addon-sandbox-{}", env!("CARGO_PKG_VERSION")),
            "homeassistant": Value::Null,
            "hassos": Value::Null,
            "docker": Value::Null,
            "hostname": nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()),
            "operating_system": os_name(),
            "features": [],
            "machine": Value::Null,
            "arch": arch,
            "supported_arch": [arch],
            "supported": true,
            "channel": "stable",
            "logging": "info",
            "state": "running",
            "timezone": std::env::var("TZ").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "UTC".into()),
        })
    }

    /// `/network/info` (no name) or `/network/interface/<name>/info` from the network `serve`
    /// made ([`network`]).
    fn network_info(&self, addon: &AddonCaller, name: Option<&str>) -> Answer {
        let net = self.network.as_ref().ok_or((
            StatusCode::NOT_IMPLEMENTED,
            "this gateway made no add-ons' network (serve --no-network)".to_owned(),
        ))?;
        match name {
            None => Ok(network::info(net, addon)),
            Some(name) => network::interface_info(net, addon, name).ok_or((
                StatusCode::NOT_FOUND,
                format!("Interface {name} does not exist"),
            )),
        }
    }

    /// `/core/info` from the Home Assistant URL `serve` was given; its version is not known.
    fn core_info(&self) -> Answer {
        let core = self.homeassistant.as_ref().ok_or((
            StatusCode::NOT_IMPLEMENTED,
            "no Home Assistant is configured (serve --homeassistant URL)".to_owned(),
        ))?;
        Ok(json!({
            "version": Value::Null,
            "version_latest": Value::Null,
            "update_available": false,
            "machine": Value::Null,
            "ip_address": core.host(),
            "arch": supervisor_arch(),
            "image": Value::Null,
            "boot": true,
            "port": core.port_u16().unwrap_or(8123),
            "ssl": false,
            "watchdog": false,
        }))
    }

    /// `/addons/self/info`: the fields bashio reads, from the plan's rights and the config as
    /// `run` recorded them.
    fn addon_info(&self, addon: &AddonCaller) -> Value {
        let info = addon.info.clone().unwrap_or_default();
        let ingress_entry = addon
            .ingress_token
            .as_ref()
            .map(|t| format!("/ingress/{t}"));
        let ingress_url = ingress_entry.as_ref().map(|e| {
            format!(
                "{e}/{}",
                info.ingress_entry
                    .as_deref()
                    .unwrap_or("")
                    .trim_start_matches('/')
            )
        });
        json!({
            "name": if info.name.is_empty() { &addon.full_slug } else { &info.name },
            "slug": addon.full_slug,
            "hostname": info.hostname,
            "description": info.description,
            "version": info.version,
            "version_latest": info.version,
            "update_available": false,
            "state": "started",
            "boot": "manual",
            "ip_address": info.ip_address,
            "network": info.ports,
            "ingress": info.ingress,
            "ingress_entry": ingress_entry,
            "ingress_url": ingress_url,
            "ingress_port": addon.ingress_address.as_deref().and_then(|a| a.rsplit(':').next()).and_then(|p| p.parse::<u16>().ok()),
            "services_role": info.services,
            "hassio_api": addon.hassio_api,
            "hassio_role": addon.role.name(),
            "homeassistant_api": addon.homeassistant_api,
            "auth_api": addon.auth_api,
            "protected": addon.strict,
        })
    }

    async fn services_endpoint(
        &self,
        request: Request<ReqBody>,
        canonical: &str,
        caller: &Caller,
    ) -> Answer {
        let method = request.method().clone();
        let name = canonical.strip_prefix("/services/");
        if name.is_none() && method == Method::GET {
            let all = services::load(&self.state_dir);
            return Ok(services::list(&all, &self.registry.all()));
        }
        let Some(name) = name.filter(|n| services::SERVICES.contains(n)) else {
            return Err((StatusCode::NOT_FOUND, "Service does not exist".into()));
        };
        let Caller::Addon(addon) = caller else {
            return Err((
                StatusCode::FORBIDDEN,
                "only an add-on has rights on a service".into(),
            ));
        };
        let body = if method == Method::POST {
            Some(read_json(request).await?)
        } else {
            None
        };
        self.service_call(&method, name, addon, body)
    }

    /// One service call, under the registry's lock: read, then change and save.
    fn service_call(
        &self,
        method: &Method,
        name: &str,
        addon: &AddonCaller,
        body: Option<Value>,
    ) -> Answer {
        let bad = |t: String| (StatusCode::BAD_REQUEST, t);
        let _one_writer = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = services::load(&self.state_dir);
        let current = all.get(name).filter(|d| !d.is_empty()).cloned();
        match (method, current) {
            (&Method::GET, current) => {
                services::check_access(addon, name, false)?;
                current
                    .map(Value::Object)
                    .ok_or_else(|| bad("Service not enabled".into()))
            }
            (&Method::POST, current) => {
                services::check_access(addon, name, true)?;
                let mut data = services::validate(name, &body.unwrap_or_default()).map_err(bad)?;
                // The Supervisor's ServiceAlreadyProvidedError (409) and its wording.
                if let Some(current) = current {
                    let owner = current.get("addon").and_then(Value::as_str).unwrap_or("?");
                    return Err((
                        StatusCode::CONFLICT,
                        format!("The {name} service is already provided by {owner}"),
                    ));
                }
                data.insert("addon".into(), json!(addon.full_slug));
                all.insert(name.to_owned(), data);
                save(&self.state_dir, &all)
            }
            (&Method::DELETE, current) => {
                services::check_access(addon, name, true)?;
                // The Supervisor's ServiceNotProvidedError (404) and its wording.
                if current.is_none() {
                    return Err((
                        StatusCode::NOT_FOUND,
                        format!("The {name} service is not currently provided by any app"),
                    ));
                }
                all.remove(name);
                save(&self.state_dir, &all)
            }
            _ => Err((StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into())),
        }
    }
}

fn save(
    state_dir: &Path,
    all: &std::collections::BTreeMap<String, serde_json::Map<String, Value>>,
) -> Answer {
    services::save(state_dir, all)
        .map(|()| json!({}))
        .map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("saving services: {e}"),
            )
        })
}

/// `<name>` of `/network/interface/<name>/info` (v1 or v2), one path segment.
fn interface_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    let name = rest
        .strip_prefix("/network/interface/")?
        .strip_suffix("/info")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The endpoint below the add-on's own prefix: `self` or its full slug, v1 or `/v2/apps`.
fn own_endpoint<'a>(path: &'a str, addon: &AddonCaller) -> Option<&'a str> {
    let rest = path
        .strip_prefix("/addons/")
        .or_else(|| path.strip_prefix("/v2/apps/"))?;
    let (slug, endpoint) = rest.split_once('/')?;
    (slug == "self" || slug == addon.full_slug).then_some(endpoint)
}

/// The validated options `run` wrote into the add-on's data folder. The add-on can write
/// there too, so the file is opened without following a link and must be a regular file of
/// bounded size: an add-on cannot make the gateway read another file for it.
fn read_options(addon: &AddonCaller) -> Answer {
    let missing = |why: String| (StatusCode::NOT_FOUND, why);
    let dir = addon
        .info
        .as_ref()
        .and_then(|i| i.data_dir.as_deref())
        .ok_or_else(|| missing("run recorded no data folder for this add-on".into()))?;
    let path = Path::new(dir).join("options.json");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(&path)
        .map_err(|e| missing(format!("the add-on's options.json: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| missing(format!("the add-on's options.json: {e}")))?;
    if !meta.is_file() || meta.len() > MAX_OPTIONS {
        return Err(missing(
            "the add-on's options.json is not a regular file of at most 1 MiB".into(),
        ));
    }
    let mut text = Vec::new();
    file.take(MAX_OPTIONS)
        .read_to_end(&mut text)
        .map_err(|e| missing(format!("the add-on's options.json: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the add-on's options.json is not JSON: {e}"),
        )
    })
}

async fn read_json(request: Request<ReqBody>) -> Result<Value, (StatusCode, String)> {
    let bad = |t: &str| (StatusCode::BAD_REQUEST, t.to_owned());
    let body = http_body_util::Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| bad("the body is too large or ended early"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|_| bad("the body is not JSON"))
}

/// The Supervisor's name for this machine's architecture.
fn supervisor_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "aarch64",
        "arm" => "armv7",
        "x86" => "i386",
        other => other,
    }
}

fn os_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
}
