//! The generated profiles of every corpus add-on and every example, checked by the real
//! `apparmor_parser` (DESIGN §5): they compile under the pinned ABI 3.0 with no warnings,
//! name exactly one profile, hold no catch-all rules, and — decided by the parser oracle of
//! `apparmor::probe`, not by a model of AppArmor — deny the attacks and allow the needs.

mod common;

use std::collections::BTreeMap;

use addon_sandbox::addon::Addon;
use addon_sandbox::apparmor::probe::{Expectation, Probe, verify_many};
use addon_sandbox::plan::{MountKind, SandboxPlan};
use addon_sandbox::policy::{self, PlanOptions};
use addon_sandbox::profile::{self, rule::FilePerms, rule::Rule};

fn plan_of(a: &Addon, options: &PlanOptions) -> SandboxPlan {
    let config = a.config.as_ref().expect("valid add-on");
    policy::decide(config, a.apparmor_profile.is_some(), options).expect("plan")
}

fn valid_corpus() -> Option<Vec<Addon>> {
    let corpus = common::corpus_dir()?;
    let addons: Vec<Addon> = common::corpus_addons(&corpus)
        .into_iter()
        .filter(|a| a.valid())
        .collect();
    assert!(
        addons.len() > 200,
        "only {} valid corpus add-ons",
        addons.len()
    );
    Some(addons)
}

/// Static checks on the rendered text and on the rules.
fn check_static(plan: &SandboxPlan, text: &str, rules: &[Rule]) {
    let slug = &plan.full_slug;
    // The same scan `lint` runs on authors' profiles (apparmor::catch_all).
    let catch_alls = addon_sandbox::apparmor::catch_all::find(text);
    assert!(
        catch_alls.is_empty(),
        "{slug}: catch-all rules: {catch_alls:?}"
    );
    // Capabilities equal the container's CapAdd.
    let caps: Vec<String> = rules
        .iter()
        .filter_map(|r| match r {
            Rule::Capability(c) => Some(c.name().to_ascii_uppercase()),
            _ => None,
        })
        .collect();
    let mut want = plan.cap_add.clone();
    want.sort();
    let mut got = caps.clone();
    got.sort();
    assert_eq!(got, want, "{slug}: capabilities differ from CapAdd");
    // No allow rule both writes and executes, but the s6 run directories.
    for r in rules {
        if let Rule::File {
            deny: false,
            path,
            perms,
            ..
        } = r
        {
            let wx = perms.contains(FilePerms::WRITE)
                && (perms.intersects(FilePerms::EXEC.union(FilePerms::MMAP_EXEC)));
            assert!(!wx, "{slug}: writable and executable: {}", path.display());
        }
    }
    // Read-only maps are read-only.
    for m in plan.mounts.iter().filter(|m| m.read_only) {
        if matches!(m.kind, MountKind::Directory | MountKind::File) {
            let quoted = format!("deny \"{}", m.target);
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&quoted) && l.contains(" wl,")),
                "{slug}: read-only {} has no deny wl",
                m.target
            );
        }
    }
}

