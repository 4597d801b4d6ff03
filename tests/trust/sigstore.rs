//! A private Sigstore made by the tests, so bundles can be signed here and verified offline
//! by `sigstore-verify` exactly as production bundles are: a Fulcio-like CA (a root
//! certificate, and leaf certificates carrying the SAN identity, the OIDC issuer extensions
//! 1.3.6.1.4.1.57264.1.8 and the legacy .1.1, the code-signing EKU and an embedded SCT), a
//! CT log (the SCT over the precertificate TBS, RFC 6962), a Rekor-like log (a `dsse` v0.0.1
//! entry with its signed entry timestamp, a Merkle inclusion proof and a signed checkpoint),
//! the `trusted_root.json` that lists the three, and OCI 1.1 referrers pushed with the
//! referrers tag schema (Debian's docker-registry has no referrers API).
// tests/trust_bundle.rs uses the signing half without a registry.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sigstore_crypto::KeyPair;
use x509_cert::der::asn1::{BitString, Ia5String, ObjectIdentifier, OctetString, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

use super::registry::Registry;

pub const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";

pub struct Sigstore {
    ca: KeyPair,
    ca_name: Name,
    ca_cert: Vec<u8>,
    ct: KeyPair,
    rekor: KeyPair,
}

/// Who signs a bundle: a keyless certificate from the private CA, or a key.
pub enum By<'a> {
    Keyless { identity: &'a str, issuer: &'a str },
    Key(&'a KeyPair),
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    *sigstore_crypto::sha256(bytes).as_bytes()
}

fn der_of(key: &KeyPair) -> Vec<u8> {
    key.public_key_der().unwrap().as_bytes().to_vec()
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
        parameters: None,
    }
}

fn ext(oid: &str, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid.parse().unwrap(),
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

fn at(secs: i64) -> Time {
    Time::try_from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)).unwrap()
}

fn tbs(
    serial: u8,
    issuer: &Name,
    subject: Name,
    key: &KeyPair,
    valid: (i64, i64),
    extensions: Vec<Extension>,
) -> TbsCertificate {
    TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(&[serial, 0x5a, 0x17]).unwrap(),
        signature: ecdsa_sha256(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: at(valid.0),
            not_after: at(valid.1),
        },
        subject,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&der_of(key)).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    }
}

fn signed(tbs: TbsCertificate, by: &KeyPair) -> Vec<u8> {
    let signature = by.sign(&tbs.to_der().unwrap()).unwrap();
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(signature.as_bytes()).unwrap(),
    }
    .to_der()
    .unwrap()
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An in-toto statement (cosign's signing predicate) whose subject is `name@digest`.
pub fn statement(name: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {}
    }))
    .unwrap()
}

