//! Plan → rules (DESIGN §5). Each rule is paired with why it is there: a config key the plan
//! granted, or the base policy. Nothing here reads the add-on's config: a right that is not in
//! the plan cannot appear in the profile.

use crate::plan::{DeviceClass, SandboxPlan};
use crate::policy::BASELINE_CAPS;

use super::ProfileError;
use super::exclusion::deny_all_except;
use super::rule::{AaPath, BadPath, Cap, Family, FilePerms, Peer, Rule, SockType};

/// Image code directories: readable, mappable and executable, never writable.
pub const CODE_DIRS: &str = "/{bin,sbin,usr,lib,lib32,lib64,libx32,opt,app,command,package}/**";
/// Writable trees with no code: never executable (`/etc`, `/run`: see `S6_ETC`, `S6_RUN_EXEC`).
const NEVER_EXEC: [&str; 5] = [
    "/tmp/{,**}",
    "/dev/shm/{,**}",
    "/root/{,**}",
    "/home/{,**}",
    "/srv/{,**}",
];
/// s6-overlay scripts that live under the writable `/etc`.
const S6_ETC: [&str; 3] = [
    S6_OVERLAY_ETC,
    "/etc/{cont-init.d,cont-finish.d,services.d,fix-attrs.d}/**",
    "/etc/s6/**",
];
const S6_OVERLAY_ETC: &str = "/etc/s6-overlay/**";
/// The one writable place under `/etc/s6-overlay`: the user bundle's entries, empty files that
/// name which services start. Add-ons switch optional services on and off there from their
/// options before s6-rc compiles the bundle (samba's `enable-check.sh` removes `nmbd` and
/// `wsdd`); creating an entry can only start a service the image already defines.
const S6_USER_BUNDLE: &str = "s6-rc.d/user/contents.d";
/// The only executable paths under the writable `/run`: what s6-overlay 3 generates at start
/// and runs (docs/workloads.md). All are `#!` scripts: `ix`, and `m` (which `ix` implies in
/// the compiled policy) denied, so no ELF file or library written there can run. The legacy
/// services are `/etc/services.d/<svc>/` copied whole, so every file of a service folder is
/// the image's own script (mosquitto's `run` starts `./discovery` beside it); deeper folders
/// (`data/`) stay not executable.
const S6_RUN_EXEC: [&str; 4] = [
    "/run/s6/basedir/**",
    "/run/service/**",
    "/run/s6-rc:s6-rc-init:*/servicedirs/*/{run,finish}",
    "/run/s6/legacy-services/*/*",
];
/// With `NEVER_EXEC`, the container's own writable filesystem (a private overlay; add-ons
/// write their configuration into /etc when they start).
const WRITABLE: [&str; 4] = ["/run/{,**}", "/var/run/{,**}", "/etc/{,**}", "/var/{,**}"];

const BASE: &str = "base";

/// What docker-default denies under `/sys`: write, link, lock, execute (`wlkx`).
const SYS_DENIED: FilePerms = FilePerms::WRITE
    .union(FilePerms::LINK)
    .union(FilePerms::LOCK)
    .union(FilePerms::EXEC);

pub struct Derived {
    pub rules: Vec<(Rule, String)>,
}

pub(super) type Out = Derived;

impl Derived {
    fn push(&mut self, rule: Rule, why: impl Into<String>) {
        self.rules.push((rule, why.into()));
    }

    pub(super) fn file(&mut self, path: AaPath, perms: FilePerms, why: impl Into<String>) {
        self.push(Rule::file(path, perms), why);
    }

    pub(super) fn deny(&mut self, path: AaPath, perms: FilePerms, why: impl Into<String>) {
        self.push(Rule::deny_file(path, perms), why);
    }
}

pub(super) fn bad(e: BadPath) -> ProfileError {
    ProfileError::BadPath(e)
}

