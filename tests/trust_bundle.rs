//! Keyless Sigstore bundles through `trust::bundle`, offline, with a real published keyless
//! cosign bundle (tests/fixtures/trust, see SOURCE.md) and the trusted root shipped with the
//! tool: verified; wrong identity, wrong issuer, tampered artifact and a stale trusted root
//! refused, each with its own message. Then bundles over an image digest made by the tests'
//! private Sigstore (tests/trust/sigstore.rs), without a registry: the same verdicts
//! tests/trust_image_bundle.rs reaches through `trust fetch` and `run`.

// Only for the signature of sigstore::attach; these tests use no registry.
#[allow(dead_code)]
#[path = "trust/registry.rs"]
mod registry;
#[path = "trust/sigstore.rs"]
mod sigstore;

use std::path::{Path, PathBuf};

use addon_sandbox::trust::{self, TrustPolicy, bundle};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/trust")
        .join(name)
}

fn policy(keyless: &str) -> TrustPolicy {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(
        &file,
        format!("rules:\n  - match: \"ghcr.io/example/*\"\n    keyless:\n{keyless}"),
    )
    .unwrap();
    TrustPolicy::load(&file).unwrap_or_else(|d| panic!("{d:?}"))
}

const SIGNER: &str = "      - issuer: https://github.com/login/oauth\n        identity_regexp: 'w\\.vollprecht@gmail\\.com'\n";

fn check(
    policy: &TrustPolicy,
    artifact: &[u8],
    root: &sigstore_trust_root::TrustedRoot,
) -> Result<String, String> {
    let json = std::fs::read_to_string(fixture("cosign-v3-blob.sigstore.json")).unwrap();
    bundle::verify(
        &json,
        bundle::Artifact::Bytes(artifact),
        &policy.rules[0],
        root,
    )
}

fn shipped_root() -> sigstore_trust_root::TrustedRoot {
    trust::trusted_root(None).unwrap()
}

fn artifact() -> Vec<u8> {
    std::fs::read(fixture("cosign-v3-blob.txt")).unwrap()
}

#[test]
fn real_keyless_bundle_verifies_for_its_signer() {
    let signer = check(&policy(SIGNER), &artifact(), &shipped_root()).unwrap();
    assert_eq!(
        signer,
        "keyless w.vollprecht@gmail.com (issuer https://github.com/login/oauth)"
    );
}

#[test]
fn wrong_identity_and_issuer_are_refused() {
    let other = "      - issuer: https://github.com/login/oauth\n        identity_regexp: 'someone@example\\.com'\n";
    let err = check(&policy(other), &artifact(), &shipped_root()).unwrap_err();
    assert!(err.contains("signed by w.vollprecht@gmail.com (issuer https://github.com/login/oauth), which no keyless signer"), "{err}");
    assert!(
        err.contains("not an identity matching ^(?:someone@example\\.com)$"),
        "{err}"
    );
    // The regex is anchored: a pattern that only contains the identity does not match.
    let partial = "      - issuer: https://github.com/login/oauth\n        identity_regexp: 'vollprecht@gmail'\n";
    assert!(check(&policy(partial), &artifact(), &shipped_root()).is_err());
    let issuer = "      - issuer: https://token.actions.githubusercontent.com\n        identity_regexp: 'w\\.vollprecht@gmail\\.com'\n";
    let err = check(&policy(issuer), &artifact(), &shipped_root()).unwrap_err();
    assert!(
        err.contains("issuer is not https://token.actions.githubusercontent.com"),
        "{err}"
    );
}

#[test]
fn tampered_artifact_is_refused() {
    let mut bytes = artifact();
    bytes.push(b'!');
    let err = check(&policy(SIGNER), &bytes, &shipped_root()).unwrap_err();
    assert!(
        err.starts_with("the bundle signs another artifact: the artifact was changed"),
        "{err}"
    );
    assert!(err.contains("artifact mismatch"), "{err}");
}

