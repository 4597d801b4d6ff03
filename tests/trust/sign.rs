//! cosign's legacy signature format, made by the tests (no cosign here): the simple-signing
//! payload signed with an ECDSA P-256 key, pushed as the `sha256-<hex>.sig` manifest; and a
//! private Rekor-like log whose signed entry timestamps (SETs) a test trusted root lists.
// Shared with tests/trust_image_bundle.rs, which uses only the Signer.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sigstore_crypto::KeyPair;

use super::registry::Registry;

pub struct Signer {
    pub key: KeyPair,
}

impl Signer {
    pub fn new() -> Signer {
        Signer {
            key: KeyPair::generate_ecdsa_p256().unwrap(),
        }
    }

    pub fn public_pem(&self) -> String {
        self.key.public_key_der().unwrap().to_pem()
    }

    pub fn der(&self) -> Vec<u8> {
        self.key.public_key_der().unwrap().as_bytes().to_vec()
    }
}

/// cosign's simple-signing payload for `digest` of `repo_name`.
pub fn payload(repo_name: &str, digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{repo_name}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

/// A log entry made by the private log: the hashedrekord of (payload, signature, key), and
/// the SET over it as cosign attaches it (`dev.sigstore.cosign/bundle`).
pub fn set(
    log: &Signer,
    signed_payload: &[u8],
    signature: &[u8],
    signer: &Signer,
    index: i64,
) -> String {
    let pem = signer.public_pem();
    let body = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": &addon_sandbox::trust::sha256_digest(signed_payload)[7..]}},
            "signature": {"content": STANDARD.encode(signature), "publicKey": {"content": STANDARD.encode(pem)}}
        }
    });
    let body = STANDARD.encode(serde_json::to_vec(&body).unwrap());
    let log_id = addon_sandbox::trust::sha256_digest(&log.der())[7..].to_owned();
    let canonical = format!(
        r#"{{"body":"{body}","integratedTime":1700000000,"logID":"{log_id}","logIndex":{index}}}"#
    );
    let set = log.key.sign(canonical.as_bytes()).unwrap();
    serde_json::json!({
        "SignedEntryTimestamp": STANDARD.encode(set.as_bytes()),
        "Payload": {"body": body, "integratedTime": 1700000000, "logID": log_id, "logIndex": index}
    })
    .to_string()
}

/// A trusted root whose only transparency log is `log`.
pub fn trusted_root(log: &Signer) -> String {
    let der = log.der();
    let key_id = STANDARD.encode(hex_bytes(&addon_sandbox::trust::sha256_digest(&der)[7..]));
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": "http://127.0.0.1",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": STANDARD.encode(&der), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": key_id}
        }],
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": []
    })
    .to_string()
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// One signature layer as cosign writes it.
pub struct Layer {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
    pub set: Option<String>,
}

impl Layer {
    /// `payload` signed by `signer`, logged by `log` when given.
    pub fn signed(payload: Vec<u8>, signer: &Signer, log: Option<&Signer>) -> Layer {
        let signature = signer.key.sign(&payload).unwrap().as_bytes().to_vec();
        let set = log.map(|l| set(l, &payload, &signature, signer, 7));
        Layer {
            payload,
            signature,
            set,
        }
    }
}

/// Push the `sha256-<hex>.sig` manifest of `digest` in `repo` holding `layers`.
pub fn push_signature(registry: &Registry, repo: &str, digest: &str, layers: &[Layer]) {
    let config = registry.put_blob(repo, b"{}");
    let mut descs = Vec::new();
    for layer in layers {
        let d = registry.put_blob(repo, &layer.payload);
        let mut annotations = serde_json::json!({
            "dev.cosignproject.cosign/signature": STANDARD.encode(&layer.signature)
        });
        if let Some(set) = &layer.set {
            annotations["dev.sigstore.cosign/bundle"] = set.clone().into();
        }
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": d,
            "size": layer.payload.len(),
            "annotations": annotations
        }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": descs
    });
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    registry.put_manifest(
        repo,
        &tag,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
}