pub fn derive(plan: &SandboxPlan) -> Result<Derived, ProfileError> {
    let mut out = Out { rules: Vec::new() };
    let caps = capabilities(plan, &mut out)?;
    let has = |name: &str| caps.iter().any(|c| c.name() == name);

    network(has("net_raw"), &mut out);
    ipc(has("sys_ptrace"), &mut out);
    for op in ["mount", "umount", "pivot_root"] {
        out.push(
            Rule::DenyMount(op),
            format!("{BASE}: no {op} (docker-default denies it too; SYS_ADMIN does not lift it)"),
        );
    }
    image_files(&mut out)?;
    proc_and_sys(plan, &mut out)?;
    super::mounts::mounts(plan, &mut out)?;
    devices(plan, has("sys_rawio"), &mut out)?;
    host_sockets(plan, &mut out);
    Ok(out)
}

fn capabilities(plan: &SandboxPlan, out: &mut Out) -> Result<Vec<Cap>, ProfileError> {
    let mut caps = Vec::new();
    for name in &plan.cap_add {
        let cap =
            Cap::from_docker(name).ok_or_else(|| ProfileError::UnknownCapability(name.clone()))?;
        let why = if BASELINE_CAPS.contains(&name.as_str()) {
            format!("{BASE}: Docker default capability kept by protection mode ({name})")
        } else {
            format!("granted: {name}")
        };
        out.push(Rule::Capability(cap), why);
        caps.push(cap);
    }
    Ok(caps)
}

fn network(net_raw: bool, out: &mut Out) {
    for family in [Family::Inet, Family::Inet6] {
        for kind in [SockType::Stream, SockType::Dgram] {
            out.push(
                Rule::Network {
                    deny: false,
                    family,
                    kind: Some(kind),
                },
                format!("{BASE}: TCP, UDP and ping sockets"),
            );
        }
    }
    for kind in [SockType::Raw, SockType::Dgram] {
        out.push(
            Rule::Network {
                deny: false,
                family: Family::Netlink,
                kind: Some(kind),
            },
            format!("{BASE}: netlink for interface and route queries"),
        );
    }
    if net_raw {
        for family in [Family::Inet, Family::Inet6, Family::Packet] {
            out.push(
                Rule::Network {
                    deny: false,
                    family,
                    kind: Some(SockType::Raw),
                },
                "granted: NET_RAW",
            );
        }
        out.push(
            Rule::Network {
                deny: false,
                family: Family::Packet,
                kind: Some(SockType::Dgram),
            },
            "granted: NET_RAW",
        );
    } else {
        // Never `deny network raw`: that would also deny netlink raw.
        for (family, kind) in [
            (Family::Inet, Some(SockType::Raw)),
            (Family::Inet6, Some(SockType::Raw)),
            (Family::Packet, None),
        ] {
            out.push(
                Rule::Network {
                    deny: true,
                    family,
                    kind,
                },
                format!("{BASE}: no raw or packet sockets without NET_RAW"),
            );
        }
    }
}

fn ipc(sys_ptrace: bool, out: &mut Out) {
    out.push(
        Rule::Unix {
            perms: "create, bind, listen, getattr, setattr, getopt, setopt, shutdown",
            kind: None,
            peer: None,
        },
        format!("{BASE}: unix sockets of its own (s6-overlay supervises through them)"),
    );
    out.push(
        Rule::Unix {
            perms: "accept, connect, send, receive",
            kind: None,
            peer: Some(Peer::ItSelf),
        },
        format!("{BASE}: unix sockets only between the add-on's own processes"),
    );
    out.push(
        Rule::Unix {
            perms: "send, receive",
            kind: None,
            peer: Some(Peer::Label("unconfined")),
        },
        format!("{BASE}: the container engine's stdio and exec sockets"),
    );
    out.push(
        Rule::Signal {
            perms: "send, receive",
            peer: Peer::ItSelf,
        },
        format!("{BASE}: signals between the add-on's own processes"),
    );
    out.push(
        Rule::Signal {
            perms: "receive",
            peer: Peer::Label("{unconfined,runc,crun}"),
        },
        format!("{BASE}: docker stop and kill (the engine, runc or crun sends them)"),
    );
    out.push(
        Rule::Ptrace {
            perms: "read, readby",
            peer: Peer::ItSelf,
        },
        format!("{BASE}: /proc of its own processes (ps, top)"),
    );
    out.push(
        Rule::Ptrace {
            perms: "readby",
            peer: Peer::Label("unconfined"),
        },
        format!("{BASE}: the host may inspect the add-on's processes"),
    );
    if sys_ptrace {
        out.push(
            Rule::Ptrace {
                perms: "trace, tracedby",
                peer: Peer::ItSelf,
            },
            "granted: SYS_PTRACE (its own processes only)",
        );
    }
}

