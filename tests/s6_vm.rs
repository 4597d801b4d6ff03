//! The generated profile against a real s6-overlay start in a real AppArmor kernel: the probe
//! add-on's image (tests/workloads/probe on Home Assistant's Debian base, s6-overlay 3.1.6.2)
//! is exported and booted as the VM's root, its `/init` runs as the PID 1 of its own PID
//! namespace confined by the strict profile of its plan, its cont-init (bashio) and s6-rc
//! longrun come up, SIGTERM stops it as `docker stop` would, and the kernel logs no denial.
//!
//! Needs the VM (`REQUIRE_APPARMOR_VM=1` fails instead of skipping) and the workload images
//! (`REQUIRE_WORKLOADS=1` builds them; without it the test skips). Run under the shared lock:
//! `flock /tmp/addon-sandbox-docker.lock env REQUIRE_APPARMOR_VM=1 REQUIRE_WORKLOADS=1 cargo
//! test --test s6_vm`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use addon_sandbox::addon;
use addon_sandbox::policy::{self, PlanOptions};
use addon_sandbox::profile;
use addon_sandbox::vm;

const IMAGE: &str = "addon-sandbox-test/workload-probe:bookworm";

fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The probe image, built FROM Home Assistant's base image (`common::base_image`: built when
/// the workloads are required, cached by its inputs); None with a printed reason otherwise.
fn probe_image() -> Option<()> {
    let base = common::base_image("bookworm")?;
    let root = env!("CARGO_MANIFEST_DIR");
    sh(&format!(
        "docker build -q --build-arg BUILD_FROM={base} -t {IMAGE} '{root}/tests/workloads/probe'"
    ));
    Some(())
}

/// The image's filesystem, exported into `dir`, and its environment.
fn export_image(dir: &Path) -> Vec<String> {
    let id = sh(&format!("docker create {IMAGE}"));
    let exported = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker export {id} | tar -x -C '{}'",
            dir.display()
        ))
        .status();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    assert!(exported.is_ok_and(|s| s.success()), "docker export failed");
    let env = sh(&format!(
        "docker image inspect -f '{{{{json .Config.Env}}}}' {IMAGE}"
    ));
    serde_json::from_str(&env).expect("the image's environment")
}

/// One VM boot at a time: two tests of this file would share the two cores.
static VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The probe image booted under `edit` applied to its plan's strict profile; the profile's
/// name, the report, and the end of the console for failure messages. None when skipped.
fn boot_probe(
    edit: impl Fn(String) -> String,
    within: Duration,
) -> Option<(String, vm::ImageVmReport, String)> {
    let kernel = common::vm_kernel()?;
    probe_image()?;
    let _one = VM.lock().unwrap_or_else(|e| e.into_inner());
    // The probe add-on has no config of its own: the smallest one, strict policy.
    let dir = common::addon_dir(&common::minimal(""));
    let a = addon::load(dir.path());
    let plan = policy::decide(a.config.as_ref().unwrap(), false, &PlanOptions::default()).unwrap();
    let name = plan.apparmor_profile.clone().expect("a generated profile");
    let text = edit(profile::generate(&plan).unwrap().render(false).unwrap());
    let root = tempfile::tempdir().unwrap();
    let env = export_image(root.path());
    let report = vm::run_image(
        &kernel,
        root.path(),
        &env,
        (&name, &text),
        ("/tmp/probe-up", within),
    )
    .expect("the VM ran");
    let lines: Vec<&str> = report.console.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    // Written to stderr directly so that it shows even when the test passes.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "s6-overlay in the AppArmor VM: {:.1} s; {:?}; ready {:?}; label {:?}; exit {:?}; {} denials\n",
            report.boot_time.as_secs_f64(),
            report.setup,
            report.ready,
            report.attr,
            report.exit,
            report.denied.len()
        )
        .as_bytes(),
    );
    assert!(
        report.setup.iter().any(|l| l == "AA Y"),
        "AppArmor is not on in the VM:\n{tail}"
    );
    assert!(
        report
            .setup
            .iter()
            .any(|l| l.starts_with("LOADED") && l.contains(&name)),
        "the profile was not loaded:\n{tail}"
    );
    Some((name, report, tail))
}

/// The denials the kernel logged under the profile (or a child of it).
fn denied_under<'a>(name: &str, report: &'a vm::ImageVmReport) -> Vec<&'a String> {
    report
        .denied
        .iter()
        .filter(|(p, _)| p == name || p.starts_with(&format!("{name}//")))
        .map(|(_, line)| line)
        .collect()
}

#[test]
fn s6_overlay_starts_and_stops_under_its_profile_in_a_real_apparmor_kernel() {
    let Some((name, report, tail)) = boot_probe(|t| t, Duration::from_secs(300)) else {
        return;
    };
    assert_eq!(
        report.ready.as_deref(),
        Some("up"),
        "the probe service never came up under the profile:\n{tail}"
    );
    assert!(
        report.console.contains("probe cont-init: bashio works"),
        "cont-init did not run:\n{tail}"
    );
    assert_eq!(report.attr, format!("{name} (enforce)"), "{tail}");
    let ours = denied_under(&name, &report);
    assert!(ours.is_empty(), "denied under {name}:\n{ours:#?}\n{tail}");
    assert_eq!(report.exit, Some(0), "/init did not stop cleanly:\n{tail}");
}

/// The test of the test: the same boot with the profile's exception for s6-rc's service
/// directories taken out. The kernel denies running the services' `run` scripts, the probe
/// never comes up, and the denial is seen: a profile that withholds what s6-overlay needs
/// cannot pass the test above.
#[test]
fn a_profile_without_the_servicedirs_exception_is_caught_in_the_vm() {
    let without = |t: String| {
        let kept: Vec<&str> = t.lines().filter(|l| !l.contains("/servicedirs/")).collect();
        assert!(kept.len() < t.lines().count(), "the rule is in the profile");
        kept.join("\n") + "\n"
    };
    let Some((name, report, tail)) = boot_probe(without, Duration::from_secs(40)) else {
        return;
    };
    assert_eq!(report.ready, None, "{tail}");
    let ours = denied_under(&name, &report);
    assert!(
        ours.iter()
            .any(|l| l.contains("operation=\"exec\"") && l.contains("/servicedirs/")),
        "no exec denial in the service directories: {ours:#?}\n{tail}"
    );
}
