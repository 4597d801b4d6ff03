//! Object names: DNS-safe forms of a slug, the content-addressed profile ConfigMap
//! (`addon-sandbox.<slug>.<hash8>`: a changed profile is a new name, so the Deployment's pod
//! template changes and Kubernetes rolls it), and the token Secret's name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::{KubeError, KubeOptions};
use crate::plan::SandboxPlan;

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_SLUG: &str = "addon-sandbox.io/slug";
pub const LABEL_PROFILE: &str = "addon-sandbox.io/apparmor-profile";
pub const MANAGER: &str = "addon-sandbox";

/// A DNS label (RFC 1123) from a slug: lowercase, `_` and anything else outside `[a-z0-9-]`
/// as `-`, at most 63 characters, starting and ending with a letter or digit.
pub fn dns_name(slug: &str) -> String {
    let mapped: String = slug
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let mut name: String = mapped.trim_matches('-').chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.is_empty() {
        "addon".into()
    } else {
        name
    }
}

/// The first 8 hex digits of the SHA-256 of the profile text.
pub fn profile_hash8(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// `addon-sandbox.<slug>.<hash8>`.
pub fn configmap_name(full_slug: &str, text: &str) -> String {
    format!(
        "addon-sandbox.{}.{}",
        dns_name(full_slug),
        profile_hash8(text)
    )
}

/// The Secret holding the add-on's token (key `token`), made by the operator.
pub fn token_secret_name(full_slug: &str) -> String {
    format!("addon-sandbox.{}.token", dns_name(full_slug))
}

/// A label value: the text itself when Kubernetes accepts it, else its DNS form.
pub fn label_value(text: &str) -> String {
    let ok = text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok { text.to_owned() } else { dns_name(text) }
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A qualified name's name part (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63).
pub fn is_qualified_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && label_value(s) == s
}

/// A ConfigMap key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`.
fn is_configmap_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && !s.starts_with("..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// The labels every object of an add-on carries.
pub fn labels(plan: &SandboxPlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned()),
        (LABEL_NAME.to_owned(), dns_name(&plan.full_slug)),
        (LABEL_SLUG.to_owned(), label_value(&plan.full_slug)),
    ])
}

/// The ConfigMap holding the exact profile text under the profile's name as its key.
pub fn profile_configmap(
    plan: &SandboxPlan,
    name: &str,
    text: &str,
    options: &KubeOptions,
) -> Result<ConfigMap, KubeError> {
    if !is_configmap_key(name) {
        return Err(KubeError::BadProfileName {
            slug: plan.full_slug.clone(),
            name: name.to_owned(),
        });
    }
    let mut labels = labels(plan);
    labels.insert(LABEL_PROFILE.to_owned(), label_value(name));
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(configmap_name(&plan.full_slug, text)),
            namespace: Some(options.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(name.to_owned(), text.to_owned())])),
        immutable: Some(true),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_labels() {
        assert_eq!(dns_name("local_mosquitto"), "local-mosquitto");
        assert_eq!(dns_name("_A__b_"), "a--b");
        assert_eq!(dns_name("___"), "addon");
        let long = "x".repeat(62) + "_y";
        assert_eq!(dns_name(&long).len(), 62);
        assert!(is_dns_subdomain(&configmap_name("local_ssh", "text")));
    }

    #[test]
    fn the_hash_follows_the_content() {
        assert_eq!(profile_hash8("a"), "ca978112");
        assert_ne!(configmap_name("s", "a"), configmap_name("s", "b"));
        assert_eq!(
            configmap_name("local_x", "a"),
            "addon-sandbox.local-x.ca978112"
        );
    }

    #[test]
    fn configmap_keys() {
        assert!(is_configmap_key("local_mosquitto"));
        assert!(!is_configmap_key("..data"));
        assert!(!is_configmap_key("a/b"));
    }
}
