//! `trust fetch`: the only part of image trust that talks to a registry. It stores, for one
//! reference, the bytes of its index and platform manifests and of its cosign legacy
//! signature manifest and payloads in the cache, as the registry served them; nothing here is
//! trusted (verification reads the cache later, offline).
//!
//! The client (`http`) speaks the OCI distribution API over HTTPS with the registries' token
//! flow, and plain HTTP only to a loopback registry without TLS.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::cache::{self, Cache, Descriptor};
use super::http::RegistryClient;
use super::{INDEX_TYPES, Reference, TrustError, legacy, sha256_digest};

/// Manifests larger than this are refused (real ones are a few KiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;
/// Signature payloads larger than this are refused.
const MAX_PAYLOAD: usize = 1024 * 1024;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// What one fetch stored.
#[derive(Debug, serde::Serialize)]
pub struct Fetched {
    pub image: String,
    pub digest: String,
    pub platform_manifests: usize,
    pub legacy_signatures: usize,
}

struct Registry {
    client: RegistryClient,
}

impl Registry {
    async fn get(
        &self,
        path: &str,
        accept: &str,
        limit: usize,
    ) -> Result<Option<(Bytes, String)>, TrustError> {
        self.client.get(path, accept, limit).await
    }

    /// A manifest by tag or digest; a digest is checked against the bytes.
    async fn manifest(
        &self,
        repo: &str,
        what: &str,
    ) -> Result<Option<(Bytes, String)>, TrustError> {
        let got = self
            .get(
                &format!("/v2/{repo}/manifests/{what}"),
                ACCEPT,
                MAX_MANIFEST,
            )
            .await?;
        if let Some((bytes, _)) = &got
            && what.starts_with("sha256:")
            && sha256_digest(bytes) != what
        {
            return Err(TrustError::Registry(format!(
                "the registry served other bytes for {repo}@{what}"
            )));
        }
        Ok(got)
    }
}

/// Fetch `image` into `cache`: its manifest (and, for an index, every platform manifest), and
/// its cosign legacy signatures (the `sha256-<hex>.sig` tag: manifest and payloads).
/// `extra_ca`: a PEM file of CAs trusted besides the system's (a private registry's).
pub async fn fetch(
    cache: &Cache,
    image: &str,
    timeout: Duration,
    extra_ca: Option<&Path>,
) -> Result<Fetched, TrustError> {
    let reference = Reference::parse(image)?;
    let registry = Registry {
        client: RegistryClient::new(&reference.registry, timeout, extra_ca)?,
    };
    let repo = &reference.repository;
    let (bytes, media) = registry
        .manifest(repo, reference.lookup())
        .await?
        .ok_or_else(|| TrustError::Registry(format!("{reference} is not in the registry")))?;
    let digest = cache.put_blob(&bytes)?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        TrustError::Registry(format!("the manifest of {reference} is not JSON: {e}"))
    })?;
    let media = doc["mediaType"].as_str().map_or(media, str::to_owned);
    let mut platform_manifests = 0;
    if INDEX_TYPES.contains(&media.as_str()) {
        for entry in doc["manifests"].as_array().into_iter().flatten() {
            let Some(d) = entry["digest"].as_str() else {
                continue;
            };
            let (child, _) = registry.manifest(repo, d).await?.ok_or_else(|| {
                TrustError::Registry(format!("{reference}: platform manifest {d} is missing"))
            })?;
            cache.put_blob(&child)?;
            platform_manifests += 1;
        }
    }
    let signatures = legacy_signatures(&registry, cache, repo, &digest).await?;
    let legacy_signatures = signatures.len();
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(cache::REF_NAME.to_owned(), reference.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    annotations.insert(cache::FETCHED.to_owned(), now.to_string());
    let top = Descriptor {
        media_type: media,
        digest: digest.clone(),
        size: bytes.len() as u64,
        annotations,
    };
    cache.record(&reference.to_string(), top, signatures)?;
    Ok(Fetched {
        image: reference.to_string(),
        digest,
        platform_manifests,
        legacy_signatures,
    })
}

/// The `sha256-<hex>.sig` manifest and its payload layers, stored; its entry for the index.
async fn legacy_signatures(
    registry: &Registry,
    cache: &Cache,
    repo: &str,
    digest: &str,
) -> Result<Vec<Descriptor>, TrustError> {
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    let Some((bytes, media)) = registry.manifest(repo, &tag).await? else {
        return Ok(Vec::new());
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| TrustError::Registry(format!("{repo}:{tag} is not JSON: {e}")))?;
    for layer in doc["layers"].as_array().into_iter().flatten() {
        let Some(d) = layer["digest"].as_str() else {
            continue;
        };
        if layer["mediaType"] != legacy::PAYLOAD_TYPE || !super::reference::is_sha256_digest(d) {
            continue;
        }
        let (payload, _) = registry
            .get(&format!("/v2/{repo}/blobs/{d}"), "*/*", MAX_PAYLOAD)
            .await?
            .ok_or_else(|| {
                TrustError::Registry(format!("{repo}: signature payload {d} is missing"))
            })?;
        if sha256_digest(&payload) != d {
            return Err(TrustError::Registry(format!(
                "{repo}: the registry served other bytes for {d}"
            )));
        }
        cache.put_blob(&payload)?;
    }
    let stored = cache.put_blob(&bytes)?;
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(cache::SIGNS.to_owned(), digest.to_owned());
    annotations.insert(cache::FORMAT.to_owned(), "cosign-legacy".to_owned());
    Ok(vec![Descriptor {
        media_type: doc["mediaType"].as_str().map_or(media, str::to_owned),
        digest: stored,
        size: bytes.len() as u64,
        annotations,
    }])
}
