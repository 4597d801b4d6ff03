//! The schema walk: every key of `_SCHEMA_APP_CONFIG` in the Supervisor's order (so the
//! diagnostics come out in that order), read in groups of related keys and put together into
//! an [`AddonConfig`].

use crate::source::Value;

use super::super::rules;
use super::super::{
    AddonConfig, BackupMode, Boot, Capability, IngressPort, MapEntry, PortSpec, Role, Stage,
    Startup, Ulimit, options_schema,
};
use super::Validator;

/// `name` to `url`: what the add-on is and where it runs.
struct Identity {
    name: String,
    version: String,
    slug: String,
    description: String,
    arch: Vec<String>,
    machine: Vec<String>,
    url: Option<String>,
}

/// `startup` to `stage`: when and how the Supervisor starts it.
struct Lifecycle {
    startup: Startup,
    boot: Boot,
    init: bool,
    stage: Stage,
}

/// `ports` to `homeassistant`: what it publishes (ports, web UI, ingress, panel).
struct Interface {
    ports: Vec<(PortSpec, Option<u16>)>,
    watchdog: Option<String>,
    webui: Option<String>,
    ingress: bool,
    ingress_port: IngressPort,
    ingress_entry: Option<String>,
    ingress_stream: bool,
    panel_icon: String,
    panel_title: Option<String>,
    panel_admin: bool,
    homeassistant: Option<String>,
}

/// `host_network` to `apparmor`: the host namespaces, devices, folders and capabilities it
/// asks for.
struct HostAccess {
    host_network: bool,
    host_pid: bool,
    host_ipc: bool,
    host_uts: bool,
    host_dbus: bool,
    devices: Vec<String>,
    udev: bool,
    tmpfs: bool,
    map: Vec<MapEntry>,
    environment: Vec<(String, String)>,
    privileged: Vec<Capability>,
    apparmor: bool,
}

/// `full_access` to `realtime`: the hardware and kernel switches.
struct Hardware {
    full_access: bool,
    audio: bool,
    video: bool,
    gpio: bool,
    usb: bool,
    uart: bool,
    devicetree: bool,
    kernel_modules: bool,
    realtime: bool,
}

/// `hassio_api` to `discovery`: the Supervisor and Home Assistant APIs and services it uses.
struct Apis {
    hassio_api: bool,
    hassio_role: Role,
    homeassistant_api: bool,
    stdin: bool,
    legacy: bool,
    docker_api: bool,
    auth_api: bool,
    services: Vec<String>,
    discovery: Vec<String>,
}

/// `backup_exclude` to `backup`: how it is backed up.
struct Backup {
    backup_exclude: Vec<String>,
    backup_pre: Option<String>,
    backup_post: Option<String>,
    backup: BackupMode,
}

/// `options` to `breaking_versions`: its options, image, limits and timeouts.
struct Runtime {
    option_scalars: Vec<(String, String)>,
    image: Option<String>,
    ulimits: Vec<Ulimit>,
    timeout: u32,
    journald: bool,
    breaking_versions: Vec<String>,
}

impl Validator<'_, '_> {
    pub(super) fn build(&mut self) -> AddonConfig {
        let id = self.identity();
        let life = self.lifecycle();
        let face = self.interface();
        let host = self.host_access();
        let hw = self.hardware();
        let apis = self.apis();
        let bak = self.backup();
        let run = self.runtime();
        AddonConfig {
            name: id.name,
            version: id.version,
            slug: id.slug,
            description: id.description,
            arch: id.arch,
            machine: id.machine,
            url: id.url,
            startup: life.startup,
            boot: life.boot,
            init: life.init,
            stage: life.stage,
            ports: face.ports,
            watchdog: face.watchdog,
            webui: face.webui,
            ingress: face.ingress,
            ingress_port: face.ingress_port,
            ingress_entry: face.ingress_entry,
            ingress_stream: face.ingress_stream,
            panel_icon: face.panel_icon,
            panel_title: face.panel_title,
            panel_admin: face.panel_admin,
            homeassistant: face.homeassistant,
            host_network: host.host_network,
            host_pid: host.host_pid,
            host_ipc: host.host_ipc,
            host_uts: host.host_uts,
            host_dbus: host.host_dbus,
            devices: host.devices,
            udev: host.udev,
            tmpfs: host.tmpfs,
            map: host.map,
            environment: host.environment,
            privileged: host.privileged,
            apparmor: host.apparmor,
            full_access: hw.full_access,
            audio: hw.audio,
            video: hw.video,
            gpio: hw.gpio,
            usb: hw.usb,
            uart: hw.uart,
            devicetree: hw.devicetree,
            kernel_modules: hw.kernel_modules,
            realtime: hw.realtime,
            hassio_api: apis.hassio_api,
            hassio_role: apis.hassio_role,
            homeassistant_api: apis.homeassistant_api,
            stdin: apis.stdin,
            legacy: apis.legacy,
            docker_api: apis.docker_api,
            auth_api: apis.auth_api,
            services: apis.services,
            discovery: apis.discovery,
            backup_exclude: bak.backup_exclude,
            backup_pre: bak.backup_pre,
            backup_post: bak.backup_post,
            backup: bak.backup,
            option_scalars: run.option_scalars,
            image: run.image,
            ulimits: run.ulimits,
            timeout: run.timeout,
            journald: run.journald,
            breaking_versions: run.breaking_versions,
        }
    }

    fn identity(&mut self) -> Identity {
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
        Identity {
            name,
            version,
            slug,
            description,
            arch,
            machine,
            url,
        }
    }

    fn lifecycle(&mut self) -> Lifecycle {
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
        Lifecycle {
            startup,
            boot,
            init,
            stage,
        }
    }

    fn interface(&mut self) -> Interface {
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
        Interface {
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
        }
    }

    fn host_access(&mut self) -> HostAccess {
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
        HostAccess {
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
        }
    }

    fn hardware(&mut self) -> Hardware {
        let full_access = self.boolean("full_access", false);
        let audio = self.boolean("audio", false);
        let video = self.boolean("video", false);
        let gpio = self.boolean("gpio", false);
        let usb = self.boolean("usb", false);
        let uart = self.boolean("uart", false);
        let devicetree = self.boolean("devicetree", false);
        let kernel_modules = self.boolean("kernel_modules", false);
        let realtime = self.boolean("realtime", false);
        Hardware {
            full_access,
            audio,
            video,
            gpio,
            usb,
            uart,
            devicetree,
            kernel_modules,
            realtime,
        }
    }

    fn apis(&mut self) -> Apis {
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
        Apis {
            hassio_api,
            hassio_role,
            homeassistant_api,
            stdin,
            legacy,
            docker_api,
            auth_api,
            services,
            discovery,
        }
    }

    fn backup(&mut self) -> Backup {
        let backup_exclude = self.list("backup_exclude", |n| rules::string(n).map(str::to_owned));
        let backup_pre = self.optional_str("backup_pre");
        let backup_post = self.optional_str("backup_post");
        let backup = self.one_of(
            "backup",
            BackupMode::Hot,
            &[("hot", BackupMode::Hot), ("cold", BackupMode::Cold)],
        );
        Backup {
            backup_exclude,
            backup_pre,
            backup_post,
            backup,
        }
    }

    fn runtime(&mut self) -> Runtime {
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

        Runtime {
            option_scalars,
            image,
            ulimits,
            timeout,
            journald,
            breaking_versions,
        }
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
}
