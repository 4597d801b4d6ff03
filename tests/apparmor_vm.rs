//! Every generated profile of the examples and of a corpus sample, loaded into a real AppArmor
//! kernel (Debian's cloud kernel under qemu, see `common::vm`) and probed there: the attacks of
//! the issue are denied (EACCES or EPERM), the needs are allowed. A broken profile (ours plus
//! `file,`, and a typical author profile) is run through the same checks, which must catch it.
//! Skips with a printed reason without qemu or the kernel package, unless
//! `REQUIRE_APPARMOR_VM=1`.

mod common;

use addon_sandbox::addon::{self, Addon};
use addon_sandbox::launch::host::{AppArmorSupport, decide_apparmor_support};
use addon_sandbox::plan::SandboxPlan;
use addon_sandbox::policy::{self, PlanOptions, Right};
use addon_sandbox::profile;
use addon_sandbox::vm;

fn plan_of(a: &Addon, options: &PlanOptions) -> SandboxPlan {
    policy::decide(
        a.config.as_ref().unwrap(),
        a.apparmor_profile.is_some(),
        options,
    )
    .unwrap()
}

fn granted_options() -> PlanOptions {
    PlanOptions {
        repository: "granted".into(),
        grants: Right::all()
            .into_iter()
            .filter(|r| *r != Right::Unconfined)
            .collect(),
        ..PlanOptions::default()
    }
}

/// A denial as the kernel reports it for AppArmor (EACCES) or a missing capability (EPERM).
fn denied(outcome: &str) -> bool {
    outcome == "ERR EACCES" || outcome == "ERR EPERM"
}

