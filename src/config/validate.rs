//! `_SCHEMA_APP_CONFIG`: every key, its type, coercion and default.

use crate::diag::Sink;
use crate::source::{Node, Pos, Value};

use super::rules::{self, Check};
use super::{
    AddonConfig, BackupMode, Boot, Capability, IngressPort, MapEntry, MapType, PortSpec, Protocol,
    Role, Stage, Startup, Ulimit, migrate, options_schema, scalar_text,
};

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

    for (key, _) in migrated.as_map().unwrap_or_default() {
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

/// The known key nearest to a typo, if one is close (Levenshtein distance on a normalised form).
fn closest_key(key: &str) -> Option<&'static str> {
    fn norm(s: &str) -> String {
        s.to_lowercase().replace(['-', ' '], "_")
    }
    /// Each known key with its two compared spellings, made once.
    static KNOWN: std::sync::LazyLock<Vec<(&'static str, String, String)>> =
        std::sync::LazyLock::new(|| {
            KNOWN_KEYS
                .iter()
                .map(|c| (*c, norm(c), c.replace('_', "")))
                .collect()
        });
    let k = norm(key);
    let k_bare = k.replace('_', "");
    let (k_len, bare_len) = (k.chars().count(), k_bare.chars().count());
    KNOWN
        .iter()
        .filter_map(|(c, c_norm, c_bare)| {
            let limit = 2.max(c.len() / 5);
            // The distance is at least the difference in length: most keys need no table.
            if k_len.abs_diff(c_norm.len()) > limit && bare_len.abs_diff(c_bare.len()) > limit {
                return None;
            }
            let d = levenshtein(&k, c_norm).min(levenshtein(&k_bare, c_bare));
            (d <= limit).then_some((d, *c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // Two rows, reused: this runs for every unknown key against every known one.
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

struct Validator<'a, 's> {
    root: &'a Node,
    index: KeyIndex<'a>,
    sink: &'a mut Sink<'s>,
}

impl<'a> Validator<'a, '_> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.index.get(key)
    }

    fn fail(&mut self, pos: Pos, key: &str, message: impl AsRef<str>) {
        self.sink
            .error(pos, format!("'{key}': {}", message.as_ref()));
    }

    /// A key with a validator: the coerced value, or the default when absent or invalid.
    fn field<T>(&mut self, key: &str, default: T, check: impl Fn(&'a Node) -> Check<T>) -> T {
        match self.get(key) {
            None => default,
            Some(node) => match check(node) {
                Ok(v) => v,
                Err(msg) => {
                    self.fail(node.pos, key, msg);
                    default
                }
            },
        }
    }

    fn required<T: Default>(&mut self, key: &str, check: impl Fn(&'a Node) -> Check<T>) -> T {
        if self.get(key).is_none() {
            let pos = self.root.pos;
            self.fail(pos, key, "required key is missing");
            return T::default();
        }
        self.field(key, T::default(), check)
    }

    fn boolean(&mut self, key: &str, default: bool) -> bool {
        self.field(key, default, rules::boolean)
    }

    fn optional_str(&mut self, key: &str) -> Option<String> {
        self.field(key, None, |n| rules::string(n).map(|s| Some(s.to_owned())))
    }

    /// `[validator]`: a list whose every element passes; each bad element is reported.
    fn list<T>(&mut self, key: &str, check: impl Fn(&'a Node) -> Check<T>) -> Vec<T> {
        let Some(node) = self.get(key) else {
            return Vec::new();
        };
        let Some(items) = node.as_seq() else {
            self.fail(
                node.pos,
                key,
                format!("expected a list, got {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match check(item) {
                Ok(v) => out.push(v),
                Err(msg) => self.fail(item.pos, &format!("{key}[{i}]"), msg),
            }
        }
        out
    }

    fn one_of<T: Copy>(&mut self, key: &str, default: T, options: &[(&str, T)]) -> T {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.field(key, default, |node| {
            node.as_str()
                .and_then(|s| options.iter().find(|(n, _)| *n == s).map(|(_, v)| *v))
                .ok_or_else(|| {
                    format!(
                        "expected one of {}, got {}",
                        names.join(", "),
                        node.display()
                    )
                })
        })
    }

    fn build(&mut self) -> AddonConfig {
        let name = self.required("name", |n| rules::string(n).map(str::to_owned));
        let version = self.required("version", rules::version);
        let slug = self.required("slug", |n| {
            rules::matches(
                n,
                &rules::RE_SLUG,
                "a slug (letters, digits, '-', '_' and '.')",
            )
            .map(str::to_owned)
        });
        let description = self.required("description", |n| rules::string(n).map(str::to_owned));
        if self.get("arch").is_none() {
            let pos = self.root.pos;
            self.fail(pos, "arch", "required key is missing");
        }
        let arch = self.list("arch", |n| {
            n.as_str()
                .filter(|s| ["aarch64", "amd64", "armhf", "armv7", "i386"].contains(s))
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!(
                        "expected one of aarch64, amd64, armhf, armv7, i386, got {}",
                        n.display()
                    )
                })
        });
        let machine = self.list("machine", |n| {
            rules::matches(n, &rules::RE_MACHINE, "a known machine name").map(str::to_owned)
        });
        if let Some(node) = self.get("machine") {
            let mut seen = std::collections::HashSet::new();
            if machine.iter().any(|m| !seen.insert(m)) {
                self.fail(node.pos, "machine", "contains duplicate items");
            }
        }
        let url = self.field("url", None, |n| rules::url(n).map(|s| Some(s.to_owned())));
        let startup = self.one_of(
            "startup",
            Startup::Application,
            &[
                ("initialize", Startup::Initialize),
                ("system", Startup::System),
                ("services", Startup::Services),
                ("application", Startup::Application),
                ("once", Startup::Once),
            ],
        );
        let boot = self.one_of(
            "boot",
            Boot::Auto,
            &[
                ("auto", Boot::Auto),
                ("manual", Boot::Manual),
                ("manual_only", Boot::ManualOnly),
            ],
        );
        let init = self.boolean("init", true);
        self.boolean("advanced", false);
        let stage = self.one_of(
            "stage",
            Stage::Stable,
            &[
                ("stable", Stage::Stable),
                ("experimental", Stage::Experimental),
                ("deprecated", Stage::Deprecated),
            ],
        );
        let ports = self.ports();
        self.ports_description();
        let watchdog = self.field("watchdog", None, |n| {
            rules::matches(
                n,
                &rules::RE_WATCHDOG,
                "a watchdog URL such as tcp://[HOST]:[PORT:8080]",
            )
            .map(|s| Some(s.to_owned()))
        });
        let webui = self.field("webui", None, |n| {
            rules::matches(
                n,
                &rules::RE_WEBUI,
                "a web UI URL such as http://[HOST]:[PORT:8080]/",
            )
            .map(|s| Some(s.to_owned()))
        });
        let ingress = self.boolean("ingress", false);
        let ingress_port = self.field("ingress_port", IngressPort::Fixed(8099), |n| {
            // vol.Any(network_port, vol.Equal(0)): Python's 0 == False == 0.0.
            match rules::network_port(n) {
                Ok(p) => Ok(IngressPort::Fixed(p)),
                Err(_) if n.equals_zero() => Ok(IngressPort::Dynamic),
                Err(e) => Err(format!("{e} (or 0 for a dynamic port)")),
            }
        });
        let ingress_entry = self.optional_str("ingress_entry");
        let ingress_stream = self.boolean("ingress_stream", false);
        let panel_icon = self.field("panel_icon", "mdi:puzzle".to_owned(), |n| {
            rules::string(n).map(str::to_owned)
        });
        let panel_title = self.optional_str("panel_title");
        let panel_admin = self.boolean("panel_admin", true);
        let homeassistant = self.field("homeassistant", None, |n| match n.value {
            Value::Null => Ok(None),
            _ => rules::version(n).map(Some),
        });
        let host_network = self.boolean("host_network", false);
        let host_pid = self.boolean("host_pid", false);
        let host_ipc = self.boolean("host_ipc", false);
        let host_uts = self.boolean("host_uts", false);
        let host_dbus = self.boolean("host_dbus", false);
        let devices = self.list("devices", |n| rules::string(n).map(str::to_owned));
        let udev = self.boolean("udev", false);
        let tmpfs = self.boolean("tmpfs", false);
        let map = self.map();
        let environment = self.environment();
        let privileged = self.list("privileged", |n| {
            n.as_str().and_then(Capability::parse).ok_or_else(|| {
                let names: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "expected one of {} (upper case), got {}",
                    names.join(", "),
                    n.display()
                )
            })
        });
        let apparmor = self.field("apparmor", true, |n| {
            rules::boolean(n).map_err(|_| {
                format!(
                    "expected true or false, got {} (a profile name is not accepted: ship the profile as apparmor.txt)",
                    n.display()
                )
            })
        });
        let full_access = self.boolean("full_access", false);
        let audio = self.boolean("audio", false);
        let video = self.boolean("video", false);
        let gpio = self.boolean("gpio", false);
        let usb = self.boolean("usb", false);
        let uart = self.boolean("uart", false);
        let devicetree = self.boolean("devicetree", false);
        let kernel_modules = self.boolean("kernel_modules", false);
        let realtime = self.boolean("realtime", false);
        let hassio_api = self.boolean("hassio_api", false);
        let hassio_role = self.field("hassio_role", Role::Default, |n| {
            n.as_str().and_then(Role::parse).ok_or_else(|| {
                format!(
                    "expected one of default, homeassistant, backup, manager, admin, got {}",
                    n.display()
                )
            })
        });
        let homeassistant_api = self.boolean("homeassistant_api", false);
        let stdin = self.boolean("stdin", false);
        let legacy = self.boolean("legacy", false);
        let docker_api = self.boolean("docker_api", false);
        let auth_api = self.boolean("auth_api", false);
        let services = self.list("services", |n| {
            rules::matches(
                n,
                &rules::RE_SERVICE,
                "SERVICE:RIGHTS with mqtt or mysql and provide, want or need",
            )
            .map(str::to_owned)
        });
        let discovery = self.list("discovery", |n| rules::string(n).map(str::to_owned));
        let backup_exclude = self.list("backup_exclude", |n| rules::string(n).map(str::to_owned));
        let backup_pre = self.optional_str("backup_pre");
        let backup_post = self.optional_str("backup_post");
        let backup = self.one_of(
            "backup",
            BackupMode::Hot,
            &[("hot", BackupMode::Hot), ("cold", BackupMode::Cold)],
        );
        let option_scalars = self.options();
        self.schema();
        let image = self.field("image", None, |n| {
            rules::docker_image(n).map(|s| Some(s.to_owned()))
        });
        let ulimits = self.ulimits();
        let timeout = self.field("timeout", 10, |n| {
            let t = rules::coerce_int(n)?;
            if (10..=300).contains(&t) {
                Ok(t as u32)
            } else {
                Err(format!(
                    "value must be at most 300 and at least 10, got {t}"
                ))
            }
        });
        let journald = self.boolean("journald", false);
        let breaking_versions = self.list("breaking_versions", |n| match n.value {
            Value::Null => Ok("None".to_owned()),
            _ => rules::version(n),
        });

        AddonConfig {
            name,
            version,
            slug,
            description,
            arch,
            machine,
            url,
            startup,
            boot,
            init,
            stage,
            ports,
            watchdog,
            webui,
            ingress,
            ingress_port,
            ingress_entry,
            ingress_stream,
            panel_icon,
            panel_title,
            panel_admin,
            homeassistant,
            host_network,
            host_pid,
            host_ipc,
            host_uts,
            host_dbus,
            devices,
            udev,
            tmpfs,
            map,
            environment,
            privileged,
            apparmor,
            full_access,
            audio,
            video,
            gpio,
            usb,
            uart,
            devicetree,
            kernel_modules,
            realtime,
            hassio_api,
            hassio_role,
            homeassistant_api,
            stdin,
            legacy,
            docker_api,
            auth_api,
            services,
            discovery,
            backup_exclude,
            backup_pre,
            backup_post,
            backup,
            option_scalars,
            image,
            ulimits,
            timeout,
            journald,
            breaking_versions,
        }
    }

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

    fn ports(&mut self) -> Vec<(PortSpec, Option<u16>)> {
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

    fn ports_description(&mut self) {
        for (spec, value) in self.port_keys("ports_description") {
            if let Err(e) = rules::string(value) {
                self.fail(value.pos, &format!("ports_description.{}", spec.key), e);
            }
        }
    }

    fn map(&mut self) -> Vec<MapEntry> {
        let Some(items) = self.get("map").and_then(Node::as_seq) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(entries) = item.as_map() else {
                continue;
            };
            let mut kind = None;
            let mut read_only = true;
            let mut path = None;
            let mut ok = true;
            for (k, v) in entries {
                match k.as_str() {
                    Some("type") => match v.as_str().and_then(MapType::parse) {
                        Some(t) => kind = Some(t),
                        None => {
                            ok = false;
                            let names: Vec<&str> = MapType::ALL.iter().map(|t| t.name()).collect();
                            self.fail(
                                v.pos,
                                "map.type",
                                format!(
                                    "expected one of {}, got {}",
                                    names.join(", "),
                                    v.display()
                                ),
                            );
                        }
                    },
                    Some("read_only") => match v.value {
                        Value::Bool(b) => read_only = b,
                        _ => {
                            ok = false;
                            self.fail(
                                v.pos,
                                "map.read_only",
                                format!("expected true or false (unquoted), got {}", v.display()),
                            );
                        }
                    },
                    Some("path") => match rules::string(v) {
                        Ok(s) => path = Some(s.to_owned()),
                        Err(e) => {
                            ok = false;
                            self.fail(v.pos, "map.path", e);
                        }
                    },
                    _ => {
                        ok = false;
                        self.fail(k.pos, "map", format!("extra key {} not allowed in a map entry (allowed: type, read_only, path)", k.display()));
                    }
                }
            }
            if let (true, Some(kind)) = (ok, kind) {
                out.push(MapEntry {
                    kind,
                    read_only,
                    path,
                });
            }
        }
        out
    }

    fn environment(&mut self) -> Vec<(String, String)> {
        let Some(node) = self.get("environment") else {
            return Vec::new();
        };
        let Some(entries) = node.as_map() else {
            self.fail(
                node.pos,
                "environment",
                format!(
                    "expected a mapping of names to strings, got {}",
                    node.kind()
                ),
            );
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.as_str().filter(|k| rules::environment_key_ok(k)) else {
                self.fail(
                    k.pos,
                    "environment",
                    format!("variable name {} must be a string", k.display()),
                );
                continue;
            };
            match v.as_str() {
                Some(value) => {
                    out.retain(|(n, _)| n != name);
                    out.push((name.to_owned(), value.to_owned()));
                }
                None => self.fail(
                    v.pos,
                    &format!("environment.{name}"),
                    format!("expected str, got {} (quote the value)", v.display()),
                ),
            }
        }
        out
    }

    fn options(&mut self) -> Vec<(String, String)> {
        let Some(node) = self.get("options") else {
            return Vec::new();
        };
        let Some(entries) = node.as_map() else {
            self.fail(
                node.pos,
                "options",
                format!("expected a mapping, got {}", node.kind()),
            );
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|(k, v)| {
                let key = k.as_str()?;
                // DockerApp: legacy add-ons get int and str options (bool is an int) as env.
                match v.value {
                    Value::Int(_) | Value::Bool(_) | Value::Str(_) => {
                        Some((key.to_owned(), scalar_text(v)?))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    fn schema(&mut self) {
        let Some(node) = self.get("schema") else {
            return;
        };
        let mut errors = Vec::new();
        options_schema::check(node, &mut errors);
        for (pos, msg) in errors {
            self.sink.error(pos, msg);
        }
    }

    fn ulimits(&mut self) -> Vec<Ulimit> {
        let Some(node) = self.get("ulimits") else {
            return Vec::new();
        };
        let Some(entries) = node.as_map() else {
            self.fail(
                node.pos,
                "ulimits",
                format!("expected a mapping of limit names, got {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out: Vec<Ulimit> = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.as_str() else {
                self.fail(
                    k.pos,
                    "ulimits",
                    format!("limit name {} must be a string", k.display()),
                );
                continue;
            };
            let path = format!("ulimits.{name}");
            let limit = match &v.value {
                Value::Map(fields) => {
                    let mut soft = None;
                    let mut hard = None;
                    let mut ok = true;
                    for (fk, fv) in fields {
                        let slot = match fk.as_str() {
                            Some("soft") => &mut soft,
                            Some("hard") => &mut hard,
                            _ => {
                                ok = false;
                                self.fail(
                                    fk.pos,
                                    &path,
                                    format!(
                                        "extra key {} not allowed (expected soft and hard)",
                                        fk.display()
                                    ),
                                );
                                continue;
                            }
                        };
                        match rules::coerce_int(fv) {
                            Ok(i) => *slot = Some(i),
                            Err(e) => {
                                ok = false;
                                self.fail(fv.pos, &path, e);
                            }
                        }
                    }
                    match (ok, soft, hard) {
                        (true, Some(soft), Some(hard)) => Some((soft, hard)),
                        (true, _, _) => {
                            self.fail(v.pos, &path, "both 'soft' and 'hard' are required");
                            None
                        }
                        _ => None,
                    }
                }
                _ => match rules::coerce_int(v) {
                    Ok(i) => Some((i, i)),
                    Err(e) => {
                        self.fail(
                            v.pos,
                            &path,
                            format!("{e} (or a mapping with soft and hard)"),
                        );
                        None
                    }
                },
            };
            if let Some((soft, hard)) = limit {
                let clamp = |x: i128| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
                out.retain(|u| u.name != name);
                out.push(Ulimit {
                    name: name.to_owned(),
                    soft: clamp(soft),
                    hard: clamp(hard),
                });
            }
        }
        out
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

    #[test]
    fn typo_suggestions() {
        assert_eq!(closest_key("device-tree"), Some("devicetree"));
        assert_eq!(closest_key("host_netwrok"), Some("host_network"));
        assert_eq!(closest_key("Privileged"), Some("privileged"));
        assert_eq!(closest_key("maintainer"), None);
    }
}