impl Sigstore {
    pub fn new() -> Sigstore {
        let ca = KeyPair::generate_ecdsa_p256().unwrap();
        let ca_name: Name = "CN=test-fulcio,O=addon-sandbox-test".parse().unwrap();
        let usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
        let root = tbs(
            1,
            &ca_name,
            ca_name.clone(),
            &ca,
            (1_577_836_800, 2_524_608_000), // 2020 to 2050
            vec![
                ext(
                    "2.5.29.19",
                    true,
                    BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(1),
                    }
                    .to_der()
                    .unwrap(),
                ),
                ext("2.5.29.15", true, usage.to_der().unwrap()),
            ],
        );
        let ca_cert = signed(root, &ca);
        Sigstore {
            ca,
            ca_name,
            ca_cert,
            ct: KeyPair::generate_ecdsa_p256().unwrap(),
            rekor: KeyPair::generate_ecdsa_p256().unwrap(),
        }
    }

    /// The trusted root listing the CA, the CT log and the Rekor log; `log_end`, when given,
    /// ends the Rekor key's validity (a stale root for entries logged after it).
    pub fn trusted_root(&self, log_end: Option<&str>) -> String {
        let log = |key: &KeyPair, url: &str, end: Option<&str>| {
            let mut valid = serde_json::json!({"start": "2020-01-01T00:00:00Z"});
            if let Some(end) = end {
                valid["end"] = end.into();
            }
            serde_json::json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": STANDARD.encode(der_of(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": valid},
                "logId": {"keyId": STANDARD.encode(sha256(&der_of(key)))}
            })
        };
        serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.rekor, "https://rekor.test", log_end)],
            "certificateAuthorities": [{
                "subject": {"organization": "addon-sandbox-test", "commonName": "test-fulcio"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": [{"rawBytes": STANDARD.encode(&self.ca_cert)}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            }],
            "ctlogs": [log(&self.ct, "https://ctfe.test", None)],
            "timestampAuthorities": []
        })
        .to_string()
    }

    /// A Fulcio-like leaf for `key`, valid ten minutes from `from`, with an embedded SCT.
    fn leaf(&self, identity: &str, issuer: &str, key: &KeyPair, from: i64) -> Vec<u8> {
        let san = SubjectAltName(vec![GeneralName::Rfc822Name(
            Ia5String::new(identity).unwrap(),
        )]);
        let code_signing = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
        let mut tbs = tbs(
            2,
            &self.ca_name,
            Name::default(),
            key,
            (from, from + 600),
            vec![
                ext(
                    "2.5.29.15",
                    true,
                    KeyUsage(KeyUsages::DigitalSignature.into())
                        .to_der()
                        .unwrap(),
                ),
                ext(
                    "2.5.29.37",
                    false,
                    ExtendedKeyUsage(vec![code_signing]).to_der().unwrap(),
                ),
                ext("2.5.29.17", true, san.to_der().unwrap()),
                // The legacy issuer extension holds the bare string, the current one DER.
                ext("1.3.6.1.4.1.57264.1.1", false, issuer.as_bytes().to_vec()),
                ext(
                    "1.3.6.1.4.1.57264.1.8",
                    false,
                    Utf8StringRef::new(issuer).unwrap().to_der().unwrap(),
                ),
            ],
        );
        let sct = self.sct(&tbs.to_der().unwrap(), from * 1000);
        tbs.extensions.as_mut().unwrap().push(ext(
            "1.3.6.1.4.1.11129.2.4.2",
            false,
            OctetString::new(sct).unwrap().to_der().unwrap(),
        ));
        signed(tbs, &self.ca)
    }

    /// The TLS-encoded SCT list with one SCT from the CT log over the precertificate.
    fn sct(&self, precert_tbs: &[u8], millis: i64) -> Vec<u8> {
        let mut data = vec![0u8, 0u8]; // v1, certificate_timestamp
        data.extend((millis as u64).to_be_bytes());
        data.extend(1u16.to_be_bytes()); // precert_entry
        data.extend(sha256(&der_of(&self.ca)));
        data.extend(&(precert_tbs.len() as u32).to_be_bytes()[1..]);
        data.extend(precert_tbs);
        data.extend(0u16.to_be_bytes()); // no extensions
        let signature = self.ct.sign(&data).unwrap();
        let signature = signature.as_bytes();
        let mut sct = vec![0u8];
        sct.extend(sha256(&der_of(&self.ct)));
        sct.extend((millis as u64).to_be_bytes());
        sct.extend(0u16.to_be_bytes());
        sct.extend([4u8, 3u8]); // sha256, ecdsa
        sct.extend((signature.len() as u16).to_be_bytes());
        sct.extend(signature);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(sct);
        list
    }

    /// The log's entry for a DSSE envelope: the `dsse` v0.0.1 body, its SET, and an inclusion
    /// proof (leaf 1 of a tree of 2) with the log's signed checkpoint.
    fn entry(
        &self,
        envelope: &serde_json::Value,
        payload: &[u8],
        signature: &[u8],
        verifier: &str,
        integrated: i64,
    ) -> serde_json::Value {
        let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let body = serde_json::to_vec(&serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex(sha256(&serde_json::to_vec(envelope).unwrap()))},
                "payloadHash": {"algorithm": "sha256", "value": hex(sha256(payload))},
                "signatures": [{"signature": STANDARD.encode(signature), "verifier": STANDARD.encode(verifier)}]
            }
        }))
        .unwrap();
        let body64 = STANDARD.encode(&body);
        let log_id = sha256(&der_of(&self.rekor));
        let index = 1;
        let set = format!(
            r#"{{"body":"{body64}","integratedTime":{integrated},"logID":"{}","logIndex":{index}}}"#,
            hex(log_id)
        );
        let set = self.rekor.sign(set.as_bytes()).unwrap();
        let leaf = |bytes: &[u8]| sha256(&[&[0u8][..], bytes].concat());
        let earlier = leaf(b"an earlier entry");
        let root = sha256(&[&[1u8][..], &earlier, &leaf(&body)].concat());
        let note = format!("addon-sandbox-test-log\n2\n{}\n", STANDARD.encode(root));
        let mut hinted = log_id[..4].to_vec();
        hinted.extend(self.rekor.sign(note.as_bytes()).unwrap().as_bytes());
        let checkpoint = format!(
            "{note}\n\u{2014} addon-sandbox-test-log {}\n",
            STANDARD.encode(hinted)
        );
        serde_json::json!({
            "logIndex": index.to_string(),
            "logId": {"keyId": STANDARD.encode(log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": integrated.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": STANDARD.encode(set.as_bytes())},
            "inclusionProof": {
                "logIndex": index.to_string(),
                "rootHash": STANDARD.encode(root),
                "treeSize": "2",
                "hashes": [STANDARD.encode(earlier)],
                "checkpoint": {"envelope": checkpoint}
            },
            "canonicalizedBody": body64
        })
    }

    /// A v0.3 bundle: `statement` in a DSSE envelope signed `by`, logged a minute ago.
    pub fn bundle(&self, statement: &[u8], by: By<'_>) -> serde_json::Value {
        let integrated = now() - 60;
        let ephemeral = KeyPair::generate_ecdsa_p256().unwrap();
        let (key, material, verifier) = match by {
            By::Keyless { identity, issuer } => {
                let cert = self.leaf(identity, issuer, &ephemeral, integrated - 30);
                (
                    &ephemeral,
                    serde_json::json!({"certificate": {"rawBytes": STANDARD.encode(&cert)}}),
                    pem("CERTIFICATE", &cert),
                )
            }
            By::Key(key) => (
                key,
                serde_json::json!({"publicKey": {"hint": STANDARD.encode(sha256(&der_of(key)))}}),
                pem("PUBLIC KEY", &der_of(key)),
            ),
        };
        let signature = key.sign(&sigstore_types::pae(IN_TOTO, statement)).unwrap();
        let envelope = serde_json::json!({
            "payload": STANDARD.encode(statement),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": STANDARD.encode(signature.as_bytes()), "keyid": ""}]
        });
        let entry = self.entry(
            &envelope,
            statement,
            signature.as_bytes(),
            &verifier,
            integrated,
        );
        let mut material = material;
        material["tlogEntries"] = serde_json::json!([entry]);
        material["timestampVerificationData"] = serde_json::json!({});
        serde_json::json!({
            "mediaType": BUNDLE_TYPE,
            "verificationMaterial": material,
            "dsseEnvelope": envelope
        })
    }
}

