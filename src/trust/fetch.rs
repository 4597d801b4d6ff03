//! `trust fetch`: the only part of image trust that talks to a registry. It stores, for one
//! reference, the bytes of its index and platform manifests, of its cosign legacy signature
//! manifest and payloads, and of the Sigstore bundles attached to it as OCI 1.1 referrers (the
//! referrers API, else the referrers tag `sha256-<hex>`), in the cache, as the registry served
//! them; nothing here is trusted (verification reads the cache later, offline).
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

/// Sigstore bundles' media and artifact types (`…bundle.v0.3+json`, and the older
/// `…bundle+json;version=0.x`).
const BUNDLE_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// What one fetch stored.
#[derive(Debug, serde::Serialize)]
pub struct Fetched {
    pub image: String,
    pub digest: String,
    pub platform_manifests: usize,
    pub legacy_signatures: usize,
    /// Sigstore bundles found among the image's referrers.
    pub bundles: usize,
    /// `api` when the registry answered the referrers API, `tag` when the fallback tag was read.
    pub referrers_from: &'static str,
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
    let mut signatures = legacy_signatures(&registry, cache, repo, &digest).await?;
    let legacy_signatures = signatures.len();
    let (found, referrers_from) = bundles(&registry, cache, repo, &digest).await?;
    let bundles = found.len();
    signatures.extend(found);
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
        bundles,
        referrers_from,
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
        let payload = blob_checked(registry, repo, d).await?;
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

/// The referrers of `digest`: the referrers API's index when the registry has the API, else
/// the index at the fallback tag `sha256-<hex>` (OCI distribution 1.1: a 404 from the API
/// means the registry predates it). `None` when neither exists.
async fn referrers(
    registry: &Registry,
    repo: &str,
    digest: &str,
) -> Result<(Option<serde_json::Value>, &'static str), TrustError> {
    let api = registry
        .get(
            &format!("/v2/{repo}/referrers/{digest}"),
            INDEX_TYPES[0],
            MAX_MANIFEST,
        )
        .await?;
    let (bytes, from) = match api {
        Some((bytes, _)) => (Some(bytes), "api"),
        None => {
            let tag = digest.replacen(':', "-", 1);
            (registry.manifest(repo, &tag).await?.map(|(b, _)| b), "tag")
        }
    };
    let Some(bytes) = bytes else {
        return Ok((None, from));
    };
    let doc = serde_json::from_slice(&bytes).map_err(|e| {
        TrustError::Registry(format!(
            "{repo}: the referrers of {digest} ({from}) are not a JSON index: {e}"
        ))
    })?;
    Ok((Some(doc), from))
}

/// The Sigstore bundles among the referrers of `digest`, stored; their entries. Each
/// referrer's manifest is read by digest (checked) and its bundle layer stored as the
/// registry served it; a manifest whose `subject` is not `digest` is skipped.
async fn bundles(
    registry: &Registry,
    cache: &Cache,
    repo: &str,
    digest: &str,
) -> Result<(Vec<Descriptor>, &'static str), TrustError> {
    let (index, from) = referrers(registry, repo, digest).await?;
    let mut found = Vec::new();
    let entries = index
        .as_ref()
        .and_then(|i| i["manifests"].as_array())
        .into_iter()
        .flatten();
    for entry in entries {
        let kind = entry["artifactType"].as_str().unwrap_or_default();
        let Some(d) = entry["digest"].as_str() else {
            continue;
        };
        if !kind.starts_with(BUNDLE_TYPE_PREFIX) || !super::reference::is_sha256_digest(d) {
            continue;
        }
        let (bytes, _) = registry.manifest(repo, d).await?.ok_or_else(|| {
            TrustError::Registry(format!("{repo}: the bundle manifest {d} is missing"))
        })?;
        let manifest: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| TrustError::Registry(format!("{repo}@{d} is not JSON: {e}")))?;
        // A referrer of another image (the tag is written by whoever can push): not ours.
        if manifest["subject"]["digest"] != digest {
            continue;
        }
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let media = layer["mediaType"].as_str().unwrap_or_default();
            let Some(blob) = layer["digest"].as_str() else {
                continue;
            };
            if !media.starts_with(BUNDLE_TYPE_PREFIX) || !super::reference::is_sha256_digest(blob) {
                continue;
            }
            let bytes = blob_checked(registry, repo, blob).await?;
            let mut annotations = std::collections::BTreeMap::new();
            annotations.insert(cache::SIGNS.to_owned(), digest.to_owned());
            annotations.insert(cache::FORMAT.to_owned(), cache::SIGSTORE_BUNDLE.to_owned());
            found.push(Descriptor {
                media_type: media.to_owned(),
                digest: cache.put_blob(&bytes)?,
                size: bytes.len() as u64,
                annotations,
            });
        }
    }
    Ok((found, from))
}

/// A blob, checked against its digest.
async fn blob_checked(registry: &Registry, repo: &str, digest: &str) -> Result<Bytes, TrustError> {
    let (bytes, _) = registry
        .get(&format!("/v2/{repo}/blobs/{digest}"), "*/*", MAX_PAYLOAD)
        .await?
        .ok_or_else(|| TrustError::Registry(format!("{repo}: blob {digest} is missing")))?;
    if sha256_digest(&bytes) != digest {
        return Err(TrustError::Registry(format!(
            "{repo}: the registry served other bytes for {digest}"
        )));
    }
    Ok(bytes)
}
