//! `build.yaml|yml|json`: optional; a bad one is a warning and defaults apply, never an error.

use crate::diag::Sink;
use crate::source::{Node, Value};

use super::rules::{self, RE_BUILD_FROM};

const ARCHES: [&str; 5] = ["aarch64", "amd64", "armhf", "armv7", "i386"];

/// Check a parsed build file; every problem is a warning, as in the Supervisor.
pub fn check(root: &Node, sink: &mut Sink) {
    sink.warn(
        root.pos,
        "build files are deprecated by the Supervisor; put build arguments in the Dockerfile",
    );
    let Some(entries) = root.as_map() else {
        sink.warn(
            root.pos,
            format!(
                "a build file must be a mapping, got {}; it is ignored",
                root.kind()
            ),
        );
        return;
    };
    for (key, value) in entries {
        match key.as_str() {
            Some("build_from") => match &value.value {
                Value::Str(_) => image(value, sink),
                Value::Map(per_arch) => {
                    for (arch, img) in per_arch {
                        if !arch.as_str().is_some_and(|a| ARCHES.contains(&a)) {
                            sink.warn(arch.pos, format!("build_from: unknown architecture {}; the build file is ignored", arch.display()));
                        }
                        image(img, sink);
                    }
                }
                _ => sink.warn(value.pos, "build_from must be an image or a mapping of architecture to image; the build file is ignored"),
            },
            Some("squash") => {
                if let Err(e) = rules::boolean(value) {
                    sink.warn(value.pos, format!("squash: {e}; the build file is ignored"));
                } else {
                    sink.warn(key.pos, "squash is no longer supported and is ignored");
                }
            }
            Some(k @ ("args" | "labels")) => match value.as_map() {
                Some(pairs) => {
                    for (name, v) in pairs {
                        if name.as_str().is_none() || v.as_str().is_none() {
                            sink.warn(v.pos, format!("{k}: names and values must be strings; the build file is ignored"));
                        }
                    }
                }
                None => sink.warn(value.pos, format!("{k} must be a mapping of strings; the build file is ignored")),
            },
            // Home Assistant's builder reads who signs the image from here; the Supervisor
            // drops it like any key it does not know (`lint`'s image-unsigned asks for it).
            Some("cosign") => {}
            Some(other) => sink.warn(key.pos, format!("unknown build key '{other}' is ignored")),
            None => sink.warn(key.pos, "build file keys must be strings"),
        }
    }
}

fn image(node: &Node, sink: &mut Sink) {
    match node.as_str() {
        Some(s) if RE_BUILD_FROM.is_match(s) => {}
        _ => sink.warn(
            node.pos,
            format!(
                "build_from {} is not an image reference such as ghcr.io/owner/base:tag; the build file is ignored and the default base image is used",
                node.display()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::source::{Format, parse};

    fn warnings(yaml: &str) -> Vec<String> {
        let root = parse(yaml, Format::Yaml).unwrap();
        let mut sink = Sink::new(Path::new("build.yaml"), None);
        check(&root, &mut sink);
        sink.diagnostics.into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn cosign_is_the_builders_key_and_others_are_unknown() {
        let cosign = warnings("cosign:\n  identity: https://github.com/o/r/.*\n");
        assert_eq!(cosign.len(), 1, "{cosign:?}");
        assert!(cosign[0].contains("deprecated"));
        let other = warnings("codenotary:\n  signer: a@b.c\n");
        assert!(
            other
                .iter()
                .any(|w| w == "unknown build key 'codenotary' is ignored")
        );
    }
}
