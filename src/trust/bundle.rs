//! Sigstore bundles (v0.1–v0.3): verified offline by `sigstore-verify` against the trusted
//! root (certificate chain to Fulcio, SCTs, the Rekor entry with its inclusion proof,
//! checkpoint and promise, RFC 3161 timestamps), then the signer judged against the rule: a
//! keyless certificate by the rule's keyless signers (the OIDC issuer exactly, the identity by
//! anchored prefix or regex, the source repository and ref exactly), a bundle whose
//! verification material is a public key by the rule's pinned keys. Each way a bundle fails
//! gets its own message, so the operator can tell a changed payload from another image's
//! signature from a stale trusted root.

use sigstore_trust_root::TrustedRoot;
use sigstore_types::Bundle;
use sigstore_types::bundle::VerificationMaterialContent;
use sigstore_verify::{
    CertificateError, Error, PublicKeyVerificationPolicy, TransparencyLogError, VerificationPolicy,
    VerificationResult,
};

use super::policy::{Keyless, Rule};

/// The artifact type of a Sigstore bundle attached to an image as an OCI referrer (cosign
/// writes v0.3); any `application/vnd.dev.sigstore.bundle` type is fetched.
pub const ARTIFACT_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// What a bundle signs: the artifact's bytes (a blob) or a digest a DSSE in-toto statement
/// must name as its subject (an image).
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    /// `sha256:<hex>`.
    Digest(&'a str),
}

/// The signer (`keyless <identity> (issuer <issuer>)`, or a pinned key's label) if `bundle`
/// verifies for `artifact` and the rule accepts who signed it; otherwise why not.
pub fn verify(
    bundle_json: &str,
    artifact: Artifact<'_>,
    rule: &Rule,
    root: &TrustedRoot,
) -> Result<String, String> {
    let bundle =
        Bundle::from_json(bundle_json).map_err(|e| format!("the bundle is malformed: {e}"))?;
    if matches!(
        bundle.verification_material.content,
        VerificationMaterialContent::PublicKey(_)
    ) {
        return verify_keyed(&bundle, &artifact, rule, root);
    }
    // Who signed is judged below, by the policy's rules (prefix, regex, repository, ref).
    let result = run(
        &bundle,
        &artifact,
        &VerificationPolicy::any_identity(),
        root,
    )
    .map_err(|e| explain(&e, &bundle, &artifact))?;
    let cert = result
        .certificate()
        .ok_or("the bundle carries no signing certificate")?;
    let identity = cert
        .identity
        .as_ref()
        .map(|i| i.as_str().to_owned())
        .unwrap_or_default();
    let issuer = cert.issuer.clone().unwrap_or_default();
    let claims = &cert.ci_claims;
    let mut refusals = Vec::new();
    for signer in &rule.keyless {
        match judge(signer, &identity, &issuer, claims) {
            Ok(()) => return Ok(format!("keyless {identity} (issuer {issuer})")),
            Err(why) => refusals.push(why),
        }
    }
    if refusals.is_empty() {
        refusals.push("the rule names no keyless signer".into());
    }
    Err(format!(
        "signed by {identity} (issuer {issuer}), which no keyless signer of the rule for {} (line {}) accepts: {}",
        rule.pattern,
        rule.line,
        refusals.join("; ")
    ))
}

fn run(
    bundle: &Bundle,
    artifact: &Artifact<'_>,
    policy: &(impl sigstore_verify::Policy + ?Sized),
    root: &TrustedRoot,
) -> Result<VerificationResult, Error> {
    match artifact {
        Artifact::Bytes(bytes) => sigstore_verify::verify(*bytes, bundle, policy, root),
        Artifact::Digest(digest) => {
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            let hash = sigstore_types::Sha256Hash::from_hex(hex).map_err(Error::Types)?;
            sigstore_verify::verify(hash, bundle, policy, root)
        }
    }
}

