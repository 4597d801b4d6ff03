//! Image trust (issue 19) end to end: a real registry on 127.0.0.1 (Debian's
//! `docker-registry`, its own config), images pushed by the real engine, cosign-format legacy
//! signatures made here and logged by a private Rekor-like log that a test trusted root
//! lists; `trust fetch` from that registry, then `run` verifying offline. Each case has its
//! own registry, repository, state directory and add-on; every refusal leaves no container and
//! no token. Run under `flock /tmp/addon-sandbox-docker.lock` with the other Docker tests.

#[path = "trust/case.rs"]
mod case;
mod common;
#[path = "trust/registry.rs"]
mod registry;
#[path = "trust/sign.rs"]
mod sign;

use std::path::PathBuf;

use case::{Case, OTHER_IMAGE, docker, image_id};
use sign::{Layer, Signer};

impl Case {
    /// The policy: this repository at `mode`, signed by the case's key; the private log's
    /// trusted root.
    fn policy(&self, mode: &str) -> PathBuf {
        std::fs::write(self.dir.path().join("cosign.pub"), self.signer.public_pem()).unwrap();
        self.write_policy(
            mode,
            "    keys:\n      - file: cosign.pub\n",
            &sign::trusted_root(&self.log),
        )
    }

    fn sign(&self, digest: &str, layers: &[Layer]) {
        sign::push_signature(&self.registry, &self.repo(), digest, layers);
    }

    fn good_layer(&self) -> Layer {
        let name = format!("{}/{}", self.registry.addr, self.repo());
        Layer::signed(
            sign::payload(&name, &self.digest),
            &self.signer,
            Some(&self.log),
        )
    }
}

#[test]
fn verified_image_runs_by_its_image_id() {
    let Some(case) = Case::new("ok") else { return };
    case.sign(&case.digest, &[case.good_layer()]);
    let policy = case.policy("require");
    case.fetch();
    let report = case.assert_started(&case.run(&policy));
    let id = image_id(common::TEST_IMAGE);
    assert_eq!(report["trust"]["status"], "verified", "{report}");
    assert_eq!(report["trust"]["config"], id.as_str());
    let signer = report["trust"]["signer"].as_str().unwrap();
    assert!(
        signer.contains("cosign.pub") && signer.contains("transparency log index 7"),
        "{signer}"
    );
    // Created by the image ID: what was verified is what runs.
    let out = docker(&[
        "container",
        "inspect",
        "--format",
        "{{.Config.Image}} {{.Image}}",
        &case.container(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{id} {id}")
    );
    // The cache is an OCI layout.
    let layout = case.state().join("trust");
    assert!(layout.join("oci-layout").is_file() && layout.join("index.json").is_file());
}

#[test]
fn wrong_key_is_refused_naming_the_signer() {
    let Some(case) = Case::new("wrongkey") else {
        return;
    };
    let other = Signer::new();
    let name = format!("{}/{}", case.registry.addr, case.repo());
    let layer = Layer::signed(sign::payload(&name, &case.digest), &other, Some(&case.log));
    case.sign(&case.digest, &[layer]);
    let policy = case.policy("require");
    case.fetch();
    let out = case.run(&policy);
    let other_id = &addon_sandbox::trust::sha256_digest(&other.der())[..23];
    case.assert_refused(
        &out,
        &format!("it was signed by key {other_id}, which the rule for"),
    );
}

#[test]
fn signature_of_another_digest_is_refused() {
    let Some(case) = Case::new("otherdigest") else {
        return;
    };
    let name = format!("{}/{}", case.registry.addr, case.repo());
    let elsewhere = format!("sha256:{}", "1".repeat(64));
    // A valid signature by the pinned key, but for another image, copied under this one's tag.
    let layer = Layer::signed(
        sign::payload(&name, &elsewhere),
        &case.signer,
        Some(&case.log),
    );
    case.sign(&case.digest, &[layer]);
    let policy = case.policy("require");
    case.fetch();
    case.assert_refused(
        &case.run(&policy),
        &format!(
            "signed {elsewhere}, not this image's {}: a signature of another image",
            case.digest
        ),
    );
}

#[test]
fn tampered_payload_is_refused() {
    let Some(case) = Case::new("tampered") else {
        return;
    };
    let mut layer = case.good_layer();
    // Changed after signing: the signature and the log entry are of the original bytes.
    layer.payload = String::from_utf8(layer.payload)
        .unwrap()
        .replace("\"optional\":null", "\"optional\":{\"owner\":\"mallory\"}")
        .into_bytes();
    case.sign(&case.digest, &[layer]);
    let policy = case.policy("require");
    case.fetch();
    case.assert_refused(&case.run(&policy), "its payload was changed after signing");
}

#[test]
fn tag_moved_after_verification_is_refused() {
    let Some(case) = Case::new("moved") else {
        return;
    };
    case.sign(&case.digest, &[case.good_layer()]);
    let policy = case.policy("require");
    case.fetch();
    // The tag now names another image, in the registry and in the engine.
    case.push(OTHER_IMAGE);
    let out = case.run(&policy);
    case.assert_refused(&out, "the tag moved after verification");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "{}@{}",
        case.image().trim_end_matches(":1"),
        case.digest
    )));
}

#[test]
fn missing_signature_refuses_under_require_and_warns_under_warn() {
    let Some(case) = Case::new("missing") else {
        return;
    };
    let require = case.policy("require");
    // Never fetched first, then fetched with no signature in the registry.
    case.assert_refused(
        &case.run(&require),
        "nothing was fetched for it): run `addon-sandbox trust fetch",
    );
    case.fetch();
    case.assert_refused(&case.run(&require), "has no signature in the trust cache");
    let warn = case.policy("warn");
    let out = case.run(&warn);
    let report = case.assert_started(&out);
    assert_eq!(report["trust"]["status"], "missing");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: image not verified (trust policy: warn)"),
        "{stderr}"
    );
}
