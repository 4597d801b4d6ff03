//! The Supervisor endpoints an add-on's scripts call: its `rootfs/` read for `bashio::`
//! functions that speak to the API, `bashio::api.supervisor METHOD /path`, and literal
//! `http://supervisor/...` URLs. Reads at most [`MAX_FILES`] regular files of at most
//! [`MAX_BYTES`] each, never following a link.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

pub const MAX_FILES: usize = 5000;
pub const MAX_BYTES: u64 = 1024 * 1024;

/// What the scan found.
#[derive(Debug, Default)]
pub struct Calls {
    /// Endpoint paths (a variable part written as `x`), sorted, deduplicated.
    pub paths: Vec<String>,
    pub files: usize,
}

static BASHIO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"bashio::([a-z_]+)(?:\.([a-z_.]+))?(?:[ \t]+([^\s;|&)]+))?").expect("valid")
});
static API_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"bashio::api\.supervisor[ \t]+["']?[A-Z]+["']?[ \t]+["']?(/[^\s"']*)"#)
        .expect("valid")
});
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"https?://(?:supervisor|hassio)(/[^\s"'`)]*)"#).expect("valid"));

/// Scan `dir/rootfs`; None when the add-on has none.
pub fn scan(dir: &Path) -> Option<Calls> {
    let root = dir.join("rootfs");
    if !std::fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
        return None;
    }
    let mut calls = Calls::default();
    let mut stack = vec![root];
    while let Some(folder) = stack.pop() {
        if calls.files >= MAX_FILES {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && calls.files < MAX_FILES {
                calls.files += 1;
                if entry.metadata().is_ok_and(|m| m.len() <= MAX_BYTES)
                    && let Ok(bytes) = std::fs::read(entry.path())
                    && let Ok(text) = std::str::from_utf8(&bytes)
                {
                    endpoints(text, &mut calls.paths);
                }
            }
        }
    }
    calls.paths.sort();
    calls.paths.dedup();
    Some(calls)
}

/// The endpoints a script's text calls, added to `out`.
pub fn endpoints(text: &str, out: &mut Vec<String>) {
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with('#') {
            continue;
        }
        for c in API_CALL.captures_iter(code) {
            out.push(normalise(&c[1]));
        }
        for c in URL.captures_iter(code) {
            out.push(normalise(&c[1]));
        }
        for c in BASHIO.captures_iter(code) {
            let module = &c[1];
            let function = c.get(2).map_or("", |m| m.as_str());
            let argument = c.get(3).map(|m| m.as_str());
            if let Some(path) = bashio_path(module, function, argument) {
                out.push(path);
            }
        }
    }
}

/// A shell variable or an empty segment becomes `x`, and the query is dropped.
fn normalise(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segments: Vec<&str> = path
        .split('/')
        .skip(1)
        .map(|s| {
            if s.contains(['$', '{', '}', '"', '\\']) || s.is_empty() {
                "x"
            } else {
                s
            }
        })
        .collect();
    let joined = format!("/{}", segments.join("/"));
    if joined == "/x" { "/".into() } else { joined }
}

/// The endpoint a bashio function calls (bashio's `lib/*.sh`), None for the functions that
/// never reach the API (`config`, `log`, `var`, `fs`, `string`, `jq`, `exit`, ...).
fn bashio_path(module: &str, function: &str, argument: Option<&str>) -> Option<String> {
    let function = function.split('.').next().unwrap_or(function);
    let action = |base: &str, actions: &[&str]| -> String {
        if actions.contains(&function) {
            format!("{base}/{function}")
        } else {
            format!("{base}/info")
        }
    };
    const LIFECYCLE: [&str; 7] = [
        "start",
        "stop",
        "restart",
        "update",
        "rebuild",
        "install",
        "uninstall",
    ];
    Some(match module {
        "addon" => action("/addons/self", &[&LIFECYCLE[..], &["stdin"]].concat()),
        "addons" => {
            // bashio::addons.* takes the slug first; without one it lists the store.
            let slug = match argument {
                Some(a) if !a.contains('$') => a.trim_matches(['"', '\'']).to_owned(),
                Some(_) => "x".to_owned(),
                None if function.is_empty() || function == "installed" => {
                    return Some("/addons".into());
                }
                None => "self".to_owned(),
            };
            action(&format!("/addons/{slug}"), &LIFECYCLE)
        }
        "supervisor" => action(
            "/supervisor",
            &["reload", "restart", "update", "repair", "ping", "logs"],
        ),
        "core" | "homeassistant" => action(
            "/core",
            &[
                "restart", "stop", "start", "update", "rebuild", "check", "logs",
            ],
        ),
        "host" => action("/host", &["reboot", "shutdown", "reload", "logs"]),
        "os" => action("/os", &["update", "config"]),
        "hardware" => "/hardware/info".into(),
        "info" => "/info".into(),
        "network" => "/network/info".into(),
        "jobs" => "/jobs/info".into(),
        "resolution" => "/resolution/info".into(),
        "security" => "/security/info".into(),
        "store" => "/store".into(),
        "discovery" => "/discovery".into(),
        "services" => {
            let service = argument
                .filter(|a| !a.contains('$'))
                .map_or("x", |a| a.trim_matches(['"', '\'']));
            format!("/services/{service}")
        }
        "audio" | "cli" | "dns" | "multicast" | "observer" => action(
            &format!("/{module}"),
            &["restart", "update", "reload", "logs"],
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        endpoints(text, &mut out);
        out
    }

    #[test]
    fn bashio_calls_and_urls_become_endpoints() {
        assert_eq!(
            of("bashio::config 'port'\nbashio::log.info hi"),
            Vec::<String>::new()
        );
        assert_eq!(of("name=$(bashio::addon.name)"), ["/addons/self/info"]);
        assert_eq!(of("bashio::addon.restart"), ["/addons/self/restart"]);
        assert_eq!(
            of("bashio::addons.stop core_mosquitto"),
            ["/addons/core_mosquitto/stop"]
        );
        assert_eq!(
            of("host=$(bashio::services mqtt \"host\")"),
            ["/services/mqtt"]
        );
        assert_eq!(of("# bashio::host.reboot"), Vec::<String>::new());
        assert_eq!(
            of("bashio::api.supervisor POST /backups/new/full"),
            ["/backups/new/full"]
        );
        assert_eq!(
            of("curl -H x http://supervisor/addons/${SLUG}/info"),
            ["/addons/x/info"]
        );
    }
}
