//! Our generated profile against the add-on author's `apparmor.txt`, in human terms: which
//! paths each lets the add-on write, execute or read, which capabilities, socket families,
//! mounts, signals and traces, and which attacker probes each allows. Every answer comes
//! from the parser oracle of [`super::probe`].

use std::time::Duration;

use serde::Serialize;

use super::parser::Parser;
use super::probe::{Probe, ProbeError, check_many};
use crate::plan::SandboxPlan;
use crate::policy::BASELINE_CAPS;
use crate::profile::rule::{CAPABILITIES, FilePerms};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Write,
    Execute,
    Read,
    Capability,
    Network,
    Other,
}

impl Category {
    pub fn title(self) -> &'static str {
        match self {
            Category::Write => "writable",
            Category::Execute => "executable",
            Category::Read => "readable",
            Category::Capability => "capabilities",
            Category::Network => "socket families",
            Category::Other => "mount, ptrace, signal, unix",
        }
    }
}

/// A probe of the catalogue and what it means for this add-on.
#[derive(Clone, Debug)]
pub struct CatalogueEntry {
    pub category: Category,
    pub probe: Probe,
    /// An attack: allowing it is a hole unless the plan grants it.
    pub attack: bool,
    /// The plan grants this access (so allowing it is justified).
    pub granted: bool,
}

/// The probes asked of both profiles of an add-on.
pub fn catalogue(plan: &SandboxPlan) -> Vec<CatalogueEntry> {
    let data = plan.data_target().to_owned();
    let mut out = write_probes(plan, &data);
    out.extend(exec_probes(&data));
    out.extend(read_probes(plan));
    out.extend(capability_probes(plan));
    out.extend(network_probes(plan));
    out.extend(other_probes(plan));
    out
}

/// One probe family's entries, in the order they are added.
#[derive(Default)]
struct Entries(Vec<CatalogueEntry>);

impl Entries {
    fn add(&mut self, category: Category, probe: Probe, attack: bool, granted: bool) {
        self.0.push(CatalogueEntry {
            category,
            probe,
            attack,
            granted,
        })
    }
}

/// Writes the add-on needs or that reach the host.
fn write_probes(plan: &SandboxPlan, data: &str) -> Vec<CatalogueEntry> {
    let rw = |t: &str| plan.mounts.iter().any(|m| m.target == t && !m.read_only);
    let mounted = |t: &str| plan.mounts.iter().any(|m| m.target == t);
    let mut out = Entries::default();
    for (path, attack, granted) in [
        (format!("{data}/x"), false, true),
        ("/tmp/x".into(), false, true),
        ("/etc/x".into(), false, true),
        ("/var/lib/x".into(), false, true),
        ("/run/x".into(), false, true),
        ("/share/x".into(), true, rw("/share")),
        ("/media/x".into(), true, rw("/media")),
        ("/ssl/privkey.pem".into(), true, rw("/ssl")),
        ("/backup/x.tar".into(), true, rw("/backup")),
        (
            "/homeassistant/configuration.yaml".into(),
            true,
            rw("/homeassistant"),
        ),
        ("/config/x".into(), true, rw("/config")),
        ("/addon_configs/x".into(), true, rw("/addon_configs")),
        ("/addons/x".into(), true, rw("/addons")),
        ("/usr/bin/x".into(), true, false),
        ("/bin/x".into(), true, false),
        ("/lib/x".into(), true, false),
        ("/init".into(), true, false),
        ("/etc/cont-init.d/x".into(), true, false),
        ("/etc/services.d/x/run".into(), true, false),
        ("/proc/sys/kernel/core_pattern".into(), true, false),
        ("/proc/sysrq-trigger".into(), true, false),
        ("/sys/kernel/security/apparmor/.load".into(), true, false),
        ("/sys/kernel/uevent_helper".into(), true, false),
        ("/sys/firmware/efi/efivars/x".into(), true, false),
        (
            "/dev/sda".into(),
            true,
            plan.device_classes
                .iter()
                .any(|c| c.name() == "full_access")
                || plan
                    .devices
                    .iter()
                    .any(|d| d.path_in_container == "/dev/sda"),
        ),
        (
            "/dev/mem".into(),
            true,
            plan.devices
                .iter()
                .any(|d| d.path_in_container == "/dev/mem"),
        ),
        ("/run/docker.sock".into(), true, mounted("/run/docker.sock")),
        (
            "/run/dbus/system_bus_socket".into(),
            true,
            mounted("/run/dbus"),
        ),
    ] {
        out.add(Category::Write, Probe::write(&path), attack, granted);
    }
    out.0
}

