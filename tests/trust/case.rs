//! One trust scenario against a real registry: its own `docker-registry` on 127.0.0.1, a
//! repository `t/<name>` holding the test image pushed by the real engine, an add-on, a state
//! directory and a policy folder; `trust fetch`, `trust verify` and `run` as the binary; the
//! refusal check (exit 3, the message, no container, no token). Shared by the legacy
//! signature tests (tests/trust.rs) and the Sigstore bundle tests
//! (tests/trust_image_bundle.rs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::registry::{self, Registry};
use crate::sign::Signer;

/// A second image (another config, so another digest) for the "other digest" and "tag moved"
/// cases: the test image imported again with one more environment variable.
pub const OTHER_IMAGE: &str = "addon-sandbox-test/busybox-trust:2";

pub fn ensure_other_image() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        crate::common::ensure_test_image();
        let tar = crate::common::busybox_image_tar();
        let mut child = Command::new("docker")
            .args(["import", "--change", "ENV TRUST_TEST=2", "-", OTHER_IMAGE])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &tar).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
    });
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

pub fn image_id(image: &str) -> String {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", image]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// One scenario: a registry, a repository `t/<name>` holding the test image as `:1`, the
/// image's manifest digest, an add-on, a state directory and a policy folder.
pub struct Case {
    pub registry: Registry,
    pub name: String,
    pub dir: tempfile::TempDir,
    pub digest: String,
    pub signer: Signer,
    pub log: Signer,
}

impl Case {
    pub fn new(name: &str) -> Option<Case> {
        let binary = registry::binary()?;
        if !crate::common::docker_available() {
            return None;
        }
        ensure_other_image();
        let registry = Registry::start(&binary);
        let mut case = Case {
            name: name.to_owned(),
            dir: tempfile::tempdir().unwrap(),
            digest: String::new(),
            signer: Signer::new(),
            log: Signer::new(),
            registry,
        };
        case.digest = case.push(crate::common::TEST_IMAGE);
        let addon = case.dir.path().join("addon");
        std::fs::create_dir(&addon).unwrap();
        std::fs::write(
            addon.join("config.yaml"),
            format!(
                "name: T\nversion: \"1.0\"\nslug: trust_{name}\ndescription: d\narch: [amd64, aarch64]\n"
            ),
        )
        .unwrap();
        Some(case)
    }

    pub fn repo(&self) -> String {
        format!("t/{}", self.name)
    }

    pub fn image(&self) -> String {
        format!("{}/{}:1", self.registry.addr, self.repo())
    }

    /// Tag `source` as this case's image, push it, return the manifest digest.
    pub fn push(&self, source: &str) -> String {
        assert!(docker(&["tag", source, &self.image()]).status.success());
        let out = docker(&["push", &self.image()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        addon_sandbox::trust::sha256_digest(&self.registry.manifest(&self.repo(), "1"))
    }

    /// Push `source` as `t/<name>:<tag>` (the local tag removed after), return its digest.
    pub fn push_as(&self, source: &str, tag: &str) -> String {
        let image = format!("{}/{}:{tag}", self.registry.addr, self.repo());
        assert!(docker(&["tag", source, &image]).status.success());
        let out = docker(&["push", &image]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = docker(&["rmi", &image]);
        addon_sandbox::trust::sha256_digest(&self.registry.manifest(&self.repo(), tag))
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
            .args(args)
            .output()
            .unwrap()
    }

    pub fn fetch(&self) -> Output {
        let state = self.state();
        let out = self.cli(&[
            "trust",
            "fetch",
            &self.image(),
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "fetch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn run(&self, policy: &Path) -> Output {
        let addon = self.dir.path().join("addon");
        let data = self.dir.path().join("data");
        let state = self.state();
        self.cli(&[
            "run",
            addon.to_str().unwrap(),
            "--image",
            &self.image(),
            "--data-root",
            data.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--trust-policy",
            policy.to_str().unwrap(),
            "--allow-unconfined",
            "--json",
            "--command",
            "true",
        ])
    }

    pub fn container(&self) -> String {
        format!("app_local_trust_{}", self.name)
    }

    /// A refusal: exit 3, the message, and nothing created (no container, no token).
    pub fn assert_refused(&self, out: &Output, expected: &str) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in: {stderr}"
        );
        assert!(stderr.contains("nothing was created"), "{stderr}");
        assert!(
            !docker(&["container", "inspect", &self.container()])
                .status
                .success(),
            "a container was created"
        );
        let token = self
            .state()
            .join("addons")
            .join(format!("local_trust_{}", self.name))
            .join("token");
        assert!(!token.exists(), "a token was written");
    }

    /// A start: the report's verdict and the container's image.
    pub fn assert_started(&self, out: &Output) -> serde_json::Value {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
    /// Write the policy: this case's repositories at `mode` with the `signers` lines (YAML
    /// under the rule, indented four spaces) and `root` as its trusted root.
    pub fn write_policy(&self, mode: &str, signers: &str, root: &str) -> PathBuf {
        self.write_policy_for(&self.registry.addr, mode, signers, root)
    }

    /// `write_policy` for the repositories of the registry at `host`.
    pub fn write_policy_for(&self, host: &str, mode: &str, signers: &str, root: &str) -> PathBuf {
        let dir = self.dir.path();
        std::fs::write(dir.join("root.json"), root).unwrap();
        let file = dir.join("policy.yaml");
        std::fs::write(
            &file,
            format!(
                "default: require\ntrusted_root: root.json\nrules:\n  - match: \"{host}/t/*\"\n    mode: {mode}\n{signers}"
            ),
        )
        .unwrap();
        file
    }

    /// `trust verify IMAGE --json` under `policy`: the verdict, offline, from the cache.
    pub fn verify(&self, policy: &Path) -> Output {
        self.verify_image(&self.image(), policy)
    }

    /// `trust verify` of `image` (the case's image under another registry's name) from this
    /// case's cache.
    pub fn verify_image(&self, image: &str, policy: &Path) -> Output {
        let state = self.state();
        self.cli(&[
            "trust",
            "verify",
            image,
            "--state-dir",
            state.to_str().unwrap(),
            "--trust-policy",
            policy.to_str().unwrap(),
            "--arch",
            "amd64",
            "--json",
        ])
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.container()]);
        let _ = docker(&["rmi", &self.image()]);
    }
}
