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
#[path = "trust/token.rs"]
mod token;

use std::path::PathBuf;

use case::{Case, OTHER_IMAGE, docker, image_id};
use registry::Registry;
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

/// `plan` reports its image's verdict from the cache; under the strict policy a verified image
/// adds the Supervisor's old `+1 if signed`, naming the signer; the supervisor policy keeps the
/// Supervisor's rating; the add-on's own `codenotary` is reported and never counts.
#[test]
fn the_plan_reports_the_verdict_and_a_verified_image_rates_one_higher() {
    let Some(case) = Case::new("plan") else {
        return;
    };
    case.sign(&case.digest, &[case.good_layer()]);
    let policy = case.policy("require");
    let addon = case.dir.path().join("addon");
    std::fs::write(
        addon.join("config.yaml"),
        format!(
            "name: T\nversion: \"1\"\nslug: trust_plan\ndescription: d\narch: [amd64, aarch64]\nimage: {}/{}\ncodenotary: author@example.com\n",
            case.registry.addr,
            case.repo()
        ),
    )
    .unwrap();
    let plan = |policy_mode: &str| -> serde_json::Value {
        let state = case.state();
        let out = case.cli(&[
            "plan",
            "--json",
            "--arch",
            "amd64",
            "--policy",
            policy_mode,
            addon.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--trust-policy",
            policy.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let before = plan("strict");
    assert_eq!(before["image_trust"]["status"], "not_fetched", "{before}");
    assert_eq!(before["image_trust"]["counts_in_rating"], false);
    let base = before["rating"].as_u64().unwrap();

    case.fetch();
    let strict = plan("strict");
    let trust = &strict["image_trust"];
    assert_eq!(trust["status"], "verified", "{strict}");
    assert_eq!(trust["counts_in_rating"], true);
    assert_eq!(trust["declared"]["codenotary"], "author@example.com");
    assert_eq!(strict["rating"].as_u64(), Some(base + 1));
    let factors = strict["rating_detail"]["factors"].as_array().unwrap();
    assert!(
        factors.iter().any(|f| f["delta"] == 1
            && f["reason"]
                .as_str()
                .unwrap()
                .starts_with("image verified: signed by key")),
        "{factors:?}"
    );

    let supervisor = plan("supervisor");
    assert_eq!(supervisor["image_trust"]["status"], "verified");
    assert_eq!(supervisor["image_trust"]["counts_in_rating"], false);
    assert_eq!(supervisor["rating"].as_u64(), Some(base));
}

/// The signature's worth in the rating: one, where the Supervisor had it; the 1-8 scale and
/// `docker_api`'s 1 still hold over it. Without a signer the rating is the Supervisor's.
#[test]
fn a_verified_signature_is_worth_one_and_never_beats_the_scale_or_docker_api() {
    use addon_sandbox::rating::{ApparmorMode, rate, rate_signed};
    let config = |extra: &str| {
        let dir = common::addon_dir(&common::minimal(extra));
        addon_sandbox::addon::load(dir.path()).config.unwrap()
    };
    let plain = config("");
    let mode = ApparmorMode::Default;
    assert_eq!(rate_signed(&plain, mode, None), rate(&plain, mode));
    assert_eq!(
        rate_signed(&plain, mode, Some("key sha256:1")).rating,
        rate(&plain, mode).rating + 1
    );
    let best = config("ingress: true\n");
    assert_eq!(rate(&best, ApparmorMode::Profile).rating, 8);
    let signed = rate_signed(&best, ApparmorMode::Profile, Some("key sha256:1"));
    assert_eq!(signed.rating, 8);
    let sum: i32 = signed.factors.iter().map(|f| f.delta).sum();
    assert_eq!(5 + sum, 8, "the factors still add up: {signed:?}");
    let docker = config("docker_api: true\n");
    assert_eq!(rate_signed(&docker, mode, Some("key sha256:1")).rating, 1);
}

/// A registry as public ones are: HTTPS, and a token for every pull (a `401` naming the token
/// service, which hands out a JWT). The same images as the case's registry, served by a second
/// `docker-registry` over its storage. `trust fetch` with the registry's CA trusted fetches and
/// verifies; without it the certificate is refused, with no fall back to plain HTTP.
#[test]
fn a_registry_over_https_with_tokens_is_fetched_from() {
    let Some(case) = Case::new("https") else {
        return;
    };
    let dir = case.dir.path();
    let (ca, server_key, server_cert) = token::server_certificate(dir);
    let (issuer_key, issuer_cert) = token::key_and_cert(dir, "issuer", "/CN=token-issuer", None);
    let tokens =
        token::TokenService::start(token::pull_token(&issuer_key, &issuer_cert, &case.repo()));
    let secure = Registry::start_secure(
        &registry::binary().unwrap(),
        &case.registry.data_dir(),
        &server_cert,
        &server_key,
        &tokens.realm,
        &issuer_cert,
    );
    let image = format!("{}/{}:1", secure.addr, case.repo());
    // Signed for the name it is fetched by (pushed through the first registry: same storage).
    let signed = sign::payload(&format!("{}/{}", secure.addr, case.repo()), &case.digest);
    case.sign(
        &case.digest,
        &[Layer::signed(signed, &case.signer, Some(&case.log))],
    );
    let state = case.state();
    let fetch = |extra: &[&str]| {
        let mut args = vec![
            "trust",
            "fetch",
            image.as_str(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        case.cli(&args)
    };
    let refused = fetch(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("TLS handshake refused") && stderr.contains("certificate"),
        "{stderr}"
    );
    assert!(
        tokens.asked.lock().unwrap().is_empty(),
        "no token was asked for over a refused TLS"
    );

    let out = fetch(&["--ca-file", ca.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = tokens.asked.lock().unwrap().clone();
    assert!(
        asked.iter().any(|l| l.contains("service=test-registry")
            && l.contains(&format!("scope=repository:{}:pull", case.repo()))),
        "{asked:?}"
    );
    // Offline, from what was fetched: the same signature verifies for this registry's name.
    std::fs::write(dir.join("cosign.pub"), case.signer.public_pem()).unwrap();
    let policy = case.write_policy_for(
        &secure.addr,
        "require",
        "    keys:\n      - file: cosign.pub\n",
        &sign::trusted_root(&case.log),
    );
    let verify = case.verify_image(&image, &policy);
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&verify.stderr)));
    assert_eq!(v["digest"], case.digest.as_str(), "{v}");
    assert_eq!(v["status"], "verified", "{v}");
}