/// Executables the add-on needs, and executing or mapping what it can write.
fn exec_probes(data: &str) -> Vec<CatalogueEntry> {
    let mut out = Entries::default();
    for (path, attack, granted) in [
        ("/init", false, true),
        ("/bin/sh", false, true),
        ("/usr/bin/x", false, true),
        ("/command/x", false, true),
        ("/package/admin/x", false, true),
        ("/etc/cont-init.d/x", false, true),
        ("/run/s6/basedir/x", false, true),
        (data, true, false),
        ("/tmp/x", true, false),
        ("/dev/shm/x", true, false),
        ("/etc/x", true, false),
        ("/root/x", true, false),
        ("/share/x", true, false),
        ("/config/x", true, false),
    ] {
        let path = if path == data {
            format!("{data}/x")
        } else {
            path.to_owned()
        };
        out.add(Category::Execute, Probe::exec(&path), attack, granted);
    }
    out.add(
        Category::Execute,
        Probe::file(&format!("{data}/lib.so"), FilePerms::MMAP_EXEC),
        true,
        false,
    );
    out.0
}

/// Reads of kernel memory and firmware, and of an ordinary file.
fn read_probes(plan: &SandboxPlan) -> Vec<CatalogueEntry> {
    let mut out = Entries::default();
    let mem = plan
        .devices
        .iter()
        .any(|d| d.path_in_container == "/dev/mem");
    for (path, attack, granted) in [
        ("/proc/kcore", true, false),
        ("/dev/mem", true, mem),
        ("/sys/firmware/efi/efivars/x", true, false),
        ("/etc/os-release", false, true),
    ] {
        out.add(Category::Read, Probe::read(path), attack, granted);
    }
    out.0
}

/// Docker's defaults, the capabilities that reach beyond the container, and the plan's.
fn capability_probes(plan: &SandboxPlan) -> Vec<CatalogueEntry> {
    let cap = |c: &str| plan.cap_add.iter().any(|x| x.eq_ignore_ascii_case(c));
    let mut out = Entries::default();
    for c in CAPABILITIES {
        let granted = cap(c);
        let attack = matches!(
            c,
            "sys_admin"
                | "sys_module"
                | "sys_rawio"
                | "sys_ptrace"
                | "sys_boot"
                | "mac_admin"
                | "mac_override"
                | "bpf"
                | "sys_time"
                | "net_admin"
                | "dac_read_search"
        );
        let default = BASELINE_CAPS.iter().any(|b| b.eq_ignore_ascii_case(c));
        if attack || granted || default {
            out.add(Category::Capability, Probe::Capability(c), attack, granted);
        }
    }
    out.0
}

/// Socket families: raw sockets (netlink aside) and packet sockets are granted with NET_RAW,
/// alg never, the others always.
fn network_probes(plan: &SandboxPlan) -> Vec<CatalogueEntry> {
    let cap = |c: &str| plan.cap_add.iter().any(|x| x.eq_ignore_ascii_case(c));
    let mut out = Entries::default();
    for (family, kind) in [
        ("inet", "stream"),
        ("inet", "dgram"),
        ("inet6", "stream"),
        ("inet6", "dgram"),
        ("netlink", "raw"),
        ("inet", "raw"),
        ("inet6", "raw"),
        ("packet", "raw"),
        ("packet", "dgram"),
        ("bluetooth", "raw"),
        ("alg", "seqpacket"),
    ] {
        let raw = kind == "raw" && family != "netlink" || family == "packet";
        let granted = if raw {
            cap("NET_RAW")
        } else {
            family != "bluetooth" && family != "alg"
        };
        out.add(
            Category::Network,
            Probe::Network { family, kind },
            raw || family == "alg",
            granted,
        );
    }
    out.0
}

/// Mounting, tracing and signalling host processes, and host daemons' unix sockets.
fn other_probes(plan: &SandboxPlan) -> Vec<CatalogueEntry> {
    let mounted = |t: &str| plan.mounts.iter().any(|m| m.target == t);
    let mut out = Entries::default();
    out.add(Category::Other, Probe::Mount("/mnt"), true, false);
    out.add(Category::Other, Probe::PtraceHost, true, false);
    out.add(Category::Other, Probe::SignalHost, true, false);
    out.add(
        Category::Other,
        Probe::UnixConnectHost,
        true,
        mounted("/run/docker.sock") || mounted("/run/dbus") || mounted("/run/audio"),
    );
    out.0
}

#[derive(Clone, Debug, Serialize)]
pub struct ProbeOutcome {
    pub category: Category,
    pub probe: String,
    pub attack: bool,
    pub granted: bool,
    pub ours: bool,
    pub theirs: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub slug: String,
    pub outcomes: Vec<ProbeOutcome>,
    pub ours_compile_ms: f64,
    pub theirs_compile_ms: f64,
}

