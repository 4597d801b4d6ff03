//! `_migrate_app_config` and `_warn_app_config`: legacy forms rewritten before validation,
//! advisories, and the one hard error of the advisory step.

use crate::diag::Sink;
use crate::source::{Node, Pos, Value};

use super::rules::RE_VOLUME;

/// The deprecated architectures (`ARCH_DEPRECATED`).
const ARCH_DEPRECATED: [&str; 3] = ["armhf", "armv7", "i386"];
/// Machines the Supervisor no longer supports (`MACHINE_DEPRECATED`).
const MACHINE_DEPRECATED: [&str; 8] = [
    "odroid-xu",
    "qemuarm",
    "qemux86",
    "raspberrypi",
    "raspberrypi2",
    "raspberrypi3",
    "raspberrypi4",
    "tinker",
];

const INGRESS_DYNAMIC_PORT_MIN: u32 = 62000;
const INGRESS_DYNAMIC_PORT_MAX: u32 = 65500;

fn str_node(s: &str, pos: Pos) -> Node {
    Node::new(Value::Str(s.to_owned()), pos)
}

/// Rewrite the top-level mapping in place, as the Supervisor does before validating it.
pub fn migrate(entries: &mut Vec<(Node, Node)>, sink: &mut Sink) {
    // startup: before/after
    for (key, value) in entries.iter_mut() {
        if key.as_str() == Some("startup") {
            let new = match value.as_str() {
                Some("before") => "services",
                Some("after") => "application",
                _ => continue,
            };
            sink.warn(
                value.pos,
                format!(
                    "'startup: {}' is deprecated; it means '{new}'",
                    value.as_str().unwrap_or_default()
                ),
            );
            *value = str_node(new, value.pos);
        }
    }

    rename(entries, "auto_uart", "uart", sink);
    for (old, new) in [
        ("snapshot_exclude", "backup_exclude"),
        ("snapshot_post", "backup_post"),
        ("snapshot_pre", "backup_pre"),
        ("snapshot", "backup"),
    ] {
        rename(entries, old, new, sink);
    }

    // devices: the old host:container:perm form keeps only the host path.
    if let Some(idx) = last_index(entries, "devices")
        && let pos = entries[idx].1.pos
        && let Value::Seq(items) = &mut entries[idx].1.value
        && items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| s.contains(':')))
    {
        sink.warn(
            pos,
            "'devices' uses the deprecated 'host:container:permissions' form; only the host path is used",
        );
        for item in items.iter_mut() {
            if let Value::Str(s) = &mut item.value
                && let Some((host, _)) = s.split_once(':')
            {
                *s = host.to_owned();
            }
        }
    }

    // tmpfs: any non-boolean (the old "size=10m") means true.
    if let Some(idx) = last_index(entries, "tmpfs")
        && !matches!(entries[idx].1.value, Value::Bool(_))
    {
        let pos = entries[idx].1.pos;
        sink.warn(
            pos,
            format!(
                "'tmpfs: {}' is a deprecated form; tmpfs takes true or false and this means true",
                entries[idx].1.display()
            ),
        );
        entries[idx].1 = Node::new(Value::Bool(true), pos);
    }

    migrate_map(entries, sink);
}

fn last_index(entries: &[(Node, Node)], key: &str) -> Option<usize> {
    entries.iter().rposition(|(k, _)| k.as_str() == Some(key))
}

/// `config[new] = config.pop(old)`: the old key's value replaces the new key's.
fn rename(entries: &mut Vec<(Node, Node)>, old: &str, new: &str, sink: &mut Sink) {
    let Some(idx) = last_index(entries, old) else {
        return;
    };
    let key_pos = entries[idx].0.pos;
    if last_index(entries, new).is_some() {
        sink.warn(
            key_pos,
            format!("'{old}' is deprecated and overrides '{new}' written in the same file"),
        );
    } else {
        sink.warn(key_pos, format!("'{old}' is deprecated; use '{new}'"));
    }
    let value = entries[idx].1.clone();
    entries.retain(|(k, _)| k.as_str() != Some(old) && k.as_str() != Some(new));
    entries.push((str_node(new, key_pos), value));
}

