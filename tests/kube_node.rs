//! `node load-profiles` against the real `apparmor_parser` (this host's kernel has no
//! AppArmor, so `--compile-to` takes the kernel's place: each profile compiled to its binary
//! policy, removed on unload). The folder is laid out as the kubelet mounts a ConfigMap
//! (`..data` linking to a timestamped folder, one link per key), its texts are the profile
//! ConfigMaps `kube` emits: loaded, replaced when the content changes, unloaded when the entry
//! goes away; a foreign profile is refused and the others still load.

mod common;

use std::path::Path;
use std::process::Command;

use common::kube_node::{mount_configmap, profile_entry};

fn load(dir: &Path, state: &Path, bin: &Path) -> (bool, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["node", "load-profiles", "--once", "--dir"])
        .arg(dir)
        .arg("--state")
        .arg(state)
        .arg("--compile-to")
        .arg(bin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.lines().next().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

fn names(report: &serde_json::Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn profiles_are_loaded_replaced_and_unloaded_as_the_configmap_changes() {
    if common::parser().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state, bin) = (
        tmp.path().join("profiles"),
        tmp.path().join("state"),
        tmp.path().join("bin"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let a = profile_entry("map: [share]\n", "alpha");
    let b = profile_entry("map: [ssl]\n", "beta");
    assert_eq!((a.0.as_str(), b.0.as_str()), ("local_alpha", "local_beta"));

    mount_configmap(&dir, "2026_11_30_1", &[a.clone(), b.clone()]);
    let (ok, r) = load(&dir, &state, &bin);
    assert!(ok, "{r}");
    assert_eq!(names(&r, "loaded"), ["local_alpha", "local_beta"]);
    let bin_a = std::fs::read(bin.join("local_alpha.bin")).unwrap();
    let bin_b = std::fs::read(bin.join("local_beta.bin")).unwrap();
    assert!(bin_a.len() > 1000 && bin_b.len() > 1000);
    assert_eq!(
        std::fs::read_to_string(state.join("local_alpha")).unwrap(),
        a.1
    );

    // Nothing changed: nothing loaded anew or replaced.
    let (ok, r) = load(&dir, &state, &bin);
    assert!(ok);
    assert_eq!(names(&r, "unchanged"), ["local_alpha", "local_beta"]);
    assert!(names(&r, "loaded").is_empty() && names(&r, "replaced").is_empty());

    // beta's content changes (a new map): replaced, and its compiled policy differs.
    let b2 = profile_entry("map: [ssl, media:rw]\n", "beta");
    assert_ne!(b.1, b2.1);
    mount_configmap(&dir, "2026_11_30_2", &[a.clone(), b2.clone()]);
    let (ok, r) = load(&dir, &state, &bin);
    assert!(ok);
    assert_eq!(names(&r, "replaced"), ["local_beta"]);
    assert_eq!(names(&r, "unchanged"), ["local_alpha"]);
    assert_ne!(std::fs::read(bin.join("local_beta.bin")).unwrap(), bin_b);
    assert_eq!(
        std::fs::read_to_string(state.join("local_beta")).unwrap(),
        b2.1
    );

    // alpha's entry goes away: unloaded, its state gone.
    mount_configmap(&dir, "2026_11_30_3", std::slice::from_ref(&b2));
    let (ok, r) = load(&dir, &state, &bin);
    assert!(ok);
    assert_eq!(names(&r, "unloaded"), ["local_alpha"]);
    assert!(!bin.join("local_alpha.bin").exists());
    assert!(!state.join("local_alpha").exists());
    assert!(bin.join("local_beta.bin").exists());

    // A file that is not the profile it is named after is refused; the rest still loads.
    let foreign = ("local_gamma".to_owned(), b2.1.clone());
    let c = profile_entry("", "delta");
    mount_configmap(&dir, "2026_11_30_4", &[b2.clone(), foreign, c]);
    let (ok, r) = load(&dir, &state, &bin);
    assert!(!ok, "a foreign profile must fail the pass");
    assert_eq!(names(&r, "loaded"), ["local_delta"]);
    let failed = r["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0][0], "local_gamma");
    assert!(failed[0][1].as_str().unwrap().contains("local_beta"), "{r}");
    assert!(!bin.join("local_gamma.bin").exists());
}

/// In a real AppArmor kernel (the VM): the loader loads the ConfigMap's profile, a process
/// then runs under it in enforce mode and is denied what the profile denies (writing a
/// read-only map) while allowed what it allows; when the entry goes, the loader unloads it.
#[test]
fn in_a_real_apparmor_kernel_the_loaded_profile_confines_and_is_unloaded() {
    let Some(kernel) = common::vm_kernel() else {
        return;
    };
    if common::parser().is_none() {
        return;
    }
    let (name, text) = profile_entry("map: [share]\n", "vmload");
    let started = std::time::Instant::now();
    let report = addon_sandbox::vm::run_node_load(
        &kernel,
        Path::new(env!("CARGO_BIN_EXE_addon-sandbox")),
        (&name, &text),
    )
    .expect("the VM ran");
    eprintln!("node load in the VM ({:?}): {report:#?}", started.elapsed());
    assert_eq!(report.get("AA"), "Y");
    let load1: serde_json::Value = serde_json::from_str(report.get("LOAD1")).expect("LOAD1 JSON");
    assert_eq!(load1["loaded"][0], name.as_str(), "{load1}");
    assert_eq!(
        report.get("KERNEL1"),
        "1",
        "the kernel lists it in enforce mode"
    );
    assert_eq!(report.get("LABEL"), format!("{name} (enforce)"));
    assert!(
        report.get("WRITE").contains("Permission denied"),
        "{}",
        report.get("WRITE")
    );
    assert_eq!(report.get("READ"), "seed");
    let load2: serde_json::Value = serde_json::from_str(report.get("LOAD2")).expect("LOAD2 JSON");
    assert_eq!(load2["unloaded"][0], name.as_str(), "{load2}");
    assert_eq!(report.get("KERNEL2"), "0", "unloaded from the kernel");
}
