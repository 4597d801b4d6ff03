//! Sigstore bundles attached to images (issue 19), end to end: a private Sigstore made here
//! (tests/trust/sigstore.rs: a Fulcio-like CA, a CT log, a Rekor-like log and the
//! `trusted_root.json` listing them), a real registry on 127.0.0.1 (Debian's
//! `docker-registry`, which has no referrers API, so bundles are attached with the referrers
//! tag schema), images pushed by the real engine; `trust fetch`, then `trust verify` and `run`
//! under `require`; and once through the referrers API (a stand-in in front of the registry,
//! tests/trust/referrers_api.rs). Each refusal has its own message and leaves no container and no token.
//! Run under `flock /tmp/addon-sandbox-docker.lock` with the other Docker tests.

#[path = "trust/case.rs"]
mod case;
mod common;
#[path = "trust/referrers_api.rs"]
mod referrers_api;
// The TLS registry of tests/trust.rs is not used here.
#[allow(dead_code)]
#[path = "trust/registry.rs"]
mod registry;
#[path = "trust/sign.rs"]
mod sign;
#[path = "trust/sigstore.rs"]
mod sigstore;

use std::path::PathBuf;

use case::{Case, OTHER_IMAGE, docker, image_id};
use sigstore::{By, Sigstore};

const IDENTITY: &str = "builder@addon-sandbox.test";
const ISSUER: &str = "https://issuer.addon-sandbox.test";

/// The keyless signer lines of a rule accepting `identity` from the test issuer.
fn keyless(identity: &str) -> String {
    format!(
        "    keyless:\n      - issuer: {ISSUER}\n        identity_regexp: '{}'\n",
        regex::escape(identity)
    )
}

struct Setup {
    case: Case,
    sigstore: Sigstore,
}

impl Setup {
    fn new(name: &str) -> Option<Setup> {
        Some(Setup {
            case: Case::new(name)?,
            sigstore: Sigstore::new(),
        })
    }

    fn name(&self) -> String {
        format!("{}/{}", self.case.registry.addr, self.case.repo())
    }

    /// A bundle over `digest` signed by `by`, attached to the case's image.
    fn attach(&self, bundle: serde_json::Value) {
        sigstore::attach(
            &self.case.registry,
            &self.case.repo(),
            &self.case.digest,
            &[bundle],
        );
    }

    fn bundle(&self, digest: &str, by: By<'_>) -> serde_json::Value {
        self.sigstore
            .bundle(&sigstore::statement(&self.name(), digest), by)
    }

    fn policy(&self, signers: &str, log_end: Option<&str>) -> PathBuf {
        self.case
            .write_policy("require", signers, &self.sigstore.trusted_root(log_end))
    }

    /// `trust fetch --json`: the bundle came from the referrers tag.
    fn fetch(&self) {
        let fetched = self.fetch_image(&self.case.image());
        assert_eq!(fetched["bundles"], 1, "{fetched}");
        assert_eq!(fetched["referrers_from"], "tag", "{fetched}");
    }