fn image_files(out: &mut Out) -> Result<(), ProfileError> {
    out.file(
        AaPath::pattern("/{,**}"),
        FilePerms::R,
        format!("{BASE}: the image is readable"),
    );
    out.file(
        AaPath::pattern(CODE_DIRS),
        FilePerms::RMIX,
        format!("{BASE}: image code runs from its code directories only"),
    );
    out.file(
        AaPath::pattern("/init"),
        FilePerms::RMIX,
        format!("{BASE}: s6-overlay init"),
    );
    for dir in S6_ETC {
        out.file(
            AaPath::pattern(dir),
            FilePerms::RIX,
            format!("{BASE}: s6-overlay service scripts"),
        );
        if dir == S6_OVERLAY_ETC {
            s6_overlay_code(out)?;
        } else {
            out.deny(
                AaPath::pattern(dir),
                FilePerms::WL,
                format!("{BASE}: s6-overlay scripts are code: never writable"),
            );
        }
    }
    for dir in S6_RUN_EXEC {
        out.file(
            AaPath::pattern(dir),
            FilePerms::RIX,
            format!("{BASE}: scripts s6-overlay generates under /run and runs"),
        );
        out.deny(
            AaPath::pattern(dir),
            FilePerms::MMAP_EXEC,
            format!("{BASE}: s6-overlay's scripts under /run are never mapped executable"),
        );
    }
    for dir in WRITABLE.iter().chain(&NEVER_EXEC) {
        out.file(
            AaPath::pattern(dir),
            FilePerms::RWLK,
            format!("{BASE}: the container's private writable filesystem (not executable)"),
        );
    }
    for dir in NEVER_EXEC {
        out.deny(
            AaPath::pattern(dir),
            FilePerms::MX,
            format!("{BASE}: writable, so never executable"),
        );
    }
    standard_files(out);
    Ok(())
}

/// The standard devices, terminals, syslog and the process's own names and streams.
fn standard_files(out: &mut Out) {
    for (path, why) in [
        (
            "/dev/{null,zero,full,random,urandom,tty,ptmx,console}",
            "standard devices",
        ),
        ("/dev/pts/*", "terminals"),
        ("/dev/log", "syslog"),
        (
            "@{PROC}/@{pid}/{comm,oom_score_adj,task/@{tid}/comm}",
            "naming its own threads",
        ),
        // `/dev/stderr` is `/proc/self/fd/2`; opened with O_CREAT (a log file named
        // /dev/stderr, a shell's `> /dev/stderr`) on the container's pipes, which have no
        // path, the kernel checks the create on this name. A file with a path is checked
        // on its own path.
        (
            "@{PROC}/@{pid}/fd/[0-2]",
            "its standard streams by name (/dev/stdout, /dev/stderr)",
        ),
    ] {
        out.file(
            AaPath::pattern(path),
            FilePerms::RW,
            format!("{BASE}: {why}"),
        );
    }
}

/// Deny `perms` on everything under `base` except the `exempt` subtrees (the chain of
/// [`deny_all_except`], each literal part validated).
fn deny_all_but(
    base: &str,
    exempt: &[&str],
    perms: FilePerms,
    why: &str,
    out: &mut Out,
) -> Result<(), ProfileError> {
    for (literal, pattern) in deny_all_except(base, exempt) {
        let path = AaPath::literal(base, literal.trim_end_matches('/')).map_err(bad)?;
        // The literal was trimmed of a trailing '/' for validation; put it back.
        let path = if literal.ends_with('/') {
            path.with_pattern(format!("/{pattern}"))
        } else {
            path.with_pattern(pattern)
        };
        out.deny(path, perms, why.to_owned());
    }
    Ok(())
}