/// What each add-on must be denied, and what it needs (issue "profile", DESIGN §5). `full`
/// adds the wider set (code never writable, s6 scripts, libraries, capabilities, sockets);
/// without it, the set the issue names for every corpus add-on.
fn probes(plan: &SandboxPlan, full: bool) -> (Vec<Probe>, Vec<Probe>) {
    let mounted = |t: &str| plan.mounts.iter().find(|m| m.target == t);
    let data = plan.data_target().to_owned();
    assert!(
        mounted(&data).is_some(),
        "{}: no data mount",
        plan.full_slug
    );
    let has_cap = |c: &str| plan.cap_add.iter().any(|x| x == c);
    let cap = |c: &str| {
        addon_sandbox::profile::rule::Cap::from_docker(c)
            .unwrap()
            .name()
    };
    let mut attacks = vec![
        Probe::write("/proc/sys/kernel/core_pattern"),
        Probe::write("/proc/sysrq-trigger"),
        Probe::read("/proc/kcore"),
        Probe::write("/sys/kernel/security/apparmor/.load"),
        Probe::exec(&format!("{data}/x")),
        Probe::exec("/tmp/x"),
    ];
    if mounted("/homeassistant").is_none_or(|m| m.read_only) {
        attacks.push(Probe::write("/homeassistant/configuration.yaml"));
    }
    if mounted("/run/docker.sock").is_none() {
        attacks.push(Probe::write("/run/docker.sock"));
    }
    let mut needs = vec![
        Probe::write(&format!("{data}/x")),
        Probe::read(&format!("{data}/x")),
        Probe::write("/tmp/x"),
        Probe::exec("/init"),
    ];
    if full {
        attacks.extend([
            Probe::write("/sys/kernel/uevent_helper"),
            Probe::file(&format!("{data}/x.so"), FilePerms::MMAP_EXEC),
            Probe::exec("/etc/x"),
            Probe::exec("/dev/shm/x"),
            Probe::write("/usr/bin/x"),
            Probe::write("/bin/sh"),
            Probe::write("/init"),
            Probe::write("/etc/cont-init.d/x"),
            Probe::Mount("/mnt"),
            Probe::SignalHost,
            Probe::PtraceHost,
            Probe::write("/var/run/docker.sock"),
        ]);
        if mounted("/run/dbus").is_none() {
            attacks.push(Probe::write("/run/dbus/system_bus_socket"));
        }
        if !has_cap("NET_RAW") {
            attacks.push(Probe::Network {
                family: "inet",
                kind: "raw",
            });
            attacks.push(Probe::Network {
                family: "packet",
                kind: "raw",
            });
        }
        for c in ["SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "NET_ADMIN"] {
            if !has_cap(c) {
                attacks.push(Probe::Capability(cap(c)));
            }
        }
        let dev_granted = |d: &str| plan.devices.iter().any(|x| x.path_in_container == d);
        if plan.device_classes.is_empty() && !dev_granted("/dev/sda") {
            attacks.push(Probe::write("/dev/sda"));
            attacks.push(Probe::read("/dev/mem"));
        }
        needs.extend([
            Probe::write("/etc/x.conf"),
            Probe::write("/var/lib/x"),
            Probe::write("/dev/null"),
            Probe::read("/etc/os-release"),
            Probe::exec("/bin/sh"),
            Probe::exec("/usr/bin/x"),
            Probe::file("/usr/lib/x.so", FilePerms::MMAP_EXEC),
            Probe::exec("/command/s6-svscan"),
            Probe::exec("/package/admin/s6-overlay/libexec/stage0"),
            Probe::exec("/etc/cont-init.d/10-setup.sh"),
            Probe::exec("/etc/s6-overlay/s6-rc.d/svc/run"),
            Probe::exec("/run/s6/basedir/bin/init"),
            Probe::Network {
                family: "inet",
                kind: "stream",
            },
            Probe::Network {
                family: "inet6",
                kind: "dgram",
            },
        ]);
        for c in &plan.cap_add {
            needs.push(Probe::Capability(cap(c)));
        }
    }
    for m in &plan.mounts {
        match (m.kind, m.read_only) {
            (MountKind::Directory, true) => {
                attacks.push(Probe::write(&format!("{}/x", m.target)));
                if full {
                    needs.push(Probe::read(&format!("{}/x", m.target)));
                }
            }
            (MountKind::Directory, false) if m.target != data => {
                needs.push(Probe::write(&format!("{}/x", m.target)));
                if full {
                    needs.push(Probe::read(&format!("{}/x", m.target)));
                    attacks.push(Probe::exec(&format!("{}/x", m.target)));
                }
            }
            (MountKind::File, true) => {
                attacks.push(Probe::write(&m.target));
                if full {
                    needs.push(Probe::read(&m.target));
                }
            }
            (MountKind::Socket, _) => needs.push(Probe::write(&m.target)),
            _ => {}
        }
    }
    for d in &plan.devices {
        needs.push(Probe::file(&d.path_in_container, FilePerms::RW));
    }
    (attacks, needs)
}

struct Case {
    label: String,
    text: String,
    attacks: Vec<Probe>,
    needs: Vec<Probe>,
}

