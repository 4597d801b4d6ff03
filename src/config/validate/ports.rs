//! `ports` and `ports_description`: mappings keyed by a container port (`8080/tcp`, `53/udp`),
//! the first to a host port or null, the second to a description.

use crate::source::{Node, Value};

use super::super::rules;
use super::super::{PortSpec, Protocol};
use super::Validator;

impl<'a> Validator<'a, '_> {
    /// A mapping whose keys are `docker_port` strings; each key error is voluptuous'
    /// "extra keys not allowed".
    fn port_keys(&mut self, key: &str) -> Vec<(PortSpec, &'a Node)> {
        let Some(node) = self.get(key) else {
            return Vec::new();
        };
        let Some(entries) = node.as_map() else {
            self.fail(
                node.pos,
                key,
                format!("expected a mapping of container ports, got {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let spec = k.as_str().and_then(|s| {
                let (port, protocol) = plain_port_key(s).or_else(|| {
                    let caps = rules::RE_DOCKER_PORT.captures(s)?;
                    let protocol = match caps.get(2).map(|m| m.as_str()) {
                        Some("udp") => Protocol::Udp,
                        _ => Protocol::Tcp,
                    };
                    Some((caps.get(1)?.as_str(), protocol))
                })?;
                let port = port.parse::<u32>().ok()?;
                // The Supervisor does not bound the container port; Docker does.
                u16::try_from(port).ok().map(|port| PortSpec {
                    key: s.to_owned(),
                    port,
                    protocol,
                })
            });
            match spec {
                Some(spec) => out.push((spec, v)),
                None => self.fail(
                    k.pos,
                    key,
                    format!(
                        "{} is not a container port (expected a string such as \"8080/tcp\", \"53/udp\" or \"80\")",
                        k.display()
                    ),
                ),
            }
        }
        out
    }

    pub(super) fn ports(&mut self) -> Vec<(PortSpec, Option<u16>)> {
        let mut out = Vec::new();
        for (spec, value) in self.port_keys("ports") {
            match value.value {
                Value::Null => out.push((spec, None)),
                _ => match rules::network_port(value) {
                    Ok(p) => out.push((spec, Some(p))),
                    Err(e) => self.fail(
                        value.pos,
                        &format!("ports.{}", spec.key),
                        format!("{e} (or null to not publish it)"),
                    ),
                },
            }
        }
        // Last one wins for repeated keys (Python dict).
        let mut dedup: Vec<(PortSpec, Option<u16>)> = Vec::new();
        for (spec, host) in out {
            if let Some(existing) = dedup.iter_mut().find(|(s, _)| s.key == spec.key) {
                existing.1 = host;
            } else {
                dedup.push((spec, host));
            }
        }
        dedup
    }

    pub(super) fn ports_description(&mut self) {
        for (spec, value) in self.port_keys("ports_description") {
            if let Err(e) = rules::string(value) {
                self.fail(value.pos, &format!("ports_description.{}", spec.key), e);
            }
        }
    }
}

/// The usual port key, `8080`, `8080/tcp` or `53/udp` in ASCII, without the regex (which
/// decides every other key the Python way: Unicode digits, a final line break).
fn plain_port_key(key: &str) -> Option<(&str, Protocol)> {
    let (port, protocol) = match key.split_once('/') {
        None => (key, Protocol::Tcp),
        Some((port, "tcp")) => (port, Protocol::Tcp),
        Some((port, "udp")) => (port, Protocol::Udp),
        Some(_) => return None,
    };
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some((port, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The port-key fast path says what the Python-compatible regex says, on every ASCII
        /// key without a line break (the others always go to the regex).
        #[test]
        fn plain_port_keys_agree_with_the_regex(key in "[0-9/tcpud x]{0,9}") {
            let by_regex = rules::RE_DOCKER_PORT.captures(&key).map(|caps| {
                let udp = caps.get(2).is_some_and(|m| m.as_str() == "udp");
                (caps[1].to_owned(), udp)
            });
            let fast = plain_port_key(&key).map(|(port, protocol)| {
                (port.to_owned(), protocol == Protocol::Udp)
            });
            proptest::prop_assert_eq!(fast, by_regex);
        }
    }
}
