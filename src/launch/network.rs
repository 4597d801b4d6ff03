//! The add-ons' network on a standalone host: the stand-in for the Supervisor's `hassio`
//! bridge (172.30.32.0/23, the Supervisor at 172.30.32.2). `serve` makes it (or finds it) and
//! listens on its gateway address, the host side of the bridge; `run` attaches an add-on to it
//! and names that address `supervisor` and `hassio` (and `homeassistant` when `serve` has a
//! Core), so `http://supervisor` reaches the gateway as it reaches the Supervisor.
//!
//! `serve` says where it listens in `<state>/gateway.json` (with its pid, so a gateway that
//! died is seen as gone); `run` reads it and says so when no gateway serves its add-ons.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use serde::{Deserialize, Serialize};

use super::{LaunchError, Launcher, docker_err};

/// The network's default name: not `hassio`, so a Supervisor on the same host keeps its own.
pub const DEFAULT_NETWORK: &str = "addon-sandbox";
/// The default subnet: the size of the Supervisor's, outside its 172.30.32.0/23.
pub const DEFAULT_SUBNET: &str = "172.30.232.0/23";
/// Marks a network made by `serve`.
pub const LABEL_NETWORK: &str = "io.addon-sandbox.network";
const GATEWAY_FILE: &str = "gateway.json";

/// An IPv4 subnet, `a.b.c.d/len`, with its address aligned to the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub len: u8,
}

impl Subnet {
    /// The subnet of `text`, which must be aligned and leave room for a gateway and add-ons.
    pub fn parse(text: &str) -> Result<Subnet, LaunchError> {
        let bad = || LaunchError::Network(format!("subnet {text:?} is not a.b.c.d/8..=29"));
        let (addr, len) = text.split_once('/').ok_or_else(bad)?;
        let base: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        if !(8..=29).contains(&len) {
            return Err(bad());
        }
        let subnet = Subnet { base, len };
        if subnet.mask() & u32::from(base) != u32::from(base) {
            return Err(LaunchError::Network(format!(
                "subnet {text:?} has host bits set (the network address is {}/{len})",
                Ipv4Addr::from(u32::from(base) & subnet.mask())
            )));
        }
        Ok(subnet)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.len))
    }

    /// The first host address: the bridge's side, where `serve` listens.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.base) & mask == u32::from(other.base) & mask
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.len)
    }
}

/// What a running `serve` tells `run`: where the add-ons reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub pid: u32,
    /// The network add-ons are attached to (None: `serve --no-network`).
    pub network: Option<String>,
    /// The address `supervisor` and `hassio` name (the network's gateway).
    pub address: Option<String>,
    /// The address `homeassistant` names, when `serve` has a Core.
    pub homeassistant: Option<String>,
}

fn gateway_file(state_dir: &Path) -> PathBuf {
    state_dir.join(GATEWAY_FILE)
}

impl GatewayRecord {
    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        super::state::write_atomically(&gateway_file(state_dir), &text, 0o600)
    }

    /// Removed by the `serve` that wrote it, and only then.
    pub fn remove(state_dir: &Path, pid: u32) {
        if Self::read(state_dir).is_some_and(|r| r.pid == pid) {
            let _ = std::fs::remove_file(gateway_file(state_dir));
        }
    }

    /// The record of a gateway that still runs (a record whose process is gone is stale).
    pub fn read(state_dir: &Path) -> Option<GatewayRecord> {
        let text = std::fs::read(gateway_file(state_dir)).ok()?;
        let record: GatewayRecord = serde_json::from_slice(&text).ok()?;
        Path::new(&format!("/proc/{}", record.pid))
            .exists()
            .then_some(record)
    }

    /// The network a container of `network_mode` joins (None: keep its mode) and its extra
    /// hosts, as the Supervisor gives them (also with the host network).
    pub fn attachment(&self, network_mode: &str) -> (Option<String>, Vec<String>) {
        let mut names = Vec::new();
        if let Some(addr) = &self.address {
            names.push(("supervisor", addr));
            names.push(("hassio", addr));
        }
        if let Some(core) = &self.homeassistant {
            names.push(("homeassistant", core));
        }
        // The Supervisor's DNS answers each name also under its search domain `local.hass.io`,
        // and add-ons use that form (nginx_proxy proxies to homeassistant.local.hass.io).
        let mut hosts: Vec<String> = names.iter().map(|(n, a)| format!("{n}:{a}")).collect();
        hosts.extend(names.iter().map(|(n, a)| format!("{n}.local.hass.io:{a}")));
        let joins = (network_mode != "host")
            .then(|| self.network.clone())
            .flatten();
        (joins, hosts)
    }
}

