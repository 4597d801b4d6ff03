//! Image trust (issue 19): an add-on image runs only as what its signature covers. `trust
//! fetch` (online, `fetch`) stores an image's index, manifests and signatures in a
//! content-addressed cache (`cache`, an OCI layout under the state directory); `check`
//! (offline, what `run` calls) walks index → platform manifest → config digest from that
//! cache alone and verifies the signatures against the operator's policy (`policy`): cosign's
//! legacy signatures with pinned keys (`legacy`), and Sigstore bundles attached as OCI
//! referrers, keyless or with pinned keys (`bundle`). The launcher then compares the engine's
//! image ID with the verified config digest and creates the container by that ID.
//!
//! The add-on's own `codenotary` key is what the author says about themself: it is reported,
//! never used to trust.

pub mod bundle;
pub mod cache;
pub mod declared;
pub mod fetch;
pub mod http;
pub mod legacy;
pub mod policy;
pub mod reference;

use serde::Serialize;
use sha2::Digest as _;

pub use cache::Cache;
pub use declared::Declared;
pub use policy::{Mode, TrustPolicy};
pub use reference::Reference;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("trust cache: {0}")]
    Cache(String),
    #[error("trust cache: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Reference(#[from] reference::ReferenceError),
    #[error("registry: {0}")]
    Registry(String),
    #[error("trusted root {path}: {why}")]
    TrustedRoot { path: String, why: String },
}

/// The trusted root (Fulcio CAs, Rekor and CT log keys, timestamp authorities): the operator's
/// file when the policy names one, else Sigstore's production root shipped with the tool.
pub fn trusted_root(
    file: Option<&std::path::Path>,
) -> Result<sigstore_trust_root::TrustedRoot, TrustError> {
    match file {
        Some(path) => {
            sigstore_trust_root::TrustedRoot::from_file(path).map_err(|e| TrustError::TrustedRoot {
                path: path.display().to_string(),
                why: e.to_string(),
            })
        }
        None => sigstore_trust_root::TrustedRoot::from_json(
            sigstore_trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT,
        )
        .map_err(|e| TrustError::TrustedRoot {
            path: "(shipped)".into(),
            why: e.to_string(),
        }),
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let sum = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in sum {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The media types of a manifest list / index, whose entries are per-platform manifests.
pub const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// What the check found for one image.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The policy does not check this image.
    Off,
    /// A pinned signer signed the image's digest.
    Verified { signer: String },
    /// `trust fetch` has never stored this reference.
    NotFetched,
    /// Fetched, but no signature was found for its digest.
    Missing,
    /// Every signature found was refused, each for its reason.
    Refused { reasons: Vec<String> },
}

/// The verdict on one image: the mode that applies, what was found, and the digests the
/// launcher must see in the engine.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The normalised reference checked.
    pub image: String,
    pub mode: Mode,
    /// `pattern (line N)` of the rule that applied; none for the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The digest the signatures are on (index or manifest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The platform manifest's config digest: the image ID the engine must have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

impl Verdict {
    pub fn verified(&self) -> bool {
        matches!(self.outcome, Outcome::Verified { .. })
    }

    /// What is wrong, and how to fix it, for a verdict that is not `Verified` or `Off`.
    pub fn problem(&self, fetch_hint: &str) -> Option<String> {
        let fetch = format!("addon-sandbox trust fetch{fetch_hint} {}", self.image);
        match &self.outcome {
            Outcome::Off | Outcome::Verified { .. } => None,
            Outcome::NotFetched => Some(format!(
                "no signature of {} is in the trust cache (nothing was fetched for it): run `{fetch}` while online",
                self.image
            )),
            Outcome::Missing => Some(format!(
                "{} ({}) has no signature in the trust cache: its publisher did not sign it, or it was signed after the last fetch (refresh with `{fetch}`)",
                self.image,
                self.digest.as_deref().unwrap_or("?")
            )),
            Outcome::Refused { reasons } => Some(match &self.digest {
                Some(digest) => format!(
                    "no signature of {} ({digest}) is trusted: {}",
                    self.image,
                    reasons.join("; ")
                ),
                // Nothing was looked up: no rule names a signer for this image.
                None => format!("{} is not verified: {}", self.image, reasons.join("; ")),
            }),
        }
    }
}

/// Check `image` (as the plan or `--image` names it) from the cache alone, for the host
/// architecture `arch` (`amd64`, `aarch64`, ...).
pub fn check(
    policy: &TrustPolicy,
    cache: &Cache,
    image: &str,
    arch: &str,
    root: Option<&sigstore_trust_root::TrustedRoot>,
) -> Result<Verdict, TrustError> {
    let reference = Reference::parse(image)?;
    let applied = policy.applied(&reference.name(), arch);
    let mut verdict = Verdict {
        image: reference.to_string(),
        mode: applied.mode,
        rule: applied
            .rule
            .map(|r| format!("{} (line {})", r.pattern, r.line)),
        outcome: Outcome::Off,
        digest: None,
        config: None,
    };
    let Some(rule) = applied.rule.filter(|_| applied.mode != Mode::Off) else {
        if applied.mode != Mode::Off {
            // The default mode: no rule names a signer for this image.
            verdict.outcome = Outcome::Refused {
                reasons: vec![format!(
                    "no rule of the trust policy names a signer for {}",
                    reference.name()
                )],
            };
        }
        return Ok(verdict);
    };
    let index = cache.index()?;
    let Some(top) = cache.image(&index, &verdict.image) else {
        verdict.outcome = Outcome::NotFetched;
        return Ok(verdict);
    };
    let (digest, config) = walk(cache, &top, arch)?;
    verdict.digest = Some(digest.clone());
    verdict.config = Some(config);
    let signatures = Cache::signatures(&index, &digest);
    if signatures.is_empty() {
        verdict.outcome = Outcome::Missing;
        return Ok(verdict);
    }
    let mut reasons = Vec::new();
    for sig in signatures {
        let bytes = cache.blob(&sig.digest)?;
        let result = match sig.annotations.get(cache::FORMAT).map(String::as_str) {
            Some("cosign-legacy") => legacy::verify(cache, &bytes, &digest, rule, root),
            Some(cache::SIGSTORE_BUNDLE) => verify_bundle(&bytes, &digest, rule, root),
            other => Err(vec![format!("signature format {other:?} is not supported")]),
        };
        match result {
            Ok(signer) => {
                verdict.outcome = Outcome::Verified { signer };
                return Ok(verdict);
            }
            Err(why) => reasons.extend(why),
        }
    }
    verdict.outcome = Outcome::Refused { reasons };
    Ok(verdict)
}

/// A Sigstore bundle attached to the image: its DSSE in-toto statement must name `digest`.
fn verify_bundle(
    bytes: &[u8],
    digest: &str,
    rule: &policy::Rule,
    root: Option<&sigstore_trust_root::TrustedRoot>,
) -> Result<String, Vec<String>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| vec!["Sigstore bundle: it is not UTF-8 JSON".to_owned()])?;
    let root = root.ok_or_else(|| vec!["Sigstore bundle: no trusted root is loaded".to_owned()])?;
    bundle::verify(text, bundle::Artifact::Digest(digest), rule, root)
        .map_err(|why| vec![format!("Sigstore bundle: {why}")])
}