impl Comparison {
    /// Attack probes allowed by (ours, theirs).
    pub fn attacks_allowed(&self) -> (usize, usize) {
        let attacks = self.outcomes.iter().filter(|o| o.attack);
        attacks.fold((0, 0), |(a, b), o| {
            (a + o.ours as usize, b + o.theirs as usize)
        })
    }

    /// Attack probes our profile allows that the plan does not grant (target: none).
    pub fn unjustified_ours(&self) -> Vec<&ProbeOutcome> {
        self.outcomes
            .iter()
            .filter(|o| o.attack && o.ours && !o.granted)
            .collect()
    }

    pub fn attack_count(&self) -> usize {
        self.outcomes.iter().filter(|o| o.attack).count()
    }
}

/// Compare two profile texts for one plan. The texts are compiled as given (the author's
/// profile keeps its own name; names do not change what a profile allows).
pub fn compare(
    parser: &Parser,
    plan: &SandboxPlan,
    ours: &str,
    theirs: &str,
) -> Result<Comparison, ProbeError> {
    compare_many(parser, &[(plan, ours.to_owned(), theirs.to_owned())], false)
        .map(|mut v| v.pop().expect("one comparison"))
}

/// Many comparisons in two parser runs. `attacks_only` asks only the attacker probes (about
/// half the catalogue, for surveys of many add-ons).
pub fn compare_many(
    parser: &Parser,
    items: &[(&SandboxPlan, String, String)],
    attacks_only: bool,
) -> Result<Vec<Comparison>, ProbeError> {
    let catalogues: Vec<Vec<CatalogueEntry>> = items
        .iter()
        .map(|(p, _, _)| {
            let mut c = catalogue(p);
            c.retain(|e| e.attack || !attacks_only);
            c
        })
        .collect();
    let mut work = Vec::new();
    for ((_, ours, theirs), cat) in items.iter().zip(&catalogues) {
        let probes: Vec<Probe> = cat.iter().map(|e| e.probe.clone()).collect();
        work.push((ours.clone(), probes.clone()));
        work.push((theirs.clone(), probes));
    }
    let verdicts = check_many(parser, &work)?;
    let mut out = Vec::new();
    for (k, ((plan, ours, theirs), cat)) in items.iter().zip(&catalogues).enumerate() {
        let (o, t) = (&verdicts[2 * k], &verdicts[2 * k + 1]);
        let outcomes = cat
            .iter()
            .enumerate()
            .map(|(j, e)| ProbeOutcome {
                category: e.category,
                probe: e.probe.to_string(),
                attack: e.attack,
                granted: e.granted,
                ours: o[j],
                theirs: t[j],
            })
            .collect();
        out.push(Comparison {
            slug: plan.full_slug.clone(),
            outcomes,
            ours_compile_ms: compile_ms(parser, ours),
            theirs_compile_ms: compile_ms(parser, theirs),
        });
    }
    Ok(out)
}

fn compile_ms(parser: &Parser, text: &str) -> f64 {
    parser
        .check(text)
        .map(|r| r.compile_time)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
        * 1000.0
}

/// The human report.
pub fn render(c: &Comparison) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: our generated profile against the add-on's apparmor.txt",
        c.slug
    );
    for (title, pick) in [
        ("theirs allows, ours does not", true),
        ("ours allows, theirs does not", false),
    ] {
        let _ = writeln!(s, "  {title}:");
        let mut any = false;
        let mut cats: Vec<Category> = c.outcomes.iter().map(|o| o.category).collect();
        cats.dedup();
        for cat in cats {
            let items: Vec<&str> = c
                .outcomes
                .iter()
                .filter(|o| {
                    o.category == cat && (o.theirs && !o.ours) == pick && o.theirs != o.ours
                })
                .map(|o| o.probe.as_str())
                .collect();
            if !items.is_empty() {
                any = true;
                let _ = writeln!(s, "    {}: {}", cat.title(), items.join(", "));
            }
        }
        if !any {
            let _ = writeln!(s, "    nothing");
        }
    }
    let (ours, theirs) = c.attacks_allowed();
    let n = c.attack_count();
    let _ = writeln!(
        s,
        "  attacker probes allowed: theirs {theirs}/{n}, ours {ours}/{n}"
    );
    for o in c
        .outcomes
        .iter()
        .filter(|o| o.attack && (o.ours || o.theirs))
    {
        let word = |b: bool| if b { "allowed" } else { "denied" };
        let note = if o.ours && o.granted {
            "  (granted by the plan)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "    {:<44} theirs {:<8} ours {}{note}",
            o.probe,
            word(o.theirs),
            word(o.ours)
        );
    }
    let _ = writeln!(
        s,
        "  compile time: theirs {:.0} ms, ours {:.0} ms",
        c.theirs_compile_ms, c.ours_compile_ms
    );
    s
}
