//! The Supervisor's services registry (`/services`, `/services/<name>`) for a standalone
//! gateway: `mqtt` and `mysql`, each provided by at most one add-on, kept in
//! `<state>/services.json` (0600: it holds the providers' credentials).
//!
//! Access follows the add-on's `services` entries (`mqtt:provide`, `mysql:want`, …) as `run`
//! recorded them: any right reads, `provide` deletes. Writing also needs `provide`, where the
//! Supervisor's `set_service` lets any right write: an add-on that only wants MQTT must not
//! become the broker every other add-on is told to use (fail closed).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::callers::AddonCaller;

pub const SERVICES: [&str; 2] = ["mqtt", "mysql"];
const FILE: &str = "services.json";

/// A refusal, as the Supervisor words it, with its status.
pub type Refusal = (http::StatusCode, String);

fn refuse(status: http::StatusCode, text: impl Into<String>) -> Refusal {
    (status, text.into())
}

/// The right (`provide`, `want`, `need`) the add-on has on `service`, if any.
pub fn role_of(addon: &AddonCaller, service: &str) -> Option<String> {
    let info = addon.info.as_ref()?;
    info.services.iter().find_map(|entry| {
        let (name, right) = entry.split_once(':')?;
        (name == service).then(|| right.to_owned())
    })
}

/// The registry as stored; an unreadable file is an empty registry (nothing is provided).
pub fn load(state_dir: &Path) -> BTreeMap<String, Map<String, Value>> {
    std::fs::read(state_dir.join(FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save(state_dir: &Path, all: &BTreeMap<String, Map<String, Value>>) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(all).map_err(std::io::Error::other)?;
    crate::launch::state::write_atomically(&state_dir.join(FILE), &text, 0o600)
}

/// `SCHEMA_SERVICE_MQTT` / `SCHEMA_SERVICE_MYSQL`: required host and port (1-65535, an int or
/// a numeric string as `Coerce(int)` takes), optional username and password; MQTT adds `ssl`
/// (default false) and `protocol` (3.1 or 3.1.1, default 3.1.1). Other keys are refused.
pub fn validate(service: &str, body: &Value) -> Result<Map<String, Value>, String> {
    let Value::Object(given) = body else {
        return Err("expected a dictionary".into());
    };
    let mut out = Map::new();
    let mqtt = service == "mqtt";
    for (key, value) in given {
        let checked = match (key.as_str(), value) {
            ("host" | "username" | "password", Value::String(_)) => value.clone(),
            ("port", _) => json!(
                port(value)
                    .ok_or("expected a port (1-65535) for dictionary value @ data['port']")?
            ),
            ("ssl", Value::Bool(_)) if mqtt => value.clone(),
            ("protocol", Value::String(p)) if mqtt && (p == "3.1" || p == "3.1.1") => value.clone(),
            _ => {
                return Err(format!(
                    "extra keys not allowed or bad value @ data['{key}']"
                ));
            }
        };
        out.insert(key.clone(), checked);
    }
    for required in ["host", "port"] {
        if !out.contains_key(required) {
            return Err(format!("required key not provided @ data['{required}']"));
        }
    }
    if mqtt {
        out.entry("ssl").or_insert(json!(false));
        out.entry("protocol").or_insert(json!("3.1.1"));
    }
    Ok(out)
}

fn port(value: &Value) -> Option<u16> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|p| *p > 0)
}

/// `_check_access`: some right to read, `provide` to write or delete.
pub fn check_access(addon: &AddonCaller, service: &str, provide: bool) -> Result<(), Refusal> {
    let forbidden = http::StatusCode::FORBIDDEN;
    match role_of(addon, service).as_deref() {
        None => Err(refuse(
            forbidden,
            format!("No access to {service} service!"),
        )),
        Some(r) if provide && r != "provide" => Err(refuse(
            forbidden,
            format!("No access to write {service} service!"),
        )),
        Some(_) => Ok(()),
    }
}

/// `GET /services`: every service, whether it is in use, and the add-ons that may provide it.
pub fn list(
    all: &BTreeMap<String, Map<String, Value>>,
    addons: &[std::sync::Arc<AddonCaller>],
) -> Value {
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            let providers: Vec<&str> = addons
                .iter()
                .filter(|a| role_of(a, s).as_deref() == Some("provide"))
                .map(|a| a.full_slug.as_str())
                .collect();
            json!({
                "slug": s,
                "available": all.get(*s).is_some_and(|d| !d.is_empty()),
                "providers": providers,
            })
        })
        .collect();
    json!({ "services": services })
}