/// The image's top digest and, through an index's entry for `linux/<arch>`, the config digest
/// of its platform manifest; every blob read is checked against its digest.
fn walk(
    cache: &Cache,
    top: &cache::Descriptor,
    arch: &str,
) -> Result<(String, String), TrustError> {
    let bytes = cache.blob(&top.digest)?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| TrustError::Cache(format!("{} is not JSON: {e}", top.digest)))?;
    let media = doc["mediaType"].as_str().unwrap_or(&top.media_type);
    let manifest = if INDEX_TYPES.contains(&media) || doc.get("manifests").is_some() {
        let (os_arch, variant) = platform_of(arch);
        let entry = doc["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                m["platform"]["os"] == "linux"
                    && m["platform"]["architecture"] == os_arch
                    && variant.is_none_or(|v| m["platform"]["variant"] == v)
            })
            .ok_or_else(|| {
                TrustError::Cache(format!(
                    "the index {} has no linux/{os_arch} manifest",
                    top.digest
                ))
            })?;
        let digest = entry["digest"].as_str().unwrap_or_default();
        serde_json::from_slice(&cache.blob(digest)?)
            .map_err(|e| TrustError::Cache(format!("{digest} is not JSON: {e}")))?
    } else {
        doc
    };
    let config = manifest["config"]["digest"]
        .as_str()
        .filter(|d| reference::is_sha256_digest(d))
        .ok_or_else(|| {
            TrustError::Cache(format!(
                "the manifest of {} has no config digest",
                top.digest
            ))
        })?;
    Ok((top.digest.clone(), config.to_owned()))
}

/// The Supervisor's architecture names as OCI platforms.
fn platform_of(arch: &str) -> (&str, Option<&str>) {
    match arch {
        "aarch64" => ("arm64", None),
        "armv7" => ("arm", Some("v7")),
        "armhf" => ("arm", Some("v6")),
        "i386" => ("386", None),
        other => (other, None),
    }
}

/// What a plan says of its image: the verdict, whether the rating counts it, and what the
/// add-on declares about its own signing (reported, never trusted).
#[derive(Clone, Debug, Serialize)]
pub struct ImageTrust {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The rating counts the verification (+1, the Supervisor's old `signed`).
    pub counts_in_rating: bool,
    pub declared: Declared,
}

/// The plan's image trust, and its rating with it: under the strict policy an image verified
/// against a signer the operator's policy pins is worth the Supervisor's old `+1 if signed`
/// (the factor in `rating_detail` names the signer); the supervisor policy keeps the
/// Supervisor's rating, whose `signed` is always false. Nothing the add-on declares counts.
pub fn rate_plan(
    plan: &mut crate::plan::SandboxPlan,
    config: &crate::config::AddonConfig,
    verdict: Verdict,
    declared: Declared,
) -> ImageTrust {
    let signer = match &verdict.outcome {
        Outcome::Verified { signer } if plan.policy == crate::plan::PolicyMode::Strict => {
            Some(signer.as_str())
        }
        _ => None,
    };
    if signer.is_some() {
        plan.rating_detail = crate::rating::rate_signed(config, plan.apparmor_mode, signer);
        plan.rating = plan.rating_detail.rating;
    }
    ImageTrust {
        counts_in_rating: signer.is_some(),
        verdict,
        declared,
    }
}
