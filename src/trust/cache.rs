//! The trust cache: an OCI image layout under the state directory (`<state>/trust`). `trust
//! fetch` stores the bytes of an image's index and manifests and of its signatures as
//! content-addressed blobs, and names them in `index.json`; `run` reads only from here. Every
//! blob is hashed again when read, so a changed file is an error, never trusted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{TrustError, sha256_digest};

/// The annotation naming the reference a top-level image entry was fetched for.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// On a signature entry: the digest it signs.
pub const SIGNS: &str = "dev.addon-sandbox.signs";
/// On a signature entry: `cosign-legacy` or `sigstore-bundle`.
pub const FORMAT: &str = "dev.addon-sandbox.format";
/// The FORMAT of a Sigstore bundle attached to the image as an OCI referrer.
pub const SIGSTORE_BUNDLE: &str = "sigstore-bundle";
/// On an image entry: when `trust fetch` stored it (seconds since the epoch).
pub const FETCHED: &str = "dev.addon-sandbox.fetched";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            manifests: Vec::new(),
        }
    }
}

pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache of a state directory (it need not exist yet).
    pub fn of_state(state_root: &Path) -> Cache {
        Cache {
            root: state_root.join("trust"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        super::reference::is_sha256_digest(digest).then(|| self.root.join("blobs/sha256").join(hex))
    }

    /// Store bytes under their digest; returns the digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, TrustError> {
        let digest = sha256_digest(bytes);
        let path = self
            .blob_path(&digest)
            .expect("a computed digest is well formed");
        if !path.exists() {
            std::fs::create_dir_all(path.parent().expect("blob has a folder"))?;
            crate::launch::state::write_atomically(&path, bytes, 0o600)?;
        }
        Ok(digest)
    }

    /// The bytes of a blob, checked against their digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, TrustError> {
        let path = self
            .blob_path(digest)
            .ok_or_else(|| TrustError::Cache(format!("{digest:?} is not a sha256 digest")))?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustError::Cache(format!(
                    "blob {digest} is missing from {}",
                    self.root.display()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(TrustError::Cache(format!(
                "blob {digest} in {} has changed (its content is {actual}): fetch again",
                self.root.display()
            )));
        }
        Ok(bytes)
    }

    /// `index.json`, or an empty index when nothing was fetched.
    pub fn index(&self) -> Result<Index, TrustError> {
        match std::fs::read(self.root.join("index.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                TrustError::Cache(format!(
                    "{}/index.json is not an OCI index: {e}",
                    self.root.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace the entry of `reference` and the signature entries of what it pointed to and
    /// of `signatures`' subject, then write `index.json` (and `oci-layout`) atomically.
    pub fn record(
        &self,
        reference: &str,
        image: Descriptor,
        signatures: Vec<Descriptor>,
    ) -> Result<(), TrustError> {
        let mut index = self.index()?;
        let old: Vec<String> = index
            .manifests
            .iter()
            .filter(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(reference))
            .map(|d| d.digest.clone())
            .collect();
        index.manifests.retain(|d| {
            let is_ref = d.annotations.get(REF_NAME).map(String::as_str) == Some(reference);
            let signs = d.annotations.get(SIGNS);
            !is_ref && !signs.is_some_and(|s| *s == image.digest || old.contains(s))
        });
        index.manifests.push(image);
        index.manifests.extend(signatures);
        std::fs::create_dir_all(&self.root)?;
        crate::launch::state::write_atomically(
            &self.root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            0o600,
        )?;
        let bytes = serde_json::to_vec_pretty(&index).expect("an index serialises");
        crate::launch::state::write_atomically(&self.root.join("index.json"), &bytes, 0o600)?;
        Ok(())
    }

    /// The entry fetched for `reference` (normalised, with its tag or digest).
    pub fn image(&self, index: &Index, reference: &str) -> Option<Descriptor> {
        index
            .manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(reference))
            .cloned()
    }

    /// The signature entries stored for `digest`.
    pub fn signatures(index: &Index, digest: &str) -> Vec<Descriptor> {
        index
            .manifests
            .iter()
            .filter(|d| d.annotations.get(SIGNS).map(String::as_str) == Some(digest))
            .cloned()
            .collect()
    }
}
