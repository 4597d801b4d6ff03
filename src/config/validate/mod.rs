//! `_SCHEMA_APP_CONFIG`: every key, its type, coercion and default.
//!
//! This module walks the top level (a mapping, its repeated and unknown keys, the Supervisor's
//! migrations) and hands the keys to `Validator`, which looks them up through a `KeyIndex`
//! (kept here, beside the type whose methods make every lookup, so the two are compiled
//! together). The submodules check the keys: `build` walks them in the order the Supervisor's
//! schema lists them (so the diagnostics come out in that order), `fields` holds the shapes of
//! a schema entry, `ports`, `map`, `environment` and `ulimits` the key families with a structure
//! of their own, and `typo` the hint for an unknown key.

mod build;
mod environment;
mod fields;
mod map;
mod ports;
mod typo;
mod ulimits;

use crate::diag::Sink;
use crate::source::{Node, Value};

use super::{AddonConfig, migrate};
use typo::closest_key;

/// Every key the Supervisor's schema knows. Anything else is dropped by it (`REMOVE_EXTRA`);
/// we warn, because a typo such as `device-tree` silently loses a setting.
pub const KNOWN_KEYS: &[&str] = &[
    "name",
    "version",
    "slug",
    "description",
    "arch",
    "machine",
    "url",
    "startup",
    "boot",
    "init",
    "advanced",
    "stage",
    "ports",
    "ports_description",
    "watchdog",
    "webui",
    "ingress",
    "ingress_port",
    "ingress_entry",
    "ingress_stream",
    "panel_icon",
    "panel_title",
    "panel_admin",
    "homeassistant",
    "host_network",
    "host_pid",
    "host_ipc",
    "host_uts",
    "host_dbus",
    "devices",
    "udev",
    "tmpfs",
    "map",
    "environment",
    "privileged",
    "apparmor",
    "full_access",
    "audio",
    "video",
    "gpio",
    "usb",
    "uart",
    "devicetree",
    "kernel_modules",
    "realtime",
    "hassio_api",
    "hassio_role",
    "homeassistant_api",
    "stdin",
    "legacy",
    "docker_api",
    "auth_api",
    "services",
    "discovery",
    "backup_exclude",
    "backup_pre",
    "backup_post",
    "backup",
    "options",
    "schema",
    "image",
    "ulimits",
    "timeout",
    "journald",
    "breaking_versions",
];

/// Keys that are read and then dropped on purpose (already reported as deprecated).
const RETIRED_KEYS: &[&str] = &["codenotary"];

/// Validate a parsed config. Returns the config when it is valid (no error was reported).
pub fn validate(root: &Node, sink: &mut Sink) -> Option<AddonConfig> {
    validate_owned(root.clone(), sink)
}

/// [`validate`] of a tree the caller is done with: the migrations rewrite it in place instead
/// of in a copy.
pub fn validate_owned(root: Node, sink: &mut Sink) -> Option<AddonConfig> {
    if root.as_map().is_none() {
        sink.error(
            root.pos,
            format!(
                "an add-on config must be a mapping of keys to values, got {}",
                root.kind()
            ),
        );
        return None;
    }
    // A missing `name` is reported once, as a missing required key, by the schema below.
    if let Some(name) = root.get("name").filter(|n| !n.truthy()) {
        sink.error(name.pos, "'name' is required and must not be empty");
    }
    warn_duplicates(root.as_map().unwrap_or_default(), sink);

    let Node {
        value: Value::Map(mut entries),
        pos,
    } = root
    else {
        return None;
    };
    migrate::migrate(&mut entries, sink);
    let migrated = Node::new(Value::Map(entries), pos);
    migrate::advise(&migrated, sink);

    warn_unknown_keys(migrated.as_map().unwrap_or_default(), sink);
    let index = KeyIndex::new(migrated.as_map().unwrap_or_default());
    let mut v = Validator {
        root: &migrated,
        index,
        sink,
    };
    let config = v.build();
    if v.sink.has_errors() {
        None
    } else {
        Some(config)
    }
}

fn warn_duplicates(entries: &[(Node, Node)], sink: &mut Sink) {
    for i in KeyIndex::new(entries).replaced() {
        let key = &entries[i].0;
        sink.warn(
            key.pos,
            format!(
                "key '{}' is repeated; this value is replaced by a later one",
                key.as_str().unwrap_or_default()
            ),
        );
    }
}

/// Keys ordered by length first: most comparisons of a lookup end there, without a memcmp.
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The string keys of a mapping, sorted, for lookups where the last occurrence wins (as in a
/// Python dict). Sorting keeps a config with tens of thousands of keys linearithmic: both a
/// pairwise duplicate scan and a hash map of attacker-chosen keys can be made quadratic.
struct KeyIndex<'a> {
    /// (key, position in the mapping), sorted by key, then position.
    keys: Vec<(&'a str, usize)>,
    entries: &'a [(Node, Node)],
}

impl<'a> KeyIndex<'a> {
    fn new(entries: &'a [(Node, Node)]) -> Self {
        let mut keys: Vec<(&str, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, (k, _))| Some((k.as_str()?, i)))
            .collect();
        keys.sort_unstable_by(|a, b| order(a.0, b.0).then(a.1.cmp(&b.1)));
        KeyIndex { keys, entries }
    }

    fn get(&self, key: &str) -> Option<&'a Node> {
        // The end of the run of `key`: its last occurrence is just before it.
        let end = self
            .keys
            .partition_point(|(k, _)| order(k, key) != std::cmp::Ordering::Greater);
        let (k, i) = *self.keys[..end].last()?;
        (k == key).then(|| &self.entries[i].1)
    }

    /// Positions of entries a later entry with the same key replaces, in file order.
    fn replaced(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .keys
            .windows(2)
            .filter(|pair| pair[0].0 == pair[1].0)
            .map(|pair| pair[0].1)
            .collect();
        out.sort_unstable();
        out
    }
}

/// Keys the Supervisor's schema does not know: it drops them silently, we warn (with the
/// nearest known key, when one is close).
fn warn_unknown_keys(entries: &[(Node, Node)], sink: &mut Sink) {
    for (key, _) in entries {
        match key.as_str() {
            Some(k) if KNOWN_KEYS.contains(&k) || RETIRED_KEYS.contains(&k) => {}
            Some(k) => {
                let hint = closest_key(k)
                    .map(|c| format!("; did you mean '{c}'?"))
                    .unwrap_or_default();
                sink.warn(
                    key.pos,
                    format!(
                        "unknown key '{k}' is ignored (the Supervisor drops it silently){hint}"
                    ),
                );
            }
            None => sink.warn(
                key.pos,
                format!("key {} is not a string and is ignored", key.display()),
            ),
        }
    }
}

/// The schema walk over one config's keys, looked up through its [`KeyIndex`]; every error
/// goes to the sink under the key's name.
struct Validator<'a, 's> {
    root: &'a Node,
    index: KeyIndex<'a>,
    sink: &'a mut Sink<'s>,
}
