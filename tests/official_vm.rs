//! The production path in a real AppArmor kernel: Docker's engine (Debian's docker.io) in the
//! AppArmor VM (`src/vm/engine.rs`, root from `scripts/build-vm-root`), the official add-ons'
//! stand-in images loaded from a `docker save` tarball, and `addon-sandbox run` WITHOUT
//! `--allow-unconfined`, strict policy. Per add-on the harness (`tests/workloads/vm-harness.sh`)
//! checks: the engine reports AppArmor, the profile is loaded, the container's PID 1 reads
//! `<profile> (enforce)`, the add-on answers the same client as in tests/official_*.rs (from
//! inside the VM, at the container's address), the attacks through `docker exec` fail, `stop`
//! and `rm` succeed and `rm` unloads the profile. The kernel's audit log must hold no AppArmor
//! denial outside the attack phase (marked in the kernel log), and none inside it that is not
//! one of the attacks: every other denial is legitimate work the profile refused.
//!
//! One boot for all add-ons. Needs the VM (`REQUIRE_APPARMOR_VM=1` builds its root and fails
//! instead of skipping) and the workload images (`REQUIRE_WORKLOADS=1`). Run under the shared
//! lock: `flock /tmp/addon-sandbox-docker.lock env REQUIRE_APPARMOR_VM=1 REQUIRE_WORKLOADS=1
//! cargo test --test official_vm -- --nocapture`. `OFFICIAL_VM_ONLY=dnsmasq,ssh` limits the
//! run to those add-ons (for working on one).

mod common;
#[path = "common/engine_vm.rs"]
mod engine_vm;
#[path = "common/official.rs"]
mod official;

use std::collections::BTreeMap;
use std::time::Duration;

use engine_vm::{Case, cases, payload, selected};

#[test]
fn official_addons_run_confined_by_docker_in_the_apparmor_vm() {
    let Some(root) = common::vm_engine_root() else {
        return;
    };
    if !common::docker_available() {
        return;
    }
    let cases = selected();
    let Some((built, docker)) = engine_vm::stand_ins_and_disk(&root, &cases) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    payload(dir.path(), &built, &|case, image| {
        format!("addon_case {} {image}\n", case.addon)
    });
    // The boot and dockerd (~20 s under TCG), and each add-on's run, ready wait (at most 480
    // s), attacks and stop: every step in the VM is bounded.
    let deadline = Duration::from_secs(300 + 900 * cases.len() as u64);
    let report = engine_vm::boot(&root, dir.path(), docker, deadline, "official-vm");
    let verdict = judge(&report.lines, &cases);
    eprintln!(
        "official_vm: {:.0} s in the VM; {}",
        report.elapsed.as_secs_f64(),
        verdict.times.join("; ")
    );
    assert!(
        verdict.failures.is_empty(),
        "the production path in the AppArmor VM failed:\n{}\n--- harness lines:\n{}",
        verdict.failures.join("\n"),
        report.lines.join("\n")
    );
}

/// What the harness's lines say: failures (naming the add-on, the step, the denial) and times.
struct Verdict {
    failures: Vec<String>,
    times: Vec<String>,
}

/// The denials an attack is expected to cause: its target's name, or the operation or
/// capability it tries. Any other denial during the attack phase is legitimate work refused.
const ATTACK_DENIALS: &[&str] = &[
    "addon-sandbox-attack",
    "/proc/sys/kernel/core_pattern",
    "/proc/sysrq-trigger",
    "operation=\"mount\"",
    "capname=\"sys_admin\"",
    "capname=\"net_raw\"",
    "sock_type=\"raw\"",
];

fn judge(lines: &[String], cases: &[Case]) -> Verdict {
    let mut failures = Vec::new();
    let mut times = Vec::new();
    engine_checks(lines, &mut failures, &mut times);
    let mut profiles = BTreeMap::new();
    for case in cases {
        let name = case.addon;
        let step = |s: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{name} {s} ")).map(str::to_owned))
        };
        let Some(run) = step("run") else {
            failures.push(format!(
                "{name}: run: no result (the harness did not get to it)"
            ));
            continue;
        };
        if !run.starts_with("ok") {
            failures.push(format!("{name}: run: {run}"));
            continue;
        }
        let profile = step("profile").unwrap_or_default();
        profiles.insert(profile.clone(), name);
        let expect = |failures: &mut Vec<String>, s: &str, want: &str| match step(s) {
            Some(got) if got.starts_with(want) => {}
            got => failures.push(format!("{name}: {s}: want {want:?}, got {got:?}")),
        };
        expect(&mut failures, "loaded", "yes");
        expect(&mut failures, "ready", "yes");
        expect(&mut failures, "attr", &format!("{profile} (enforce)"));
        expect(&mut failures, "check", "ok");
        expect(&mut failures, "stop", "rc=0");
        expect(&mut failures, "rm", "rc=0");
        expect(&mut failures, "unloaded", "yes");
        let attacks: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{name} attack ")))
            .collect();
        for label in attack_labels() {
            match attacks
                .iter()
                .find(|a| a.split_whitespace().next() == Some(label))
            {
                None => failures.push(format!("{name}: attack {label}: no result")),
                Some(a) if a.split_whitespace().nth(1) == Some("rc=0") => {
                    failures.push(format!("{name}: attack succeeded: {a}"))
                }
                Some(_) => {}
            }
        }
        if let Some(ready) = step("ready") {
            let stop = step("stop").map_or("?".into(), |s| field(&s, 1));
            let exit = step("exit").unwrap_or_default();
            times.push(format!(
                "{name} start-to-ready {} s, stop {stop} s (exit {exit})",
                field(&ready, 1)
            ));
        }
    }
    denial_checks(lines, &profiles, &mut failures);
    Verdict { failures, times }
}

