//! Which Docker engine to talk to, as the docker CLI decides it: `DOCKER_HOST`, else the
//! context named by `DOCKER_CONTEXT` or the CLI config's `currentContext`, else the local
//! socket. A setting this launcher cannot honour is an error, never a quiet fall back to the
//! local socket: containers started on the wrong engine are a wrong-host launch.

use std::fmt;
use std::path::{Path, PathBuf};

use bollard::{API_DEFAULT_VERSION, Docker};

/// The local engine's socket when nothing else is set.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Seconds bollard waits for one request; our own `--timeout` is applied around each call.
const CLIENT_TIMEOUT: u64 = 120;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "{origin} is '{host}': unsupported scheme (addon-sandbox speaks unix:// and tcp://); refusing rather than using the local engine"
    )]
    Unsupported { origin: String, host: String },
    #[error(
        "DOCKER_TLS_VERIFY is set for {host}, but addon-sandbox has no TLS client; refusing rather than talking plain HTTP"
    )]
    Tls { host: String },
    #[error(
        "the docker context '{0}' is selected but was not found under the docker CLI's contexts"
    )]
    UnknownContext(String),
    #[error("the docker context '{name}' cannot be read: {why}")]
    BadContext { name: String, why: String },
}

/// Parse a `DOCKER_HOST`-style address; `origin` names where it came from, for errors.
pub fn parse_host(host: &str, origin: &str) -> Result<Endpoint, EndpointError> {
    let unsupported = || EndpointError::Unsupported {
        origin: origin.to_owned(),
        host: host.to_owned(),
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(unsupported());
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    let addr = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
        .ok_or_else(unsupported)?;
    let addr = addr.trim_end_matches('/');
    if addr.is_empty() || addr.contains('/') {
        return Err(unsupported());
    }
    if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
        return Err(EndpointError::Tls {
            host: host.to_owned(),
        });
    }
    // The docker CLI's default port for plain tcp://.
    let addr = if addr.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']')) {
        addr.to_owned()
    } else {
        format!("{addr}:2375")
    };
    Ok(Endpoint::Tcp(addr))
}

/// The endpoint the environment selects, as the docker CLI would.
pub fn endpoint_from_env() -> Result<Endpoint, EndpointError> {
    if let Some(host) = env_value("DOCKER_HOST") {
        return parse_host(&host, "DOCKER_HOST");
    }
    let config_dir = env_value("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env_value("HOME").map(|h| Path::new(&h).join(".docker")));
    let context = env_value("DOCKER_CONTEXT").or_else(|| {
        let dir = config_dir.as_ref()?;
        let text = std::fs::read(dir.join("config.json")).ok()?;
        let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
        config["currentContext"].as_str().map(str::to_owned)
    });
    match context {
        None => Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))),
        Some(name) if name.is_empty() || name == "default" => {
            Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)))
        }
        Some(name) => context_endpoint(config_dir.as_deref(), &name),
    }
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A named context's docker endpoint: `<config>/contexts/meta/<id>/meta.json` whose `Name` is
/// `name` (the id is a digest of the name; matching the field needs no digest).
fn context_endpoint(config_dir: Option<&Path>, name: &str) -> Result<Endpoint, EndpointError> {
    let unknown = || EndpointError::UnknownContext(name.to_owned());
    let meta_dir = config_dir.ok_or_else(unknown)?.join("contexts/meta");
    let entries = std::fs::read_dir(&meta_dir).map_err(|_| unknown())?;
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read(entry.path().join("meta.json")) else {
            continue;
        };
        let Ok(meta) = serde_json::from_slice::<serde_json::Value>(&text) else {
            continue;
        };
        if meta["Name"].as_str() != Some(name) {
            continue;
        }
        let host = meta["Endpoints"]["docker"]["Host"]
            .as_str()
            .ok_or_else(|| EndpointError::BadContext {
                name: name.to_owned(),
                why: "it has no docker endpoint".into(),
            })?;
        return parse_host(host, &format!("the docker context '{name}'"));
    }
    Err(unknown())
}

/// A client for `endpoint` (nothing is sent yet).
pub fn client(endpoint: &Endpoint) -> Result<Docker, bollard::errors::Error> {
    match endpoint {
        Endpoint::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), CLIENT_TIMEOUT, API_DEFAULT_VERSION)
        }
        Endpoint::Tcp(addr) => Docker::connect_with_http(
            &format!("tcp://{addr}"),
            CLIENT_TIMEOUT,
            API_DEFAULT_VERSION,
        ),
    }
}

/// Why a connection to `endpoint` failed, in the operator's words: the I/O error under the
/// HTTP client's layers, not "hyper legacy client: client error (Connect)".
pub fn describe(endpoint: &Endpoint, e: &bollard::errors::Error) -> String {
    use std::io::ErrorKind as K;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut io = None;
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<std::io::Error>() {
            io = Some(found);
        }
        cause = c.source();
    }
    let Some(io) = io else {
        return format!("{endpoint}: {e}");
    };
    match (endpoint, io.kind()) {
        (Endpoint::Unix(p), K::PermissionDenied) => format!(
            "permission denied on {} (the engine's socket admits root and the docker group)",
            p.display()
        ),
        (Endpoint::Unix(p), K::NotFound) => format!("no engine socket at {}", p.display()),
        (_, K::ConnectionRefused) => format!("connection refused at {endpoint}"),
        _ => format!("{endpoint}: {io}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_or_are_refused_by_name() {
        assert_eq!(
            parse_host("unix:///run/x.sock", "DOCKER_HOST").unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2376", "DOCKER_HOST").unwrap(),
            Endpoint::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            parse_host("tcp://example", "DOCKER_HOST").unwrap(),
            Endpoint::Tcp("example:2375".into())
        );
        for bad in [
            "ssh://me@host",
            "npipe:////./pipe/x",
            "/var/run/docker.sock",
            "unix://",
        ] {
            let err = parse_host(bad, "DOCKER_HOST").unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("unsupported"), "{err}");
        }
    }
}