fn migrate_map(entries: &mut [(Node, Node)], sink: &mut Sink) {
    let Some(idx) = last_index(entries, "map") else {
        return;
    };
    let map_node = &entries[idx].1;
    let pos = map_node.pos;
    let Some(items) = map_items(map_node, sink) else {
        return;
    };
    let volumes: Vec<Node> = items
        .into_iter()
        .filter_map(|item| map_volume(item, sink))
        .collect();
    warn_map_types(&volumes, pos, sink);
    entries[idx].1 = Node::new(Value::Seq(volumes), pos);
}

/// The items of `map` as the Supervisor iterates them, or `None` when it would fail.
fn map_items(map_node: &Node, sink: &mut Sink) -> Option<Vec<Node>> {
    let pos = map_node.pos;
    // Python iterates whatever the value is: a list's items, a dict's keys, a string's
    // characters. Anything else makes the Supervisor fail with an exception.
    let items: Vec<Node> = match &map_node.value {
        Value::Seq(items) => items.clone(),
        Value::Map(pairs) => {
            sink.warn(
                pos,
                "'map' should be a list; the Supervisor reads only the keys of this mapping",
            );
            pairs.iter().map(|(k, _)| k.clone()).collect()
        }
        Value::Str(s) => {
            sink.warn(
                pos,
                format!("'map' should be a list; the string '{s}' maps nothing"),
            );
            Vec::new()
        }
        _ => {
            sink.error(
                pos,
                format!(
                    "'map' must be a list of folders to map, got {}",
                    map_node.kind()
                ),
            );
            return None;
        }
    };
    Some(items)
}

/// One `map` item as a volume mapping (`TYPE:rw` written out as type and read_only), or
/// `None` when the Supervisor drops it.
fn map_volume(item: Node, sink: &mut Sink) -> Option<Node> {
    match &item.value {
        Value::Map(_) => {
            if item.get("type").is_none() {
                sink.warn(
                    item.pos,
                    "map entry has no 'type' and is skipped (the Supervisor drops it silently)",
                );
                return None;
            }
            Some(item)
        }
        Value::Str(s) => match RE_VOLUME.captures(s) {
            Some(caps) => {
                let kind = caps.get(1).map_or("", |m| m.as_str());
                let read_only = caps.get(2).map(|m| m.as_str()) != Some("rw");
                Some(Node::new(
                    Value::Map(vec![
                        (str_node("type", item.pos), str_node(kind, item.pos)),
                        (
                            str_node("read_only", item.pos),
                            Node::new(Value::Bool(read_only), item.pos),
                        ),
                    ]),
                    item.pos,
                ))
            }
            None => {
                sink.warn(
                    item.pos,
                    format!(
                        "map entry '{s}' is not a known folder (expected TYPE, TYPE:rw or TYPE:ro, lowercase) and is skipped; the Supervisor drops it silently"
                    ),
                );
                None
            }
        },
        _ => {
            sink.warn(
                item.pos,
                format!(
                    "map entry of {} is skipped (the Supervisor drops it silently)",
                    item.kind()
                ),
            );
            None
        }
    }
}

