//! Sigstore bundles (v0.1–v0.3): verified offline by `sigstore-verify` against the trusted
//! root (certificate chain to Fulcio, SCTs, the Rekor entry, RFC 3161 timestamps), then the
//! certificate judged against the rule's keyless signers: the OIDC issuer exactly, the identity
//! by anchored prefix or regex, the source repository and ref exactly.

use sigstore_trust_root::TrustedRoot;
use sigstore_types::Bundle;
use sigstore_verify::VerificationPolicy;

use super::policy::{Keyless, Rule};

/// What a bundle signs: the artifact's bytes (a blob) or a digest a DSSE in-toto statement
/// must name as its subject (an image).
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    /// `sha256:<hex>`.
    Digest(&'a str),
}

/// The signer (`keyless <identity> (issuer <issuer>)`) if `bundle` verifies for `artifact`
/// and a keyless signer of `rule` accepts its certificate; otherwise why not.
pub fn verify(
    bundle_json: &str,
    artifact: Artifact<'_>,
    rule: &Rule,
    root: &TrustedRoot,
) -> Result<String, String> {
    let bundle =
        Bundle::from_json(bundle_json).map_err(|e| format!("the bundle is malformed: {e}"))?;
    // Who signed is judged below, by the policy's rules (prefix, regex, repository, ref).
    let policy = VerificationPolicy::any_identity();
    let result = match artifact {
        Artifact::Bytes(bytes) => sigstore_verify::verify(bytes, &bundle, &policy, root),
        Artifact::Digest(digest) => {
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            let hash = sigstore_types::Sha256Hash::from_hex(hex)
                .map_err(|e| format!("{digest}: {e}"))?;
            sigstore_verify::verify(hash, &bundle, &policy, root)
        }
    }
    .map_err(|e| {
        format!("the bundle does not verify against the trusted root: {e} (a changed artifact, or a stale trusted_root.json that lacks the log or CA that signed it)")
    })?;
    let cert = result
        .certificate()
        .ok_or("the bundle is signed by a key, not a keyless certificate: pin the key instead")?;
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
