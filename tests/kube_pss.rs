//! The Pod Security level (`kube::pss`) against pod-security-admission's own fixtures
//! (`tests/fixtures/pod-security/`, copied from Kubernetes, Apache-2.0, see its NOTICE): a
//! fixture under `<level>/.../pass` meets that level, one under `.../fail` does not, and the
//! check that fails is the one the fixture is named after.

use std::path::{Path, PathBuf};

use addon_sandbox::kube::pss::{self, Level};
use k8s_openapi::api::core::v1::Pod;

fn fixtures() -> Vec<(Level, bool, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pod-security");
    let mut out = Vec::new();
    for (dir, level) in [
        ("baseline", Level::Baseline),
        ("restricted", Level::Restricted),
    ] {
        for version in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            for (sub, pass) in [("pass", true), ("fail", false)] {
                let Ok(files) = std::fs::read_dir(version.path().join(sub)) else {
                    continue;
                };
                for f in files.flatten() {
                    out.push((level, pass, f.path()));
                }
            }
        }
    }
    out.sort_by(|a, b| a.2.cmp(&b.2));
    out
}

/// `hostnamespaces0` → `hostnamespaces`.
fn check_of(file: &Path) -> String {
    let stem = file.file_stem().unwrap().to_string_lossy();
    stem.trim_end_matches(|c: char| c.is_ascii_digit())
        .to_owned()
}

#[test]
fn the_levels_agree_with_pod_security_admissions_fixtures() {
    let all = fixtures();
    assert!(all.len() >= 30, "{} fixtures", all.len());
    let (mut passes, mut fails) = (0, 0);
    for (level, pass, file) in &all {
        let text = std::fs::read_to_string(file).unwrap();
        let pod: Pod =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let spec = pod.spec.as_ref().unwrap();
        let got = pss::assess(spec, pod.metadata.annotations.as_ref());
        if *pass {
            passes += 1;
            assert!(got.level >= *level, "{}: {:?}", file.display(), got);
        } else {
            fails += 1;
            assert!(got.level < *level, "{}: {:?}", file.display(), got);
            let named = check_of(file);
            assert!(
                got.reasons
                    .iter()
                    .any(|r| r.check.to_ascii_lowercase() == named),
                "{}: expected the check {named} to fail: {:?}",
                file.display(),
                got.reasons
            );
        }
    }
    assert!(
        passes >= 10 && fails >= 20,
        "{passes} pass, {fails} fail fixtures"
    );
}

#[test]
fn localhost_and_runtime_default_apparmor_are_baseline_unconfined_is_not() {
    let pod = |t: &str| -> Pod {
        serde_saphyr::from_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: i\n    securityContext:\n      appArmorProfile:\n        type: {t}\n{}",
            if t == "Localhost" { "        localhostProfile: p\n" } else { "" }
        ))
        .unwrap()
    };
    for (t, level) in [
        ("Localhost", Level::Baseline),
        ("RuntimeDefault", Level::Baseline),
        ("Unconfined", Level::Privileged),
    ] {
        let p = pod(t);
        assert_eq!(
            pss::assess(p.spec.as_ref().unwrap(), None).level,
            level,
            "{t}"
        );
    }
}
