//! cosign's legacy signatures: the `sha256-<digest>.sig` tag's manifest, one layer per
//! signature, each a simple-signing payload with the signature (and optionally a certificate
//! and a Rekor SET) in its annotations. Verified against the rule's pinned keys only.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sigstore_types::{DerPublicKey, SignatureBytes};

use super::cache::{Cache, Descriptor};
use super::policy::Rule;
use super::sha256_digest;

pub const PAYLOAD_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub const SET: &str = "dev.sigstore.cosign/bundle";
const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: PayloadImage,
}

#[derive(Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Rekor's signed entry timestamp as cosign attaches it.
#[derive(Deserialize)]
struct Set {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: SetPayload,
}

#[derive(Deserialize, serde::Serialize)]
struct SetPayload {
    // Field order is the canonical (sorted) order the log signed.
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: String,
    #[serde(rename = "logIndex")]
    log_index: i64,
}

/// The first layer of a signature manifest that a pinned key of `rule` signed for `subject`:
/// `Ok(signer)`, or every layer's reason for refusing it.
pub fn verify(
    cache: &Cache,
    manifest: &[u8],
    subject: &str,
    rule: &Rule,
    root: Option<&sigstore_trust_root::TrustedRoot>,
) -> Result<String, Vec<String>> {
    let manifest: Manifest = serde_json::from_slice(manifest).map_err(|e| {
        vec![format!(
            "the signature manifest is not an OCI manifest: {e}"
        )]
    })?;
    let mut reasons = Vec::new();
    for (i, layer) in manifest.layers.iter().enumerate() {
        match verify_layer(cache, layer, subject, rule, root) {
            Ok(signer) => return Ok(signer),
            Err(why) => reasons.push(format!("legacy signature {}: {why}", i + 1)),
        }
    }
    if reasons.is_empty() {
        reasons.push("the legacy signature manifest has no signature layer".into());
    }
    Err(reasons)
}

fn verify_layer(
    cache: &Cache,
    layer: &Descriptor,
    subject: &str,
    rule: &Rule,
    root: Option<&sigstore_trust_root::TrustedRoot>,
) -> Result<String, String> {
    let payload = cache.blob(&layer.digest).map_err(|e| e.to_string())?;
    let signature = layer
        .annotations
        .get(SIGNATURE)
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or("it has no base64 signature annotation")?;
    let signature = SignatureBytes::new(signature);
    let logged = match layer.annotations.get(SET) {
        Some(set) => Some(check_set(set, root)?),
        None => None,
    };
    let signer = rule.keys.iter().find(|k| {
        k.verification_key()
            .is_some_and(|v| v.verify(&payload, &signature).is_ok())
    });
    let Some(signer) = signer else {
        return Err(not_pinned(&payload, logged.as_ref(), rule, layer));
    };
    let claims: Payload = serde_json::from_slice(&payload)
        .map_err(|e| format!("its payload is not a simple-signing document: {e}"))?;
    if claims.critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(format!(
            "its payload's type is {:?}, not {SIMPLE_SIGNING_TYPE:?}",
            claims.critical.kind
        ));
    }
    if claims.critical.image.digest != subject {
        return Err(format!(
            "{} signed {}, not this image's {subject}: a signature of another image",
            signer.label, claims.critical.image.digest
        ));
    }
    Ok(match logged {
        Some(entry) => format!(
            "{} (transparency log index {})",
            signer.label, entry.log_index
        ),
        None => signer.label.clone(),
    })
}

/// Why no pinned key verifies: with a verified log entry, whether the payload was changed or
/// another key signed; without one, both are possible and the message says so.
fn not_pinned(payload: &[u8], logged: Option<&Logged>, rule: &Rule, layer: &Descriptor) -> String {
    let pinned: Vec<&str> = rule.keys.iter().map(|k| k.label.as_str()).collect();
    let Some(entry) = logged else {
        let keyless = if layer.annotations.contains_key(CERTIFICATE) {
            " (it carries a keyless certificate: keyless images are verified from Sigstore bundles)"
        } else {
            ""
        };
        return format!(
            "it verifies with none of the pinned keys ({}){keyless}: it was signed by another key, or its payload was changed after signing",
            pinned.join(", ")
        );
    };
    let hash = sha256_digest(payload);
    if entry.payload_hash != hash["sha256:".len()..] {
        return format!(
            "its payload was changed after signing: the transparency log recorded sha256:{}, the payload is {hash}",
            entry.payload_hash
        );
    }
    format!(
        "it was signed by {}, which the rule for {} (line {}) does not pin (pinned: {})",
        entry.signer,
        rule.pattern,
        rule.line,
        pinned.join(", ")
    )
}

struct Logged {
    log_index: i64,
    /// The hex SHA-256 of the signed payload, as the log recorded it.
    payload_hash: String,
    /// `key sha256:<16 hex>` of the public key the log recorded.
    signer: String,
}

/// A Rekor SET verified with the trusted root's log keys, and the hashedrekord it logged.
fn check_set(
    text: &str,
    root: Option<&sigstore_trust_root::TrustedRoot>,
) -> Result<Logged, String> {
    let set: Set = serde_json::from_str(text)
        .map_err(|e| format!("its transparency log entry (SET) is malformed: {e}"))?;
    let root = root.ok_or("it has a transparency log entry but no trusted root is loaded")?;
    let key = root
        .tlogs
        .iter()
        .find(|t| sha256_digest(t.public_key.raw_bytes.as_bytes())[7..] == set.payload.log_id)
        .ok_or_else(|| {
            format!(
                "its transparency log entry is from log {}, which the trusted root does not list (a stale or wrong trusted_root.json?)",
                set.payload.log_id
            )
        })?;
    let canonical = serde_json::to_vec(&set.payload).expect("the SET payload serialises");
    let signature = STANDARD
        .decode(&set.signed_entry_timestamp)
        .map_err(|_| "its SET is not base64")?;
    let verified = sigstore_crypto::VerificationKey::from_spki(&DerPublicKey::new(
        key.public_key.raw_bytes.as_bytes().to_vec(),
    ))
    .and_then(|k| k.verify(&canonical, &SignatureBytes::new(signature)));
    if verified.is_err() {
        return Err(
            "its transparency log entry's signature (SET) does not verify with the log's key"
                .into(),
        );
    }
    let body = STANDARD
        .decode(&set.payload.body)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .ok_or("its logged entry is not JSON")?;
    let spec = &body["spec"];
    let payload_hash = spec["data"]["hash"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let signer = spec["signature"]["publicKey"]["content"]
        .as_str()
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|pem| DerPublicKey::from_pem(&String::from_utf8_lossy(&pem)).ok())
        .map(|der| format!("key {}", &sha256_digest(der.as_bytes())[..23]))
        .unwrap_or_else(|| "a certificate".into());
    Ok(Logged {
        log_index: set.payload.log_index,
        payload_hash,
        signer,
    })
}
