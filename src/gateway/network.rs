//! `GET /network/info` and `GET /network/interface/<name>/info` of a standalone gateway, in
//! the shape of the Supervisor's `api/network.py` (`interface_struct`, `ip4config_struct`).
//!
//! The Supervisor describes the host's interfaces (NetworkManager's view). A standalone host
//! has no such manager, and what an add-on can bind to is its own side of the add-ons'
//! network `serve` made: an add-on on that network sees one interface, `eth0` (Docker names
//! a container's only network so) with its address on the subnet; an add-on sharing the
//! host's network sees the bridge that carries the subnet on the host, with the gateway's
//! address. That one interface is enabled, connected and primary (`default` names it). The
//! `docker` part describes the add-ons' network itself. Connectivity is not checked: null,
//! as the Supervisor says before its first check. Pure: the facts come from `serve`
//! ([`AddonNetwork`]) and the caller's record.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::callers::AddonCaller;

/// Docker's resolver inside a container on a user-defined network.
pub const EMBEDDED_DNS: &str = "127.0.0.11";
/// The interface Docker gives a container on its only network.
pub const CONTAINER_INTERFACE: &str = "eth0";

/// The add-ons' network a standalone `serve` made, as its add-ons see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddonNetwork {
    /// The Docker network's name (the Supervisor's `hassio`).
    pub name: String,
    pub base: Ipv4Addr,
    pub prefix: u8,
    /// The bridge's address on the host, where the gateway listens.
    pub gateway: Ipv4Addr,
    /// The host interface carrying the subnet (`br-…`), when `serve` found it.
    pub bridge: Option<String>,
}

/// The one interface `addon` has onto the network, or None when nothing is known of it (no
/// address recorded, or a host-network add-on and no bridge found).
fn interface(net: &AddonNetwork, addon: &AddonCaller) -> Option<Value> {
    let ip: Ipv4Addr = addon.info.as_ref()?.ip_address.as_deref()?.parse().ok()?;
    let (name, address, gateway) = if ip.is_loopback() {
        // The host's network: the bridge, with the gateway's own address.
        (net.bridge.clone()?, net.gateway, Value::Null)
    } else {
        (
            CONTAINER_INTERFACE.to_owned(),
            ip,
            json!(net.gateway.to_string()),
        )
    };
    Some(json!({
        "interface": name,
        "type": "ethernet",
        "enabled": true,
        "connected": true,
        "primary": true,
        "mac": Value::Null,
        "ipv4": {
            "method": "static",
            "address": [format!("{address}/{}", net.prefix)],
            "nameservers": [EMBEDDED_DNS],
            "gateway": gateway,
            "ready": true,
        },
        "ipv6": Value::Null,
        "wifi": Value::Null,
        "vlan": Value::Null,
    }))
}

/// `GET /network/info`.
pub fn info(net: &AddonNetwork, addon: &AddonCaller) -> Value {
    let interfaces: Vec<Value> = interface(net, addon).into_iter().collect();
    json!({
        "interfaces": interfaces,
        "docker": {
            "interface": net.name,
            "address": format!("{}/{}", net.base, net.prefix),
            "gateway": net.gateway.to_string(),
            "dns": EMBEDDED_DNS,
        },
        "host_internet": Value::Null,
        "supervisor_internet": Value::Null,
    })
}

/// `GET /network/interface/<name>/info`: `default` (any case) is the primary interface; an
/// unknown name is None (the Supervisor's 404 `Interface <name> does not exist`).
pub fn interface_info(net: &AddonNetwork, addon: &AddonCaller, name: &str) -> Option<Value> {
    let found = interface(net, addon)?;
    (name.eq_ignore_ascii_case("default") || found["interface"] == name).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    fn net() -> AddonNetwork {
        AddonNetwork {
            name: "addon-sandbox".into(),
            base: Ipv4Addr::new(172, 30, 232, 0),
            prefix: 23,
            gateway: Ipv4Addr::new(172, 30, 232, 1),
            bridge: Some("br-0123456789ab".into()),
        }
    }

    fn caller(ip: Option<&str>) -> AddonCaller {
        let info = crate::launch::state::AddonInfo {
            ip_address: ip.map(str::to_owned),
            ..Default::default()
        };
        AddonCaller {
            full_slug: "local_samba".into(),
            role: Role::Default,
            hassio_api: true,
            homeassistant_api: false,
            auth_api: false,
            strict: true,
            ingress_token: None,
            ingress_address: None,
            info: Some(info),
        }
    }

    #[test]
    fn an_addon_on_the_network_sees_eth0_with_its_address() {
        let info = info(&net(), &caller(Some("172.30.232.5")));
        let eth0 = &info["interfaces"][0];
        assert_eq!(eth0["interface"], "eth0");
        assert_eq!(eth0["enabled"], true);
        assert_eq!(eth0["ipv4"]["address"][0], "172.30.232.5/23");
        assert_eq!(eth0["ipv4"]["gateway"], "172.30.232.1");
        assert_eq!(info["docker"]["address"], "172.30.232.0/23");
        assert_eq!(info["docker"]["interface"], "addon-sandbox");
    }

    #[test]
    fn a_host_network_addon_sees_the_bridge_and_default_names_it() {
        let c = caller(Some("127.0.0.1"));
        let br = interface_info(&net(), &c, "DEFAULT").unwrap();
        assert_eq!(br["interface"], "br-0123456789ab");
        assert_eq!(br["ipv4"]["address"][0], "172.30.232.1/23");
        assert!(interface_info(&net(), &c, "br-0123456789ab").is_some());
        assert!(interface_info(&net(), &c, "eth0").is_none());
    }

    #[test]
    fn nothing_known_is_no_interface() {
        assert_eq!(info(&net(), &caller(None))["interfaces"], json!([]));
        let mut n = net();
        n.bridge = None;
        assert_eq!(
            info(&n, &caller(Some("127.0.0.1")))["interfaces"],
            json!([])
        );
        assert!(interface_info(&n, &caller(None), "default").is_none());
    }
}