/// Check all cases with the parser; identical profiles (up to the name) with identical probes
/// are checked once. Returns the failures and the number of (profile, probe) pairs decided.
fn run_probes(parser: &addon_sandbox::apparmor::Parser, cases: &[Case]) -> (Vec<String>, usize) {
    let mut unique: BTreeMap<(String, Vec<Probe>, usize), Vec<usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        let mut all = c.attacks.clone();
        all.extend(c.needs.iter().cloned());
        let normal = c.text.replace(&c.label, "ADDON");
        unique
            .entry((normal, all, c.attacks.len()))
            .or_default()
            .push(i);
    }
    let items: Vec<Expectation> = unique
        .keys()
        .map(|(text, probes, n_attacks)| Expectation {
            text: text.clone(),
            probes: probes.clone(),
            expected: (0..probes.len()).map(|j| j >= *n_attacks).collect(),
        })
        .collect();
    let wrong = verify_many(parser, &items).expect("parser oracle");
    let mut failures = Vec::new();
    let mut decided = 0;
    for (((_, probes, n_attacks), members), wrong) in unique.iter().zip(&wrong) {
        decided += probes.len();
        for j in wrong {
            let who: Vec<&str> = members.iter().map(|i| cases[*i].label.as_str()).collect();
            let what = if *j < *n_attacks {
                "attack allowed"
            } else {
                "need denied"
            };
            failures.push(format!(
                "{what}: {} (add-ons: {})",
                probes[*j],
                who.join(", ")
            ));
        }
    }
    eprintln!("{} distinct profiles", unique.len());
    (failures, decided)
}

fn case(plan: &SandboxPlan, full: bool) -> Case {
    let profile = profile::generate(plan).expect("profile");
    let text = profile.render(false).expect("render");
    let rules: Vec<Rule> = profile.rules().cloned().collect();
    check_static(plan, &text, &rules);
    let (attacks, needs) = probes(plan, full);
    Case {
        label: plan.full_slug.clone(),
        text,
        attacks,
        needs,
    }
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn every_corpus_profile_compiles_cleanly_with_one_name() {
    let Some(parser) = common::parser() else {
        return;
    };
    let Some(addons) = valid_corpus() else { return };
    let options = PlanOptions::default();
    let texts: Vec<(String, String)> = addons
        .iter()
        .map(|a| {
            let plan = plan_of(a, &options);
            let p = profile::generate(&plan).unwrap_or_else(|e| panic!("{}: {e}", a.dir.display()));
            (plan.full_slug.clone(), p.render(false).unwrap())
        })
        .collect();
    // Two threads: the machine has two cores and each compile is one process.
    let chunks: Vec<&[(String, String)]> = texts.chunks(texts.len().div_ceil(2)).collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let parser = parser.clone();
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for (name, text) in *chunk {
                        match parser.check(text) {
                            Ok(r) => {
                                if r.names != [name.clone()] {
                                    bad.push(format!("{name}: names {:?}", r.names));
                                }
                                if !r.warnings.is_empty() {
                                    bad.push(format!("{name}: warnings {:?}", r.warnings));
                                }
                                if r.binary.is_empty() {
                                    bad.push(format!("{name}: empty binary"));
                                }
                            }
                            Err(e) => bad.push(format!("{name}: {e}")),
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} corpus profiles compiled with no warnings", texts.len());
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn every_corpus_profile_denies_the_attacks_and_allows_the_needs() {
    let Some(parser) = common::parser() else {
        return;
    };
    let Some(addons) = valid_corpus() else { return };
    let options = PlanOptions::default();
    // The wide probe set on every 6th add-on (44 of them), the set on all.
    let cases: Vec<Case> = addons
        .iter()
        .enumerate()
        .map(|(i, a)| case(&plan_of(a, &options), i % 6 == 0))
        .collect();
    let (failures, decided) = run_probes(&parser, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{} add-ons, {decided} distinct probes decided by apparmor_parser",
        cases.len()
    );
}

#[test]
fn example_profiles_deny_the_attacks_and_allow_the_needs_in_every_mode() {
    let Some(parser) = common::parser() else {
        return;
    };
    let mut cases = Vec::new();
    for dir in common::example_dirs() {
        let a = addon_sandbox::addon::load(&dir);
        for protected in [true, false] {
            let options = PlanOptions {
                protected,
                ..PlanOptions::default()
            };
            let plan = plan_of(&a, &options);
            if profile::generate(&plan).is_ok() {
                cases.push(case(&plan, true));
            }
        }
    }
    assert!(cases.len() >= 5, "{}", cases.len());
    let (failures, decided) = run_probes(&parser, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} example profiles, {decided} probes", cases.len());
}