/// `/etc/s6-overlay` is code, never writable, except the user bundle's entries.
fn s6_overlay_code(out: &mut Out) -> Result<(), ProfileError> {
    deny_all_but(
        "/etc/s6-overlay/",
        &[S6_USER_BUNDLE],
        FilePerms::WL,
        &format!(
            "{BASE}: s6-overlay scripts are code: never writable (the user bundle's entries excepted)"
        ),
        out,
    )?;
    // Writable, so never executable (W^X): the entries are names, not scripts.
    out.deny(
        AaPath::pattern("/etc/s6-overlay/s6-rc.d/user/contents.d/**"),
        FilePerms::MX,
        format!("{BASE}: the user bundle's entries are writable, so never executable"),
    );
    Ok(())
}

/// docker-default's `/proc` and `/sys` denies, with `/sys` exemptions for writable mounts the
/// plan puts there (gpio).
fn proc_and_sys(plan: &SandboxPlan, out: &mut Out) -> Result<(), ProfileError> {
    let why = format!("{BASE}: docker-default's /proc protections");
    for (path, perms) in [
        ("@{PROC}/*", FilePerms::WRITE),
        (
            "@{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/**",
            FilePerms::WRITE,
        ),
        ("@{PROC}/sys/[^k]**", FilePerms::WRITE),
        ("@{PROC}/sys/kernel/{?,??,[^s][^h][^m]**}", FilePerms::WRITE),
        ("@{PROC}/sysrq-trigger", FilePerms::ALL),
        ("@{PROC}/kcore", FilePerms::ALL),
    ] {
        out.deny(AaPath::pattern(path), perms, why.clone());
    }
    let exempt: Vec<&str> = plan
        .mounts
        .iter()
        .filter(|m| !m.read_only && m.target.starts_with("/sys/"))
        .map(|m| &m.target["/sys/".len()..])
        .collect();
    let sys_why = format!("{BASE}: no writes to /sys (docker-default)");
    if exempt.is_empty() {
        out.deny(AaPath::pattern("/sys/**"), SYS_DENIED, sys_why);
    } else {
        deny_all_but(
            "/sys/",
            &exempt,
            SYS_DENIED,
            &format!("{sys_why}, except the writable gpio paths"),
            out,
        )?;
    }
    for path in [
        "/sys/firmware/**",
        "/sys/kernel/security/**",
        "/sys/devices/virtual/powercap/**",
    ] {
        out.deny(
            AaPath::pattern(path),
            FilePerms::ALL,
            format!("{BASE}: docker-default's /sys protections"),
        );
    }
    Ok(())
}

fn devices(plan: &SandboxPlan, sys_rawio: bool, out: &mut Out) -> Result<(), ProfileError> {
    device_nodes(plan, out)?;
    device_classes(plan, out);
    raw_memory(plan, sys_rawio, out);
    Ok(())
}

/// The nodes the plan hands in, each with anything under it.
fn device_nodes(plan: &SandboxPlan, out: &mut Out) -> Result<(), ProfileError> {
    for dev in &plan.devices {
        // `{,/**}`: a device path may name a directory of nodes (`/dev/dvb`); under a single
        // node the pattern matches nothing more.
        let path = AaPath::literal("device", &dev.path_in_container)
            .map_err(bad)?
            .with_pattern("{,/**}");
        out.file(
            path,
            FilePerms::RWK,
            format!("devices: {}", dev.path_in_container),
        );
        if dev.path_in_container.starts_with("/dev/serial/") {
            out.file(
                AaPath::pattern("/dev/serial/{,**}"),
                FilePerms::R,
                format!("devices: {} (serial links)", dev.path_in_container),
            );
        }
    }
    Ok(())
}

