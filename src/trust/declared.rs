//! What an add-on says about its own signing, read by `addon::load` from the trees it parses,
//! and never used to trust:
//! the config's `codenotary` signer (the Supervisor's Codenotary check is gone; the key is the
//! author's word about themself) and the build file's `cosign.identity` (who Home Assistant's
//! builder signs as in the author's CI): a hint for the operator's policy, which alone decides.

use serde::Serialize;

use crate::source::Node;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Declared {
    /// The config's `codenotary` (a signer's e-mail): self-declared, not trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codenotary: Option<String>,
    /// The build file's `cosign.identity`: who the author's CI signs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosign_identity: Option<String>,
}

/// The config's non-empty `codenotary`.
pub fn codenotary(config: &Node) -> Option<String> {
    non_empty(config.get("codenotary")?)
}

/// The build file's non-empty `cosign.identity`.
pub fn cosign_identity(build: &Node) -> Option<String> {
    non_empty(build.get("cosign")?.get("identity")?)
}

fn non_empty(node: &Node) -> Option<String> {
    node.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Format, parse};

    #[test]
    fn codenotary_and_the_cosign_identity_are_read_and_nothing_else() {
        let config = parse("name: x\ncodenotary: author@example.com\n", Format::Yaml).unwrap();
        assert_eq!(codenotary(&config).as_deref(), Some("author@example.com"));
        let build = parse(
            "cosign:\n  identity: https://github.com/o/r/.*\n",
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(
            cosign_identity(&build).as_deref(),
            Some("https://github.com/o/r/.*")
        );
        let empty = parse("codenotary: ''\ncosign: {}\n", Format::Yaml).unwrap();
        assert_eq!((codenotary(&empty), cosign_identity(&empty)), (None, None));
    }
}
