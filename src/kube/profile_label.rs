//! The node label that says a profile's exact text is loaded on a node, and the pod's wait
//! for it. Pure.
//!
//! The loader labels its node `profiles.addon-sandbox.io/<profile name>=<hash8>` for every
//! profile it loaded, the hash being of the exact text (the same `hash8` as the ConfigMap's
//! name). A pod confined by a profile requires, through a required node affinity, the label
//! with the hash of ITS text: a changed profile is a new value, so the new pods wait until
//! the loader has loaded the new text, and the scheduler never puts a pod on a node that has
//! no profile, or an older text of it, loaded.
//!
//! The key's name part is the profile name, not the slug: the profile name is what the loader
//! knows (it is the ConfigMap key, so the file name in the projected folder) and what the
//! kernel holds. A name that is not a valid label name (longer than 63 characters, or with a
//! character a label name refuses) is folded deterministically: its first characters, `-`,
//! and the first 8 hex digits of the SHA-256 of the whole name (kube and the loader fold it
//! alike, from the name alone).
//!
//! The label is a scheduling gate, not the enforcement: a runtime refuses to start a
//! container whose `Localhost` profile is not loaded, whatever a label says.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
};

use super::names::{is_qualified_name, profile_hash8};

/// Every node label under this prefix belongs to the node's loader: it sets and removes
/// them, and no other label.
pub const PROFILE_LABEL_PREFIX: &str = "profiles.addon-sandbox.io/";

/// The room a folded name keeps for its readable part: 63 - `-` - 8 hex digits.
const FOLDED_PREFIX: usize = 63 - 1 - 8;

/// `profiles.addon-sandbox.io/<name>`, the name folded when it is not a valid label name.
pub fn profile_label_key(profile: &str) -> String {
    if is_qualified_name(profile) {
        return format!("{PROFILE_LABEL_PREFIX}{profile}");
    }
    let mapped: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(FOLDED_PREFIX)
        .collect();
    let readable = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let readable = if readable.is_empty() {
        "profile"
    } else {
        readable
    };
    format!(
        "{PROFILE_LABEL_PREFIX}{readable}-{}",
        profile_hash8(profile)
    )
}

/// The requirement a pod confined by `profile` (with this exact `text`) puts on its node.
pub fn profile_requirement(profile: &str, text: &str) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: profile_label_key(profile),
        operator: "In".into(),
        values: Some(vec![profile_hash8(text)]),
    }
}

/// Adds `requirement` to the pod's required node affinity, AND-ed with what is there.
///
/// Kubernetes ORs `nodeSelectorTerms` and ANDs the `matchExpressions` (and `matchFields`) of
/// one term, so an AND with the whole selector is the requirement added to every term. An
/// empty term matches no node; it is left empty (adding to it would make it match some).
/// Without a selector, one term holding the requirement.
pub fn require_on_node(spec: &mut PodSpec, requirement: NodeSelectorRequirement) {
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let selector = node
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: Vec::new(),
        });
    if selector.node_selector_terms.is_empty() {
        selector.node_selector_terms.push(NodeSelectorTerm {
            match_expressions: Some(vec![requirement]),
            match_fields: None,
        });
        return;
    }
    for term in &mut selector.node_selector_terms {
        let empty = term.match_expressions.as_ref().is_none_or(Vec::is_empty)
            && term.match_fields.as_ref().is_none_or(Vec::is_empty);
        if empty {
            continue;
        }
        let expressions = term.match_expressions.get_or_insert_with(Vec::new);
        if !expressions.contains(&requirement) {
            expressions.push(requirement.clone());
        }
    }
}

/// The labels a node must carry, from the profiles loaded on it (name → hash8 of the text).
/// Two names folded into one key (only possible for names a label cannot hold) with
/// different texts label neither: the label would claim one text for both. Those keys come
/// back as the second value.
pub fn node_labels(loaded: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut clashes = Vec::new();
    for (name, hash) in loaded {
        let key = profile_label_key(name);
        match labels.get(&key) {
            Some(other) if other != hash => clashes.push(key),
            _ => {
                labels.insert(key, hash.clone());
            }
        }
    }
    for key in &clashes {
        labels.remove(key);
    }
    (labels, clashes)
}

