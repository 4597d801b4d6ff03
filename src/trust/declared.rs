//! What an add-on says about its own signing, read from its folder, and never used to trust:
//! the config's `codenotary` signer (the Supervisor's Codenotary check is gone; the key is the
//! author's word about themself) and the build file's `cosign.identity` (who Home Assistant's
//! builder signs as in the author's CI): a hint for the operator's policy, which alone decides.

use std::path::Path;

use serde::Serialize;

use crate::source::{self, Format};

pub const BUILD_NAMES: [&str; 3] = ["build.yaml", "build.yml", "build.json"];

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Declared {
    /// The config's `codenotary` (a signer's e-mail): self-declared, not trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codenotary: Option<String>,
    /// The build file's `cosign.identity`: who the author's CI signs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosign_identity: Option<String>,
}

impl Declared {
    /// Read from the add-on's config file and its build file (unreadable or malformed files
    /// declare nothing: `check` reports those).
    pub fn read(dir: &Path, config_file: Option<&Path>) -> Declared {
        Declared {
            codenotary: config_file.and_then(|f| string_at(f, &["codenotary"])),
            cosign_identity: build_identity(dir),
        }
    }
}

/// The build file's non-empty `cosign.identity`.
pub fn build_identity(dir: &Path) -> Option<String> {
    let file = BUILD_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())?;
    string_at(&file, &["cosign", "identity"])
}

/// The non-empty string at `path` in a YAML or JSON file; files that never mention the first
/// key are not parsed.
fn string_at(file: &Path, path: &[&str]) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    if !text.contains(path[0]) {
        return None;
    }
    let root = source::parse(&text, Format::from_path(file).unwrap_or(Format::Yaml)).ok()?;
    let mut node = &root;
    for key in path {
        node = node.get(key)?;
    }
    node.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codenotary_and_the_cosign_identity_are_read_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "name: x\ncodenotary: author@example.com\n").unwrap();
        std::fs::write(
            dir.path().join("build.yaml"),
            "cosign:\n  identity: https://github.com/o/r/.*\n",
        )
        .unwrap();
        let d = Declared::read(dir.path(), Some(&config));
        assert_eq!(d.codenotary.as_deref(), Some("author@example.com"));
        assert_eq!(
            d.cosign_identity.as_deref(),
            Some("https://github.com/o/r/.*")
        );
        std::fs::write(&config, "name: x\ncodenotary: ''\n").unwrap();
        std::fs::write(dir.path().join("build.yaml"), "cosign: {}\n").unwrap();
        assert_eq!(
            Declared::read(dir.path(), Some(&config)),
            Declared::default()
        );
    }
}
