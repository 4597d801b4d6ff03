//! Rights that reach the host: what each gives an attacker inside the add-on, and the
//! narrower alternative where there is one.

use crate::config::{AddonConfig, Capability, Role};
use crate::policy::{NodeClass, class_by_name};
use crate::rating::ApparmorMode;
use crate::source::Node;

use super::rules::{self, Rule};
use super::{Ctx, fix};

/// A `key: true` right: its rule, what an attacker gets, the narrower alternative.
struct Flag {
    key: &'static str,
    rule: &'static Rule,
    attacker: &'static str,
    instead: &'static str,
}

const FLAGS: [Flag; 8] = [
    Flag {
        key: "host_network",
        rule: &rules::HOST_NETWORK,
        attacker: "an attacker in the add-on reaches every service listening on the host, even on 127.0.0.1, and can bind any host port",
        instead: "publish the ports it serves in `ports` (only discovery protocols such as mDNS need the host network; if this one does, say why in its documentation)",
    },
    Flag {
        key: "full_access",
        rule: &rules::FULL_ACCESS,
        attacker: "an attacker reads and writes raw disks and every device node, in a privileged container: root on the host",
        instead: "list the device nodes it needs in `devices`, or use `uart`, `usb`, `video` or `gpio`",
    },
    Flag {
        key: "docker_api",
        rule: &rules::DOCKER_API,
        attacker: "an attacker starts a privileged container with the host's / mounted: root on the host",
        instead: "manage other add-ons through the Supervisor API (`hassio_api: true` with `hassio_role: manager`)",
    },
    Flag {
        key: "host_pid",
        rule: &rules::HOST_PID,
        attacker: "an attacker sees every host process and its command line and environment, and with a capability signals or traces them",
        instead: "none: drop it unless the add-on monitors host processes",
    },
    Flag {
        key: "host_ipc",
        rule: &rules::HOST_IPC,
        attacker: "an attacker reads and writes the host's shared memory segments and semaphores",
        instead: "none: drop it unless the add-on shares memory with a host program",
    },
    Flag {
        key: "host_uts",
        rule: &rules::HOST_UTS,
        attacker: "an attacker with SYS_ADMIN renames the host",
        instead: "none: drop it unless the add-on manages the hostname",
    },
    Flag {
        key: "host_dbus",
        rule: &rules::HOST_DBUS,
        attacker: "an attacker talks to systemd, logind and NetworkManager on the system bus: start units, reboot, reconfigure the network as root",
        instead: "the Supervisor API's host endpoints (`hassio_api: true`) for the host actions it offers",
    },
    Flag {
        key: "kernel_modules",
        rule: &rules::KERNEL_MODULES,
        attacker: "an attacker loads code into the host's kernel",
        instead: "load the module on the host system instead",
    },
];

pub(super) fn check(ctx: &mut Ctx) {
    for flag in &FLAGS {
        if ctx.config.flag(flag.key) != Some(true) {
            continue;
        }
        let Some((key, value)) = ctx.entry(flag.key) else {
            continue;
        };
        let edit = ctx.text.delete_key(key, value);
        let name = flag.key;
        let message = format!(
            "{}: true: {}{}",
            flag.key,
            flag.attacker,
            withheld(ctx, flag.key)
        );
        ctx.fix(
            flag.rule,
            key.pos,
            message,
            fix(
                format!("delete `{}: true`; instead: {}", flag.key, flag.instead),
                edit,
            ),
            move |c: &mut AddonConfig, _: &mut ApparmorMode| {
                if let Some(f) = c.flag_mut(name) {
                    *f = false;
                }
            },
        );
    }
    capabilities(ctx);
    devices(ctx);
    admin(ctx);
}

/// What our strict policy does with the right, when it withholds it.
fn withheld(ctx: &Ctx, right: &str) -> String {
    match ctx
        .plan()
        .and_then(|p| p.withheld.iter().find(|w| w.right == right))
    {
        Some(w) => format!(
            " (addon-sandbox withholds it under protection: {})",
            w.grant_with
        ),
        None => String::new(),
    }
}

fn capabilities(ctx: &mut Ctx) {
    let Some(items) = ctx.entry("privileged").and_then(|(_, v)| v.as_seq()) else {
        return;
    };
    for item in items {
        let Some(cap) = item.as_str().and_then(Capability::parse) else {
            continue;
        };
        if !cap.lowers_rating() || !ctx.config.privileged.contains(&cap) {
            continue;
        }
        let edit = ctx.text.delete_item(item, items.len() == 1);
        let message = format!(
            "privileged {}: {}{}",
            cap.name(),
            capability_risk(cap),
            withheld(ctx, cap.name())
        );
        ctx.fix(
            &rules::PRIVILEGED_CAPABILITY,
            item.pos,
            message,
            fix(
                format!(
                    "remove `{}` from `privileged` unless the add-on cannot work without it",
                    cap.name()
                ),
                edit,
            ),
            move |c: &mut AddonConfig, _: &mut ApparmorMode| c.privileged.retain(|p| *p != cap),
        );
    }
}