#[test]
fn generated_profiles_are_enforced_by_a_real_apparmor_kernel() {
    let Some(kernel) = common::vm_kernel() else {
        return;
    };
    let mut plans: Vec<SandboxPlan> = Vec::new();
    for dir in common::example_dirs() {
        let a = addon::load(&dir);
        for options in [PlanOptions::default(), granted_options()] {
            let p = plan_of(&a, &options);
            if profile::generate(&p).is_ok() {
                plans.push(p);
            }
        }
    }
    let n_examples = plans.len();
    if let Some(corpus) = common::corpus_dir() {
        let addons: Vec<Addon> = common::corpus_addons(&corpus)
            .into_iter()
            .filter(|a| a.valid())
            .collect();
        // Every 6th: 44 of the 265 (two add-ons of one slug would share a profile name).
        for a in addons.iter().step_by(6) {
            let p = plan_of(a, &PlanOptions::default());
            if !plans.iter().any(|q| q.full_slug == p.full_slug) {
                plans.push(p);
            }
        }
    }
    let mut profiles = Vec::new();
    let mut probes = Vec::new();
    for p in &plans {
        let text = profile::generate(p).unwrap().render(false).unwrap();
        probes.extend(vm::standard_probes(p, &p.full_slug));
        profiles.push((p.full_slug.clone(), text));
    }
    // The test of the test: two broken profiles get the same probes.
    let first = &plans[0];
    let ours_plus_file = profiles[0]
        .1
        .replace(
            &format!("profile \"{}\"", first.full_slug),
            "profile \"broken_file\"",
        )
        .replacen("\n}\n", "\n  file,\n}\n", 1);
    let broken_start = probes.len();
    probes.extend(vm::standard_probes(first, "broken_file"));
    profiles.push(("broken_file".into(), ours_plus_file));
    let author = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media-server/apparmor.txt"),
    )
    .unwrap()
    .replace("profile media_server ", "profile broken_author ");
    probes.extend(vm::standard_probes(first, "broken_author"));
    profiles.push(("broken_author".into(), author));

    // A probe that blocks (the console waits for input that never comes) is bounded and says
    // so, instead of holding the VM until the host kills it.
    let blocking = probes.len();
    probes.push(vm::VmProbe {
        profile: "broken_file".into(),
        op: "read",
        path: "/dev/ttyS0".into(),
        expect_allowed: true,
    });
    let report = vm::run(&kernel, &profiles, &probes, Some(&first.full_slug)).expect("the VM ran");
    assert!(
        report.outcomes[blocking].starts_with("BLOCKED"),
        "{:?}",
        report.outcomes[blocking]
    );

    assert!(
        report.extra.iter().any(|l| l == "AA Y"),
        "AppArmor is not on in the VM: {:?}",
        report.extra
    );
    assert!(
        report.load_failures.is_empty(),
        "profiles that did not load: {:#?}",
        report.load_failures
    );
    // The launcher's path: --replace with a cache, then a process under the profile.
    assert!(
        report
            .extra
            .contains(&format!("REPLACED {}", first.full_slug)),
        "{:?}",
        report.extra
    );
    assert!(
        report
            .extra
            .contains(&format!("ATTR {} (enforce)", first.full_slug)),
        "{:?}",
        report.extra
    );
    // The fail-closed decision, fed what the VM kernel printed from
    // /sys/module/apparmor/parameters/enabled and an engine reporting AppArmor, sees it
    // available (the engine is the other half; there is none inside the VM to ask).
    let kernel_says = report
        .extra
        .iter()
        .find_map(|l| l.strip_prefix("AA "))
        .expect("the VM printed the kernel's AppArmor state");
    let engine = [
        "name=apparmor".to_owned(),
        "name=seccomp,profile=default".to_owned(),
    ];
    let file = std::path::Path::new("/sys/module/apparmor/parameters/enabled");
    assert_eq!(
        decide_apparmor_support(file, Some(kernel_says), false, &engine),
        AppArmorSupport::Enforced
    );
    // And this test host's own kernel, for contrast, when it has no AppArmor.
    if !file.exists() {
        assert!(matches!(
            decide_apparmor_support(file, None, false, &engine),
            AppArmorSupport::Unavailable(_)
        ));
    }

    // Upstream kernels before AppArmor's af_unix mediation (Debian's 6.1 among them) do not
    // mediate connecting to a unix socket path at all: there the Docker socket is kept out by
    // the plan (it is never mounted unless granted, tests/launch.rs), not by the profile.
    let unix_mediated = report.extra.iter().any(|l| l == "UNIX yes");
    let mut unmediated = 0;
    let mut failures = Vec::new();
    let mut broken_caught = 0;
    let (mut allowed, mut denied_n) = (0, 0);
    for (i, (p, outcome)) in probes.iter().zip(&report.outcomes).enumerate() {
        let ok = if p.expect_allowed {
            outcome == "OK"
        } else {
            denied(outcome)
        };
        if outcome == "OK" {
            allowed += 1;
        } else if denied(outcome) {
            denied_n += 1;
        }
        if p.op == "connect" && !unix_mediated {
            unmediated += 1;
            continue;
        }
        if i >= broken_start {
            if !ok {
                broken_caught += 1;
            }
            continue;
        }
        if !ok {
            failures.push(format!(
                "{}: {} {} expected {}, got {}",
                p.profile,
                p.op,
                p.path,
                if p.expect_allowed { "OK" } else { "a denial" },
                if outcome.is_empty() {
                    "no result"
                } else {
                    outcome
                }
            ));
        }
    }
    // Written to the process's stderr directly, not through eprintln!, so that the table shows
    // in CI's output even when the test passes (the test harness captures the macros).
    let mut text = format!(
        "AppArmor VM: {} profiles ({} examples, {} corpus, 2 broken), {} probes: {} allowed, {} denied; {} audit DENIED lines; boot and probes {:.1} s\n",
        profiles.len(),
        n_examples,
        plans.len() - n_examples,
        probes.len(),
        allowed,
        denied_n,
        report.denied_lines,
        report.boot_time.as_secs_f64()
    );
    let mut table: std::collections::BTreeMap<&str, (usize, usize, usize)> = Default::default();
    for (p, outcome) in probes.iter().zip(&report.outcomes) {
        let row = table.entry(p.profile.as_str()).or_default();
        row.0 += 1;
        if outcome == "OK" {
            row.1 += 1;
        } else if denied(outcome) {
            row.2 += 1;
        }
    }
    text += &format!(
        "{:<40} {:>6} {:>8} {:>7}\n",
        "profile", "probes", "allowed", "denied"
    );
    for (name, (n, a, d)) in &table {
        text += &format!("{name:<40} {n:>6} {a:>8} {d:>7}\n");
    }
    if !unix_mediated {
        text += &format!(
            "this kernel does not mediate unix socket connects: {unmediated} docker.sock probes not judged\n"
        );
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(report.denied_lines > 0, "the kernel logged no denial");
    assert!(
        broken_caught >= 4,
        "the broken profiles were caught only {broken_caught} times"
    );
}