impl Launcher {
    /// The network `name` on `subnet`, made when absent; returns its gateway address. A network
    /// of that name on another subnet, or another network overlapping `subnet`, is an error:
    /// nothing is changed on the engine then.
    pub async fn ensure_network(
        &self,
        name: &str,
        subnet: Subnet,
    ) -> Result<Ipv4Addr, LaunchError> {
        let networks = self
            .call("list networks", self.docker.list_networks(None))
            .await?
            .map_err(|e| docker_err("list networks", e))?;
        for net in &networks {
            let net_name = net.name.as_deref().unwrap_or_default();
            let subnets: Vec<Subnet> = net
                .ipam
                .as_ref()
                .and_then(|i| i.config.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|c| c.subnet.as_deref().and_then(|s| Subnet::parse(s).ok()))
                .collect();
            if net_name == name {
                if subnets.contains(&subnet) && net.driver.as_deref() == Some("bridge") {
                    return Ok(subnet.gateway());
                }
                return Err(LaunchError::Network(format!(
                    "a network named {name} exists but is not a bridge on {subnet} (it has {}): remove it or choose --network-name/--subnet",
                    subnets
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if let Some(other) = subnets.iter().find(|s| s.overlaps(&subnet)) {
                return Err(LaunchError::Network(format!(
                    "subnet {subnet} overlaps network {net_name} ({other}): choose another with --subnet"
                )));
            }
        }
        let gateway = subnet.gateway();
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(gateway.to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            labels: Some([(LABEL_NETWORK.to_owned(), "1".to_owned())].into()),
            ..Default::default()
        };
        self.call("create network", self.docker.create_network(request))
            .await?
            .map_err(|e| docker_err("create network", e))?;
        Ok(gateway)
    }

    /// The host interface of the bridge network `name`: the engine's
    /// `com.docker.network.bridge.name` option, else its default `br-<first 12 of the id>`.
    pub async fn bridge_interface(&self, name: &str) -> Result<String, LaunchError> {
        let net = self
            .call(
                "inspect network",
                self.docker.inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                ),
            )
            .await?
            .map_err(|e| docker_err("inspect network", e))?;
        let named = net
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.name"))
            .filter(|n| !n.is_empty());
        match (named, net.id.as_deref()) {
            (Some(n), _) => Ok(n.clone()),
            (None, Some(id)) if id.len() >= 12 => Ok(format!("br-{}", &id[..12])),
            _ => Err(LaunchError::Network(format!(
                "the engine gave network {name} no id"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_checked_and_compared() {
        let s = Subnet::parse(DEFAULT_SUBNET).unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 30, 232, 1));
        assert!(s.overlaps(&Subnet::parse("172.30.233.0/24").unwrap()));
        assert!(s.overlaps(&Subnet::parse("172.16.0.0/12").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("172.30.32.0/23").unwrap()));
        for bad in [
            "172.30.232.1/23",
            "10.0.0.0",
            "10.0.0.0/30",
            "x/8",
            "10.0.0.0/a",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_network_keeps_its_mode_and_gets_the_hosts() {
        let r = GatewayRecord {
            pid: 1,
            network: Some("n".into()),
            address: Some("10.1.0.1".into()),
            homeassistant: None,
        };
        assert_eq!(r.attachment("host").0, None);
        let (net, hosts) = r.attachment("default");
        assert_eq!(net.as_deref(), Some("n"));
        assert_eq!(
            hosts,
            [
                "supervisor:10.1.0.1",
                "hassio:10.1.0.1",
                "supervisor.local.hass.io:10.1.0.1",
                "hassio.local.hass.io:10.1.0.1"
            ]
        );
    }
}