/// Push `bundle` to `repo` as an OCI 1.1 referrer of `digest`: an artifact manifest (the
/// bundle as its layer, `subject` the image) pushed by digest. Returns its descriptor as a
/// referrers index lists it.
pub fn push_referrer(
    registry: &Registry,
    repo: &str,
    digest: &str,
    bundle: &serde_json::Value,
) -> serde_json::Value {
    let subject = registry.manifest(repo, digest);
    let subject_type = serde_json::from_slice::<serde_json::Value>(&subject).unwrap()["mediaType"]
        .as_str()
        .unwrap()
        .to_owned();
    let empty = registry.put_blob(repo, b"{}");
    let bytes = serde_json::to_vec(bundle).unwrap();
    let blob = registry.put_blob(repo, &bytes);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": BUNDLE_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": BUNDLE_TYPE, "digest": blob, "size": bytes.len()}],
        "subject": {"mediaType": subject_type, "digest": digest, "size": subject.len()}
    }))
    .unwrap();
    let manifest_digest = addon_sandbox::trust::sha256_digest(&manifest);
    registry.put_manifest(
        repo,
        &manifest_digest,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest.len(),
        "artifactType": BUNDLE_TYPE
    })
}

/// The image index of referrers listing `descriptors`.
pub fn referrers_index(descriptors: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors
    }))
    .unwrap()
}

/// Attach `bundles` to `repo@digest` as OCI 1.1 referrers listed in the image index at the
/// referrers tag `sha256-<hex>`, as cosign does on a registry without the referrers API.
pub fn attach(registry: &Registry, repo: &str, digest: &str, bundles: &[serde_json::Value]) {
    let listed = bundles
        .iter()
        .map(|b| push_referrer(registry, repo, digest, b))
        .collect();
    registry.put_manifest(
        repo,
        &digest.replacen(':', "-", 1),
        "application/vnd.oci.image.index.v1+json",
        &referrers_index(listed),
    );
}