/// What a pass changes on the node's labels: each key of ours to set (`Some`) or remove
/// (`None`). Keys outside [`PROFILE_LABEL_PREFIX`] are never in it.
pub fn label_changes(
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> BTreeMap<String, Option<String>> {
    let mut changes = BTreeMap::new();
    for (key, value) in wanted {
        if key.starts_with(PROFILE_LABEL_PREFIX) && current.get(key) != Some(value) {
            changes.insert(key.clone(), Some(value.clone()));
        }
    }
    for key in current.keys() {
        if key.starts_with(PROFILE_LABEL_PREFIX) && !wanted.contains_key(key) {
            changes.insert(key.clone(), None);
        }
    }
    changes
}

/// The JSON merge patch (RFC 7386) of `changes`: `null` removes a label, a key not named is
/// left as it is.
pub fn merge_patch(changes: &BTreeMap<String, Option<String>>) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> = changes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.clone().map_or(serde_json::Value::Null, Into::into),
            )
        })
        .collect();
    serde_json::json!({ "metadata": { "labels": labels } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, value: &str) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: "In".into(),
            values: Some(vec![value.into()]),
        }
    }

    fn term(reqs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(reqs),
            match_fields: None,
        }
    }

    fn terms(spec: &PodSpec) -> &[NodeSelectorTerm] {
        let selector = spec
            .affinity
            .as_ref()
            .unwrap()
            .node_affinity
            .as_ref()
            .unwrap();
        let required = selector
            .required_during_scheduling_ignored_during_execution
            .as_ref();
        &required.unwrap().node_selector_terms
    }

    #[test]
    fn keys_are_the_profile_name_or_a_fold_of_it() {
        assert_eq!(
            profile_label_key("local_mosquitto"),
            "profiles.addon-sandbox.io/local_mosquitto"
        );
        let long = "a0d7b954_".to_owned() + &"x".repeat(70);
        let key = profile_label_key(&long);
        let name = key.strip_prefix(PROFILE_LABEL_PREFIX).unwrap();
        assert_eq!(name.len(), 63);
        assert!(is_qualified_name(name), "{name}");
        assert!(name.starts_with("a0d7b954_xxx"));
        assert!(name.ends_with(&format!("-{}", profile_hash8(&long))));
        // Deterministic, and two long names differing only past the cut fold apart.
        assert_eq!(profile_label_key(&long), key);
        assert_ne!(profile_label_key(&(long.clone() + "y")), key);
        // Characters a label refuses, and a name of nothing readable.
        let odd = profile_label_key("my profile/1");
        assert!(is_qualified_name(
            odd.strip_prefix(PROFILE_LABEL_PREFIX).unwrap()
        ));
        assert!(odd.starts_with("profiles.addon-sandbox.io/my-profile-1-"));
        let bare = profile_label_key("__");
        assert_eq!(
            bare,
            format!("{PROFILE_LABEL_PREFIX}profile-{}", profile_hash8("__"))
        );
    }

    #[test]
    fn the_requirement_is_the_hash_of_the_text() {
        let r = profile_requirement("local_x", "a");
        assert_eq!(r, req("profiles.addon-sandbox.io/local_x", "ca978112"));
        assert_ne!(profile_requirement("local_x", "b").values, r.values);
    }

    #[test]
    fn without_an_affinity_one_term_holds_the_requirement() {
        let mut spec = PodSpec::default();
        require_on_node(&mut spec, req("k", "v"));
        assert_eq!(terms(&spec), [term(vec![req("k", "v")])]);
        // Twice is once.
        require_on_node(&mut spec, req("k", "v"));
        assert_eq!(terms(&spec), [term(vec![req("k", "v")])]);
    }

    /// (a AND b) OR (c) becomes (a AND b AND p) OR (c AND p): AND with the whole selector.
    /// An empty term (it matches nothing) stays empty; matchFields stay.
    #[test]
    fn an_existing_selector_gets_the_requirement_in_every_term() {
        let fields = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "n1")]),
        };
        let mut spec = PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![
                            term(vec![req("a", "1"), req("b", "2")]),
                            term(vec![req("c", "3")]),
                            NodeSelectorTerm::default(),
                            fields.clone(),
                        ],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        require_on_node(&mut spec, req("p", "h"));
        let got = terms(&spec);
        assert_eq!(
            got[0],
            term(vec![req("a", "1"), req("b", "2"), req("p", "h")])
        );
        assert_eq!(got[1], term(vec![req("c", "3"), req("p", "h")]));
        assert_eq!(got[2], NodeSelectorTerm::default());
        assert_eq!(got[3].match_fields, fields.match_fields);
        assert_eq!(got[3].match_expressions, Some(vec![req("p", "h")]));
    }

    #[test]
    fn changes_touch_only_our_labels() {
        let current = BTreeMap::from([
            ("kubernetes.io/hostname".to_owned(), "n1".to_owned()),
            (format!("{PROFILE_LABEL_PREFIX}gone"), "11111111".to_owned()),
            (format!("{PROFILE_LABEL_PREFIX}same"), "22222222".to_owned()),
            (
                format!("{PROFILE_LABEL_PREFIX}changed"),
                "33333333".to_owned(),
            ),
        ]);
        let loaded = BTreeMap::from([
            ("same".to_owned(), "22222222".to_owned()),
            ("changed".to_owned(), "44444444".to_owned()),
            ("new".to_owned(), "55555555".to_owned()),
        ]);
        let (wanted, clashes) = node_labels(&loaded);
        assert!(clashes.is_empty());
        let changes = label_changes(&current, &wanted);
        let k = |n: &str| format!("{PROFILE_LABEL_PREFIX}{n}");
        assert_eq!(
            changes,
            BTreeMap::from([
                (k("changed"), Some("44444444".to_owned())),
                (k("gone"), None),
                (k("new"), Some("55555555".to_owned())),
            ])
        );
        let patch = merge_patch(&changes);
        assert_eq!(
            patch["metadata"]["labels"][k("gone")],
            serde_json::Value::Null
        );
        assert_eq!(patch["metadata"]["labels"][k("new")], "55555555");
        assert_eq!(patch["metadata"]["labels"].as_object().unwrap().len(), 3);
        assert!(label_changes(&wanted, &wanted).is_empty());
    }

    #[test]
    fn names_folded_into_one_key_with_different_texts_label_neither() {
        // A long name folds into a key whose name part is itself a valid profile name; a
        // profile named so claims the same key.
        let a = "x".repeat(80);
        let loaded = BTreeMap::from([(a.clone(), "11111111".to_owned())]);
        let (labels, clashes) = node_labels(&loaded);
        assert_eq!(labels.len(), 1);
        assert!(clashes.is_empty());
        let folded = profile_label_key(&a)
            .strip_prefix(PROFILE_LABEL_PREFIX)
            .unwrap()
            .to_owned();
        let loaded = BTreeMap::from([(a, "11111111".to_owned()), (folded, "22222222".to_owned())]);
        let (labels, clashes) = node_labels(&loaded);
        assert!(labels.is_empty(), "{labels:?}");
        assert_eq!(clashes.len(), 1);
    }
}