#[test]
fn stale_trusted_root_is_refused() {
    // A root from before the log that recorded this signature was listed: the shipped root
    // without that log's key (wNI9…, the production Rekor v1 log the bundle names).
    let shipped = std::fs::read_to_string(fixture("cosign-v3-blob.sigstore.json")).unwrap();
    let log_id = serde_json::from_str::<serde_json::Value>(&shipped).unwrap()["verificationMaterial"]["tlogEntries"][0]["logId"]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut root: serde_json::Value =
        serde_json::from_str(sigstore_trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
    root["tlogs"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["logId"]["keyId"] != log_id.as_str());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trusted_root.json");
    std::fs::write(&file, root.to_string()).unwrap();
    let stale = trust::trusted_root(Some(&file)).unwrap();
    let err = check(&policy(SIGNER), &artifact(), &stale).unwrap_err();
    assert!(
        err.contains("No log key valid at integrated time 2025-12-03T18:36:43Z"),
        "{err}"
    );
}

/// The README's policy example is a valid policy that covers both kinds of image.
#[test]
fn readme_policy_example_loads() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("```yaml\n# Home Assistant's own add-on images")
        .unwrap()
        + 8;
    let text = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), text).unwrap();
    let key = sigstore_crypto::KeyPair::generate_ecdsa_p256().unwrap();
    std::fs::write(
        dir.path().join("example-community.pub"),
        key.public_key_der().unwrap().to_pem(),
    )
    .unwrap();
    let policy =
        TrustPolicy::load(&dir.path().join("policy.yaml")).unwrap_or_else(|d| panic!("{d:?}"));
    let ha = policy.applied("ghcr.io/home-assistant/aarch64-addon-ssh", "aarch64");
    assert_eq!(ha.mode, trust::Mode::Require);
    assert_eq!(ha.rule.unwrap().keyless.len(), 1);
    let community = policy.applied("ghcr.io/example-community/amd64-addon-x", "amd64");
    assert_eq!(community.rule.unwrap().keys.len(), 1);
    assert_eq!(
        policy.applied("docker.io/library/busybox", "amd64").mode,
        trust::Mode::Warn
    );
}

const PRIVATE_SIGNER: &str = "      - issuer: https://issuer.addon-sandbox.test\n        identity_regexp: 'builder@addon-sandbox\\.test'\n";

fn private(
    store: &sigstore::Sigstore,
    bundle: &serde_json::Value,
    digest: &str,
    keyless: &str,
    log_end: Option<&str>,
) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trusted_root.json");
    std::fs::write(&file, store.trusted_root(log_end)).unwrap();
    let root = trust::trusted_root(Some(&file)).unwrap();
    bundle::verify(
        &bundle.to_string(),
        bundle::Artifact::Digest(digest),
        &policy(keyless).rules[0],
        &root,
    )
}

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn keyless_by_builder() -> sigstore::By<'static> {
    sigstore::By::Keyless {
        identity: "builder@addon-sandbox.test",
        issuer: "https://issuer.addon-sandbox.test",
    }
}

#[test]
fn private_sigstore_bundle_over_a_digest_verifies() {
    let store = sigstore::Sigstore::new();
    let bundle = store.bundle(
        &sigstore::statement("ghcr.io/example/x", DIGEST),
        keyless_by_builder(),
    );
    assert_eq!(
        private(&store, &bundle, DIGEST, PRIVATE_SIGNER, None).unwrap(),
        "keyless builder@addon-sandbox.test (issuer https://issuer.addon-sandbox.test)"
    );
    // Another digest: the statement names this one.
    let other = format!("sha256:{}", "2".repeat(64));
    let err = private(&store, &bundle, &other, PRIVATE_SIGNER, None).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "the bundle signs {DIGEST}, not this image's {other}: a signature of another image"
        )),
        "{err}"
    );
    // A stale root: the log key's validity ended before the entry was logged.
    let err = private(
        &store,
        &bundle,
        DIGEST,
        PRIVATE_SIGNER,
        Some("2021-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert!(
        err.contains("a stale or wrong trusted_root.json, refresh it"),
        "{err}"
    );
    // Another private Sigstore's root: its CA and logs are not this bundle's.
    let err = private(
        &sigstore::Sigstore::new(),
        &bundle,
        DIGEST,
        PRIVATE_SIGNER,
        None,
    )
    .unwrap_err();
    assert!(err.contains("trusted_root.json"), "{err}");
}

#[test]
fn private_sigstore_tampered_and_key_signed_bundles() {
    let store = sigstore::Sigstore::new();
    let mut bundle = store.bundle(
        &sigstore::statement("ghcr.io/example/x", DIGEST),
        keyless_by_builder(),
    );
    let statement = String::from_utf8(sigstore::statement("ghcr.io/example/x", DIGEST)).unwrap();
    let changed = statement.replace("\"predicate\":{}", "\"predicate\":{\"owner\":\"mallory\"}");
    assert_ne!(statement, changed);
    bundle["dsseEnvelope"]["payload"] =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, changed).into();
    let err = private(&store, &bundle, DIGEST, PRIVATE_SIGNER, None).unwrap_err();
    assert!(
        err.starts_with("the bundle's signature does not verify over its content: its payload was changed after signing"),
        "{err}"
    );
    // Signed with a key: the keyless rule refuses it; a rule pinning the key accepts it.
    let key = sigstore_crypto::KeyPair::generate_ecdsa_p256().unwrap();
    let keyed = store.bundle(
        &sigstore::statement("ghcr.io/example/x", DIGEST),
        sigstore::By::Key(&key),
    );
    let err = private(&store, &keyed, DIGEST, PRIVATE_SIGNER, None).unwrap_err();
    assert!(
        err.starts_with(
            "the bundle is signed by a key, and the rule for ghcr.io/example/* (line 2) pins none"
        ),
        "{err}"
    );
}