    /// `trust fetch IMAGE --json`'s report.
    fn fetch_image(&self, image: &str) -> serde_json::Value {
        let state = self.case.state();
        let out = self.case.cli(&[
            "trust",
            "fetch",
            image,
            "--state-dir",
            state.to_str().unwrap(),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "fetch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("fetch printed: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// `trust verify` and `run` both refuse with `expected`; nothing is created.
    fn assert_refused(&self, policy: &std::path::Path, expected: &str) {
        let out = self.case.verify(policy);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "trust verify accepted: {stdout}");
        assert!(
            stdout.contains(expected) || stderr.contains(expected),
            "expected {expected:?} from trust verify in: {stdout}{stderr}"
        );
        self.case.assert_refused(&self.case.run(policy), expected);
    }
}

#[test]
fn keyless_bundle_verifies_and_runs_by_image_id() {
    let Some(s) = Setup::new("bundleok") else {
        return;
    };
    s.attach(s.bundle(
        &s.case.digest,
        By::Keyless {
            identity: IDENTITY,
            issuer: ISSUER,
        },
    ));
    s.fetch();
    let policy = s.policy(&keyless(IDENTITY), None);
    let out = s.case.verify(&policy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = s.case.assert_started(&s.case.run(&policy));
    assert_eq!(report["trust"]["status"], "verified", "{report}");
    assert_eq!(
        report["trust"]["signer"],
        format!("keyless {IDENTITY} (issuer {ISSUER})")
    );
    let id = image_id(common::TEST_IMAGE);
    let out = docker(&[
        "container",
        "inspect",
        "--format",
        "{{.Image}}",
        &s.case.container(),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);
}

#[test]
fn bundle_of_another_identity_is_refused() {
    let Some(s) = Setup::new("bundleidentity") else {
        return;
    };
    s.attach(s.bundle(
        &s.case.digest,
        By::Keyless {
            identity: "mallory@addon-sandbox.test",
            issuer: ISSUER,
        },
    ));
    s.fetch();
    let policy = s.policy(&keyless(IDENTITY), None);
    s.assert_refused(
        &policy,
        &format!("Sigstore bundle: signed by mallory@addon-sandbox.test (issuer {ISSUER}), which no keyless signer of the rule"),
    );
}

#[test]
fn bundle_of_another_image_is_refused() {
    let Some(s) = Setup::new("bundleother") else {
        return;
    };
    // A valid bundle by the trusted signer, but over another image, attached to this one.
    let other = s.case.push_as(OTHER_IMAGE, "2");
    s.attach(s.bundle(
        &other,
        By::Keyless {
            identity: IDENTITY,
            issuer: ISSUER,
        },
    ));
    s.fetch();
    let policy = s.policy(&keyless(IDENTITY), None);
    s.assert_refused(
        &policy,
        &format!(
            "the bundle signs {other}, not this image's {}: a signature of another image",
            s.case.digest
        ),
    );
}

#[test]
fn tampered_bundle_payload_is_refused() {
    let Some(s) = Setup::new("bundletampered") else {
        return;
    };
    let mut bundle = s.bundle(
        &s.case.digest,
        By::Keyless {
            identity: IDENTITY,
            issuer: ISSUER,
        },
    );
    // The statement changed after signing (same subject, another predicate).
    let mut statement: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            bundle["dsseEnvelope"]["payload"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    statement["predicate"] = serde_json::json!({"owner": "mallory"});
    bundle["dsseEnvelope"]["payload"] = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&statement).unwrap(),
    )
    .into();
    s.attach(bundle);
    s.fetch();
    let policy = s.policy(&keyless(IDENTITY), None);
    s.assert_refused(
        &policy,
        "the bundle's signature does not verify over its content: its payload was changed after signing",
    );
}

#[test]
fn stale_trusted_root_is_refused() {
    let Some(s) = Setup::new("bundlestale") else {
        return;
    };
    s.attach(s.bundle(
        &s.case.digest,
        By::Keyless {
            identity: IDENTITY,
            issuer: ISSUER,
        },
    ));
    s.fetch();
    // The log's key as an old root lists it: valid until 2021, before this entry was logged.
    let policy = s.policy(&keyless(IDENTITY), Some("2021-01-01T00:00:00Z"));
    s.assert_refused(
        &policy,
        "the trusted root has no key of the transparency log that recorded this signature valid when it was recorded: a stale or wrong trusted_root.json, refresh it",
    );
}

#[test]
fn key_signed_bundle_verifies_with_the_pinned_key_only() {
    let Some(s) = Setup::new("bundlekey") else {
        return;
    };
    let key = sigstore_crypto::KeyPair::generate_ecdsa_p256().unwrap();
    s.attach(s.bundle(&s.case.digest, By::Key(&key)));
    s.fetch();
    let dir = s.case.dir.path();
    std::fs::write(
        dir.join("signer.pub"),
        key.public_key_der().unwrap().to_pem(),
    )
    .unwrap();
    let pinned = s.policy("    keys:\n      - file: signer.pub\n", None);
    let report = s.case.assert_started(&s.case.run(&pinned));
    assert_eq!(report["trust"]["status"], "verified", "{report}");
    let signer = report["trust"]["signer"].as_str().unwrap();
    assert!(
        signer.contains("signer.pub")
            && signer.contains("Sigstore bundle, transparency log index 1"),
        "{signer}"
    );
}

#[test]
fn key_signed_bundle_of_another_key_is_refused() {
    let Some(s) = Setup::new("bundlewrongkey") else {
        return;
    };
    let key = sigstore_crypto::KeyPair::generate_ecdsa_p256().unwrap();
    s.attach(s.bundle(&s.case.digest, By::Key(&key)));
    s.fetch();
    // Another pinned key: refused, and a keyless-only rule refuses a key-signed bundle.
    let other = sigstore_crypto::KeyPair::generate_ecdsa_p256().unwrap();
    std::fs::write(
        s.case.dir.path().join("signer.pub"),
        other.public_key_der().unwrap().to_pem(),
    )
    .unwrap();
    let wrong = s.policy("    keys:\n      - file: signer.pub\n", None);
    s.assert_refused(&wrong, "the bundle verifies with none of the pinned keys");
    let keyless_only = s.policy(&keyless(IDENTITY), None);
    s.assert_refused(
        &keyless_only,
        "the bundle is signed by a key, and the rule for",
    );
}

#[test]
fn bundle_listed_by_the_referrers_api_is_fetched_from_it() {
    let Some(s) = Setup::new("bundleapi") else {
        return;
    };
    let api = referrers_api::ReferrersApi::start(&s.case.registry.addr);
    let bundle = s.bundle(
        &s.case.digest,
        By::Keyless {
            identity: IDENTITY,
            issuer: ISSUER,
        },
    );
    // Listed by the API only: no referrers tag exists.
    let listed = sigstore::push_referrer(&s.case.registry, &s.case.repo(), &s.case.digest, &bundle);
    api.list(&s.case.digest, sigstore::referrers_index(vec![listed]));
    let image = format!("{}/{}:1", api.addr, s.case.repo());
    let fetched = s.fetch_image(&image);
    assert_eq!(fetched["bundles"], 1, "{fetched}");
    assert_eq!(fetched["referrers_from"], "api", "{fetched}");
    assert_eq!(fetched["digest"], s.case.digest.as_str());
    let policy = s.case.write_policy_for(
        &api.addr,
        "require",
        &keyless(IDENTITY),
        &s.sigstore.trusted_root(None),
    );
    let out = s.case.verify_image(&image, &policy);
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["status"], "verified", "{verdict}");
    assert_eq!(
        verdict["signer"],
        format!("keyless {IDENTITY} (issuer {ISSUER})")
    );
    // A registry with the API is not asked for the tag: a bundle only the tag lists is not
    // fetched while the API lists none.
    sigstore::attach(&s.case.registry, &s.case.repo(), &s.case.digest, &[bundle]);
    api.list(&s.case.digest, sigstore::referrers_index(Vec::new()));
    let fetched = s.fetch_image(&image);
    assert_eq!(fetched["bundles"], 0, "{fetched}");
    assert_eq!(fetched["referrers_from"], "api", "{fetched}");
}
