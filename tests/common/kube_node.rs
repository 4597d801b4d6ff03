//! The profile loader's inputs as the kubelet gives them: a profile ConfigMap's entry as
//! `kube` emits it, laid out in a folder as a mounted ConfigMap.

use std::path::Path;

use addon_sandbox::addon;
use addon_sandbox::kube::{self, KubeOptions};
use addon_sandbox::policy::{self, PlanOptions};

/// The manifests `kube` emits for a minimal config with `extra` and `slug`.
pub fn manifests(extra: &str, slug: &str) -> kube::AddonManifests {
    let config = super::minimal(extra).replace("slug: test", &format!("slug: {slug}"));
    let dir = super::addon_dir(&config);
    let a = addon::load(dir.path());
    let plan = policy::decide(a.config.as_ref().unwrap(), false, &PlanOptions::default()).unwrap();
    let text = addon_sandbox::profile::generate(&plan)
        .unwrap()
        .render(false)
        .unwrap();
    kube::generate(&plan, Some(&text), &KubeOptions::default()).unwrap()
}

/// The profile ConfigMap entry (name, text) `kube` emits for a config.
pub fn profile_entry(extra: &str, slug: &str) -> (String, String) {
    let data = manifests(extra, slug).profile.unwrap().data.unwrap();
    data.into_iter().next().unwrap()
}

/// Lays `entries` out as the kubelet does: `..<stamp>/<key>`, `..data -> ..<stamp>`,
/// `<key> -> ..data/<key>`; a new call swaps `..data` and the links.
pub fn mount_configmap(dir: &Path, stamp: &str, entries: &[(String, String)]) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_symlink() {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let data = dir.join(format!("..{stamp}"));
    std::fs::create_dir_all(&data).unwrap();
    for (key, text) in entries {
        std::fs::write(data.join(key), text).unwrap();
        std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).unwrap();
    }
    std::os::unix::fs::symlink(format!("..{stamp}"), dir.join("..data")).unwrap();
}

/// `kubernetes-validate` (PyPI: Kubernetes' OpenAPI schemas, offline), or None with the reason
/// printed (a panic with `REQUIRE_KUBE_VALIDATE=1`).
pub fn kubernetes_validate() -> Option<std::path::PathBuf> {
    addon_sandbox::apparmor::parser::find_program("kubernetes-validate").or_else(|| {
        super::unavailable(
            "REQUIRE_KUBE_VALIDATE",
            "kubernetes-validate not on PATH (pip install kubernetes-validate)",
        )
    })
}