/// The native backend inside the real AppArmor kernel: `__native-init` applies the generated
/// profile on exec, the sandboxed shell reads its own label from inside, and an access only
/// the profile forbids (creating a file in the sandbox's writable /dev tmpfs) is denied and
/// audited, while the add-on's needs (writing /data, running image code) work.
#[test]
fn a_native_run_is_confined_by_the_generated_profile() {
    let Some(kernel) = common::vm_kernel() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "name: Native\nversion: \"1\"\nslug: vmnative\ndescription: d\narch: [amd64]\nmap: [share]\n",
    )
    .unwrap();
    let a = addon::load(dir.path());
    let plan = plan_of(&a, &PlanOptions::default());
    let name = plan.apparmor_profile.clone().expect("a generated profile");
    let text = profile::generate(&plan).unwrap().render(false).unwrap();
    let script = "echo \"attr=$(cat /proc/self/attr/current)\"; \
        echo \"nnp=$(grep NoNewPrivs /proc/self/status)\"; \
        echo \"dev_create=$(/bin/probe create /dev/planted 2>&1)\"; \
        echo \"data_write=$(/bin/probe create /data/new 2>&1)\"; \
        echo \"share_write=$(/bin/probe create /share/new 2>&1)\"; \
        echo \"image_read=$(/bin/probe read /bin/busybox 2>&1)\"; \
        echo \"sysrq=$(/bin/probe write /proc/sysrq-trigger 2>&1)\"; \
        echo \"core_pattern=$(/bin/probe write /proc/sys/kernel/core_pattern 2>&1)\"; \
        echo \"mount=$(/bin/probe mount /tmp 2>&1)\"; \
        echo END";
    let spec = addon_sandbox::native::spec(
        &plan,
        std::path::Path::new("/nroot"),
        vec!["/bin/sh".into(), "-c".into(), script.into()],
        "vm-token",
        "UTC",
        addon_sandbox::native::Confinement::Apparmor(name.clone()),
        "/tmp/native.log".into(),
    )
    .unwrap();
    let report = vm::run_native(
        &kernel,
        std::path::Path::new(env!("CARGO_BIN_EXE_addon-sandbox")),
        (&name, &text),
        &spec,
    )
    .expect("the VM ran");
    eprintln!("native run in the VM: {report:#?}");
    assert!(
        report.load_failures.is_empty(),
        "{:?}",
        report.load_failures
    );
    assert!(report.init.contains("\"pid\""), "init: {}", report.init);
    let line = |key: &str| {
        report
            .log
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {:?}", report.log))
            .to_owned()
    };
    assert_eq!(line("attr"), format!("{name} (enforce)"));
    assert!(line("nnp").ends_with('1'), "{}", line("nnp"));
    assert_eq!(
        line("dev_create"),
        "ERR EACCES",
        "only the profile forbids this"
    );
    assert_eq!(line("data_write"), "OK");
    assert!(denied(&line("share_write")) || line("share_write") == "ERR EROFS");
    assert_eq!(line("image_read"), "OK");
    // Attacks on the kernel from inside: denied (the /proc files first by their read-only
    // mounts, Docker's read-only paths, before the profile is asked).
    for attack in ["sysrq", "core_pattern", "mount"] {
        let answer = line(attack);
        assert!(
            denied(&answer) || answer == "ERR EROFS",
            "{attack}: {answer}"
        );
    }
    assert!(
        report
            .denied_records
            .iter()
            .any(|(p, path)| p == &name && path.ends_with("/dev/planted")),
        "the kernel audited the denial: {:?}",
        report.denied_records
    );
}