/// What a high-risk capability gives an attacker.
fn capability_risk(cap: Capability) -> &'static str {
    match cap {
        Capability::SysAdmin => {
            "mounts, namespaces and most of what root can do; the usual first step of a container escape"
        }
        Capability::NetAdmin => {
            "reconfigures interfaces, routes and the firewall of its network (the host's, with host_network)"
        }
        Capability::NetRaw => "crafts raw packets: spoofs and sniffs the network it is on",
        Capability::SysPtrace => "traces and injects code into processes it can see",
        Capability::SysRawio => "raw I/O ports and device memory",
        Capability::SysModule => "loads kernel modules: code in the host's kernel",
        Capability::DacReadSearch => {
            "opens any file by handle past every permission (the open_by_handle_at escape)"
        }
        Capability::Bpf => "loads BPF programs into the host's kernel",
        Capability::Perfmon => "observes the kernel and other processes",
        Capability::CheckpointRestore => "checkpoints and restores processes, chooses PIDs",
        _ => "a capability the rating counts as high-risk",
    }
}

/// One finding per device class withheld by strict protection, at its first entry; the edit
/// where the class has one entry (a repository listing fifty disks gets one finding).
fn devices(ctx: &mut Ctx) {
    let Some(items) = ctx.entry("devices").and_then(|(_, v)| v.as_seq()) else {
        return;
    };
    let mut classes: Vec<(NodeClass, Vec<(&Node, String)>)> = Vec::new();
    for item in items {
        let Some(written) = item.as_str() else {
            continue;
        };
        let path = written.split(':').next().unwrap_or(written).to_owned();
        let class = class_by_name(&path);
        if class.right().is_none() {
            continue;
        }
        match classes.iter_mut().find(|(c, _)| *c == class) {
            Some((_, list)) => list.push((item, path)),
            None => classes.push((class, vec![(item, path)])),
        }
    }
    for (class, list) in classes {
        let (first, _) = list[0];
        let paths: Vec<String> = list.iter().map(|(_, p)| p.clone()).collect();
        let (edit, what) = match list.as_slice() {
            [(item, path)] => (
                ctx.text.delete_item(item, items.len() == 1),
                format!("device {path}"),
            ),
            _ => (
                None,
                format!("{} devices ({}, ...)", list.len(), paths[..2].join(", ")),
            ),
        };
        let message = format!(
            "{what}, class {}: {}{}",
            class.name(),
            class.reason(),
            withheld(ctx, class.right().map_or("", |r| r.name()))
        );
        let written: Vec<&str> = list.iter().filter_map(|(n, _)| n.as_str()).collect();
        ctx.fix(
            &rules::RAW_DEVICE,
            first.pos,
            message,
            fix(
                format!("remove `{}` from `devices`; for a serial, USB or video device use `uart: true`, `usb: true` or `video: true`", written.join("`, `")),
                edit,
            ),
            move |c: &mut AddonConfig, _: &mut ApparmorMode| c.devices.retain(|d| !paths.contains(d)),
        );
    }
}

fn admin(ctx: &mut Ctx) {
    if ctx.config.hassio_role != Role::Admin {
        return;
    }
    let Some((key, value)) = ctx.entry("hassio_role") else {
        return;
    };
    let edit = ctx.text.set_value(key, value, "manager");
    let message = format!(
        "hassio_role: admin: an attacker switches off protection mode through the Supervisor API and so gets every host right{}",
        withheld(ctx, "admin_role")
    );
    ctx.fix(
        &rules::ADMIN_ROLE,
        key.pos,
        message,
        fix(
            "use `hassio_role: manager` (everything but the security and protection endpoints)",
            edit,
        ),
        |c: &mut AddonConfig, _: &mut ApparmorMode| c.hassio_role = Role::Manager,
    );
}

#[cfg(test)]
mod tests {
    /// Every right the table names is a boolean key the config reads and clears by name (a
    /// name it did not know would make its rule silently never fire).
    #[test]
    fn every_flag_is_a_boolean_key_of_the_config() {
        let yaml = "name: T\nversion: '1'\nslug: t\ndescription: d\narch: [amd64]\n";
        let root = crate::source::parse(yaml, crate::source::Format::Yaml).unwrap();
        let mut sink = crate::diag::Sink::new(std::path::Path::new("config.yaml"), None);
        let mut config = crate::config::validate::validate(&root, &mut sink).unwrap();
        for flag in &super::FLAGS {
            *config.flag_mut(flag.key).expect(flag.key) = true;
            assert_eq!(config.flag(flag.key), Some(true), "{}", flag.key);
        }
    }
}