/// A bundle signed with a key (its verification material names a public key, not a
/// certificate): verified with each of the rule's pinned keys in turn. The key in the bundle
/// is only a hint; the pinned key is what the signature and the log entry are checked with.
fn verify_keyed(
    bundle: &Bundle,
    artifact: &Artifact<'_>,
    rule: &Rule,
    root: &TrustedRoot,
) -> Result<String, String> {
    if rule.keys.is_empty() {
        return Err(format!(
            "the bundle is signed by a key, and the rule for {} (line {}) pins none",
            rule.pattern, rule.line
        ));
    }
    let mut last = None;
    for key in &rule.keys {
        let policy =
            PublicKeyVerificationPolicy::new(sigstore_types::DerPublicKey::new(key.spki.clone()));
        match run(bundle, artifact, &policy, root) {
            Ok(_) => {
                let index = bundle
                    .verification_material
                    .tlog_entries
                    .first()
                    .map(|e| e.log_index.get());
                return Ok(match index {
                    Some(i) => format!(
                        "{} (Sigstore bundle, transparency log index {i})",
                        key.label
                    ),
                    None => format!("{} (Sigstore bundle)", key.label),
                });
            }
            // Another key's signature fails here; anything else is the same for every key.
            Err(
                Error::SignatureInvalid(_)
                | Error::TransparencyLog(TransparencyLogError::EntryMismatch(_)),
            ) => {}
            Err(e) => last = Some(explain(&e, bundle, artifact)),
        }
    }
    Err(last.unwrap_or_else(|| {
        let pinned: Vec<&str> = rule.keys.iter().map(|k| k.label.as_str()).collect();
        format!(
            "the bundle verifies with none of the pinned keys ({}): it was signed by another key, or its payload was changed after signing",
            pinned.join(", ")
        )
    }))
}

/// What a verification failure means to the operator, with the crate's own words after it.
fn explain(e: &Error, bundle: &Bundle, artifact: &Artifact<'_>) -> String {
    match e {
        Error::ArtifactMismatch(_) => match artifact {
            Artifact::Digest(digest) => format!(
                "the bundle signs {}, not this image's {digest}: a signature of another image ({e})",
                subjects(bundle)
            ),
            Artifact::Bytes(_) => format!(
                "the bundle signs another artifact: the artifact was changed, or the bundle is another artifact's ({e})"
            ),
        },
        Error::SignatureInvalid(_) => format!(
            "the bundle's signature does not verify over its content: its payload was changed after signing ({e})"
        ),
        Error::TransparencyLog(t) if stale_log(t) => format!(
            "the trusted root has no key of the transparency log that recorded this signature valid when it was recorded: a stale or wrong trusted_root.json, refresh it ({e})"
        ),
        Error::Certificate(
            CertificateError::ChainInvalid(_) | CertificateError::NoValidAuthority { .. },
        ) => format!(
            "the bundle's certificate does not chain to a certificate authority the trusted root lists for the signing time: a stale or wrong trusted_root.json, or not a Sigstore certificate ({e})"
        ),
        _ => format!("the bundle does not verify against the trusted root: {e}"),
    }
}

/// The log's key is not in the trusted root, or not for the time the entry was made.
fn stale_log(t: &TransparencyLogError) -> bool {
    match t {
        TransparencyLogError::UnknownLog { .. } => true,
        TransparencyLogError::InclusionPromise(s) => s.contains("No log key valid"),
        TransparencyLogError::Checkpoint(s) => s.contains("No matching Rekor key"),
        _ => false,
    }
}

/// The subject digests a bundle's in-toto statement names (unverified: for messages only).
fn subjects(bundle: &Bundle) -> String {
    let sigstore_types::SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return "no in-toto statement".into();
    };
    let Ok(statement) = serde_json::from_slice::<serde_json::Value>(envelope.payload.as_bytes())
    else {
        return "an unreadable statement".into();
    };
    let names: Vec<String> = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["digest"]["sha256"].as_str())
        .map(|d| format!("sha256:{d}"))
        .collect();
    if names.is_empty() {
        "no sha256 subject".into()
    } else {
        names.join(", ")
    }
}

fn judge(
    signer: &Keyless,
    identity: &str,
    issuer: &str,
    claims: &sigstore_crypto::FulcioCiClaims,
) -> Result<(), String> {
    if signer.issuer != issuer {
        return Err(format!("issuer is not {}", signer.issuer));
    }
    if !signer.identity.matches(identity) {
        return Err(format!("not an {}", signer.identity.describe()));
    }
    if let Some(repo) = &signer.repository {
        let actual = claims.source_repository_uri.as_deref().unwrap_or_default();
        let full = format!("https://github.com/{repo}");
        if actual != repo && actual != full {
            return Err(format!("source repository is {actual:?}, not {repo}"));
        }
    }
    if let Some(git_ref) = &signer.git_ref {
        let actual = claims.source_repository_ref.as_deref().unwrap_or_default();
        if actual != git_ref {
            return Err(format!("source ref is {actual:?}, not {git_ref}"));
        }
    }
    Ok(())
}