/// The labels of the harness's attacks (its `attack_list`).
fn attack_labels() -> Vec<&'static str> {
    let harness = include_str!("workloads/vm-harness.sh");
    let list = harness
        .split_once("attack_list() {\n  cat <<'EOF'\n")
        .and_then(|(_, rest)| rest.split_once("\nEOF\n"))
        .expect("the harness's attack_list")
        .0;
    list.lines()
        .filter_map(|l| l.split_once('|').map(|(label, _)| label))
        .collect()
}

fn field(line: &str, n: usize) -> String {
    line.split_whitespace().nth(n).unwrap_or("?").to_owned()
}

/// The engine's own lines: AppArmor on, the engine reports it, the times of its start.
fn engine_checks(lines: &[String], failures: &mut Vec<String>, times: &mut Vec<String>) {
    let has = |p: &str| lines.iter().find(|l| l.starts_with(p));
    if has("AA Y").is_none() {
        failures.push("engine: AppArmor is not on in the VM's kernel".into());
    }
    match has("ENGINE ") {
        Some(l) if l.contains("name=apparmor") => {}
        other => failures.push(format!(
            "engine: the engine does not report AppArmor: {other:?}"
        )),
    }
    for t in ["root", "dockerd", "loaded", "harness"] {
        if let Some(l) = has(&format!("T {t} ")) {
            times.push(format!("{t} at {} s", field(l, 2)));
        }
    }
}

/// Every AppArmor denial in the kernel log, by where it falls: outside the attack phases it is
/// the add-ons' own work refused; inside one, anything not an attack's is too.
fn denial_checks(lines: &[String], profiles: &BTreeMap<String, &str>, failures: &mut Vec<String>) {
    let mut attacking: Option<String> = None;
    for line in lines.iter().filter_map(|l| l.strip_prefix("K ")) {
        if let Some(at) = line.find("MARK attacks-begin ") {
            attacking = Some(line[at + 19..].trim().to_owned());
            continue;
        }
        if line.contains("MARK attacks-end ") {
            attacking = None;
            continue;
        }
        let profile = line
            .split_once("profile=\"")
            .and_then(|(_, r)| r.split_once('"'))
            .map_or("", |(p, _)| p);
        let base = profile.split("//").next().unwrap_or(profile);
        let owner = profiles
            .get(base)
            .map_or_else(|| format!("(profile {profile})"), |a| (*a).to_owned());
        match &attacking {
            Some(_) if ATTACK_DENIALS.iter().any(|a| line.contains(a)) => {}
            Some(a) => failures.push(format!(
                "{owner}: a denial during {a}'s attacks that no attack explains: {line}"
            )),
            None => failures.push(format!("{owner}: its own work was denied: {line}")),
        }
    }
}

/// The judge itself, on made-up harness lines: a missing attack result, a successful attack, a
/// denial outside the attack phase and one inside it that no attack explains are each named.
#[test]
fn the_judge_names_the_addon_the_step_and_the_denial() {
    let labels = attack_labels();
    assert_eq!(labels.len(), 7, "{labels:?}");
    let case = cases().into_iter().find(|c| c.addon == "dnsmasq").unwrap();
    let mut lines: Vec<String> = [
        "AA Y",
        "ENGINE 20.10.24 overlay2 [\"name=apparmor\"]",
        "dnsmasq run ok 1.0",
        "dnsmasq profile local_dnsmasq",
        "dnsmasq loaded yes",
        "dnsmasq ready yes 2.0",
        "dnsmasq attr local_dnsmasq (enforce)",
        "dnsmasq check ok",
        "dnsmasq stop rc=0 1.0",
        "dnsmasq rm rc=0",
        "dnsmasq unloaded yes",
    ]
    .map(str::to_owned)
    .to_vec();
    for label in &labels[1..] {
        lines.push(format!("dnsmasq attack {label} rc=2 denied"));
    }
    let clean = judge(&lines, std::slice::from_ref(&case));
    assert_eq!(
        clean.failures,
        vec!["dnsmasq: attack core_pattern: no result"]
    );
    lines.push("dnsmasq attack core_pattern rc=0 ".into());
    let k = |l: &str| format!("K [ 1.0] {l}");
    lines.push(k(
        "audit: apparmor=\"DENIED\" operation=\"exec\" profile=\"local_dnsmasq\" name=\"/run/x\"",
    ));
    lines.push(k("MARK attacks-begin dnsmasq"));
    lines.push(k("audit: apparmor=\"DENIED\" operation=\"mknod\" profile=\"local_dnsmasq\" name=\"/usr/bin/addon-sandbox-attack\""));
    lines.push(k("audit: apparmor=\"DENIED\" operation=\"open\" profile=\"local_dnsmasq\" name=\"/etc/dnsmasq.conf\""));
    lines.push(k("MARK attacks-end dnsmasq"));
    let failures = judge(&lines, &[case]).failures;
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(failures[0].starts_with("dnsmasq: attack succeeded: core_pattern"));
    assert!(
        failures[1].starts_with("dnsmasq: its own work was denied")
            && failures[1].contains("/run/x")
    );
    assert!(
        failures[2].contains("during dnsmasq's attacks")
            && failures[2].contains("/etc/dnsmasq.conf")
    );
}