/// The node patterns of each device class the plan grants.
fn device_classes(plan: &SandboxPlan, out: &mut Out) {
    let classes = &plan.device_classes;
    let has = |c: DeviceClass| classes.contains(&c);
    let table: [(DeviceClass, &[(&str, FilePerms)]); 4] = [
        (
            DeviceClass::Uart,
            &[
                ("/dev/tty{S,USB,ACM,AMA,SAC}[0-9]*", FilePerms::RWK),
                ("/dev/serial/{,**}", FilePerms::R),
            ],
        ),
        (
            DeviceClass::Usb,
            &[
                ("/dev/bus/usb/{,**}", FilePerms::RW),
                ("/dev/hidraw[0-9]*", FilePerms::RW),
            ],
        ),
        (
            DeviceClass::Gpio,
            &[
                ("/dev/gpiochip[0-9]*", FilePerms::RW),
                ("/dev/gpiomem", FilePerms::RW),
            ],
        ),
        (
            DeviceClass::Video,
            &[
                ("/dev/{video,fb,media,cec}[0-9]*", FilePerms::RW),
                ("/dev/{vchiq,vcsm-cma,rpivid-*}", FilePerms::RW),
                ("/dev/dri/{,**}", FilePerms::RW),
            ],
        ),
    ];
    for (class, rules) in table {
        if has(class) {
            for (path, perms) in rules {
                out.file(AaPath::pattern(path), *perms, class.name());
            }
        }
    }
    if has(DeviceClass::FullAccess) {
        out.file(
            AaPath::pattern("/dev/**"),
            FilePerms::RWK,
            "full_access: every device node",
        );
    }
}

/// Raw memory and I/O ports stay denied unless the plan hands the node in (a `devices`
/// entry) or gpio needs /dev/mem with SYS_RAWIO.
fn raw_memory(plan: &SandboxPlan, sys_rawio: bool, out: &mut Out) {
    let gpio_mem = sys_rawio && plan.device_classes.contains(&DeviceClass::Gpio);
    if gpio_mem {
        out.file(
            AaPath::pattern("/dev/mem"),
            FilePerms::RW,
            "gpio with SYS_RAWIO: /dev/mem",
        );
    }
    for (node, pattern) in [
        ("/dev/mem", "/dev/mem"),
        ("/dev/kmem", "/dev/kmem"),
        ("/dev/port", "/dev/port"),
    ] {
        let granted = plan.devices.iter().any(|d| d.path_in_container == node)
            || (node == "/dev/mem" && gpio_mem);
        if !granted {
            out.deny(
                AaPath::pattern(pattern),
                FilePerms::ALL,
                format!("{BASE}: no raw memory or I/O ports"),
            );
        }
    }
}

/// Host sockets stay out unless the plan mounts them.
fn host_sockets(plan: &SandboxPlan, out: &mut Out) {
    let mounted = |target: &str| plan.mounts.iter().any(|m| m.target == target);
    let connect = |peer: &'static str| Rule::Unix {
        perms: "connect, send, receive",
        kind: Some(SockType::Stream),
        peer: Some(Peer::Label(peer)),
    };
    for (target, pattern, denied, granted) in [
        (
            "/run/docker.sock",
            "/{,var/}run/docker.sock",
            "no Docker socket (docker_api not granted)",
            "docker_api: true (the Docker engine)",
        ),
        (
            "/run/dbus",
            "/{,var/}run/dbus/{,**}",
            "no host D-Bus (host_dbus not granted)",
            "host_dbus: true (the host's D-Bus daemon)",
        ),
    ] {
        if mounted(target) {
            out.push(connect("unconfined"), granted);
        } else {
            out.deny(
                AaPath::pattern(pattern),
                FilePerms::RW,
                format!("{BASE}: {denied}"),
            );
        }
    }
    if mounted("/run/audio") {
        out.push(
            connect("{unconfined,hassio-audio{,//**}}"),
            "audio: true (the audio server's socket)",
        );
    }
}