/// Deprecated and legacy map types, and a legacy type given beside its modern name.
fn warn_map_types(volumes: &[Node], pos: Pos, sink: &mut Sink) {
    let kinds: Vec<&str> = volumes
        .iter()
        .filter_map(|v| v.get("type").and_then(Node::as_str))
        .collect();
    if kinds.contains(&"config") {
        if kinds
            .iter()
            .any(|k| matches!(*k, "addon_config" | "app_config" | "homeassistant_config"))
        {
            sink.warn(
                pos,
                "map type 'config' is combined with 'app_config'/'homeassistant_config': those are ignored while 'config' is present",
            );
        } else {
            sink.warn(pos, "map type 'config' is deprecated; use 'homeassistant_config' (mounted at /homeassistant)");
        }
    }
    for (legacy, modern) in [
        ("addons", "local_apps"),
        ("all_addon_configs", "all_app_configs"),
        ("addon_config", "app_config"),
    ] {
        if let Some(v) = volumes
            .iter()
            .find(|v| v.get("type").and_then(Node::as_str) == Some(legacy))
        {
            if kinds.contains(&modern) {
                sink.warn(
                    v.pos,
                    format!("map type '{legacy}' is ignored because '{modern}' is also given"),
                );
            } else {
                sink.warn(
                    v.pos,
                    format!("map type '{legacy}' is a legacy name; use '{modern}'"),
                );
            }
        }
    }
}

/// `_warn_app_config`: advisories, and the dynamic ingress port conflict (a hard error).
pub fn advise(root: &Node, sink: &mut Sink) {
    if let Some((key, _)) = root.get_entry("advanced") {
        sink.warn(
            key.pos,
            "'advanced' is deprecated and ignored by the Supervisor",
        );
    }
    if let Some((key, _)) = root.get_entry("codenotary") {
        sink.warn(
            key.pos,
            "'codenotary' is deprecated and ignored by the Supervisor",
        );
    }
    let truthy = |k: &str| root.get(k).is_some_and(Node::truthy);
    if truthy("full_access")
        && (truthy("devices") || truthy("uart") || truthy("usb") || truthy("gpio"))
    {
        let pos = root
            .get_entry("full_access")
            .map_or(Pos::default(), |(k, _)| k.pos);
        sink.warn(
            pos,
            "'full_access' makes 'devices', 'uart', 'usb' and 'gpio' redundant (they are ignored while full access is granted)",
        );
    }
    if root.get("backup").and_then(Node::as_str) == Some("cold")
        && (truthy("backup_pre") || truthy("backup_post"))
    {
        let pos = root
            .get_entry("backup")
            .map_or(Pos::default(), |(k, _)| k.pos);
        sink.warn(
            pos,
            "'backup: cold' add-ons do not run backup_pre/backup_post commands",
        );
    }
    if let Some(arch) = root.get("arch").and_then(Node::as_seq) {
        for a in arch {
            if let Some(s) = a.as_str().filter(|s| ARCH_DEPRECATED.contains(s)) {
                sink.warn(a.pos, format!("architecture '{s}' is deprecated"));
            }
        }
    }
    if let Some(machines) = root.get("machine").and_then(Node::as_seq) {
        for m in machines {
            if let Some(s) = m
                .as_str()
                .filter(|s| MACHINE_DEPRECATED.contains(&s.trim_start_matches('!')))
            {
                sink.warn(m.pos, format!("machine '{s}' is deprecated"));
            }
        }
    }

    // ingress_port: 0 asks for a port from 62000-65500; a published container port in that
    // range could collide with it.
    // `config.get("ingress_port") == 0` in Python: `false` and `0.0` compare equal to 0 too.
    let dynamic = truthy("ingress") && root.get("ingress_port").is_some_and(Node::equals_zero);
    if dynamic && let Some(ports) = root.get("ports").and_then(Node::as_map) {
        for (key, _) in ports {
            let Some(k) = key.as_str() else { continue };
            let number = k.split('/').next().unwrap_or("");
            if let Ok(port) = number.parse::<u32>()
                && (INGRESS_DYNAMIC_PORT_MIN..=INGRESS_DYNAMIC_PORT_MAX).contains(&port)
            {
                sink.error(
                    key.pos,
                    format!(
                        "port {k} lies in the dynamic ingress range {INGRESS_DYNAMIC_PORT_MIN}-{INGRESS_DYNAMIC_PORT_MAX} while 'ingress_port: 0' asks for a dynamic port (the Supervisor refuses this add-on)"
                    ),
                );
            }
        }
    }
}
