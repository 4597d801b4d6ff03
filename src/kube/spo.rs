//! `--spo`: the security-profiles-operator's `AppArmorProfile` (v1alpha1), an abstract
//! allow-list, from the generated profile's typed rules, and exactly what it cannot carry.
//! Lossy by design of that API: it has no deny rules, no unix, signal, ptrace or mount rules,
//! no owner qualifier, no link or lock permission, and networks only as TCP, UDP and raw.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::plan::SandboxPlan;
use crate::profile::Profile;
use crate::profile::rule::{FilePerms, Rule};

#[derive(Clone, Debug, Serialize)]
pub struct SpoProfile {
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: SpoMeta,
    pub spec: SpoSpec,
}

#[derive(Clone, Debug, Serialize)]
pub struct SpoMeta {
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SpoSpec {
    #[serde(rename = "abstract")]
    pub abstract_: SpoAbstract,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoAbstract {
    pub executable: SpoExecutable,
    pub filesystem: SpoFilesystem,
    pub network: SpoNetwork,
    pub capability: SpoCapability,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoExecutable {
    pub allowed_executables: BTreeSet<String>,
    pub allowed_libraries: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoFilesystem {
    pub read_only_paths: BTreeSet<String>,
    pub write_only_paths: BTreeSet<String>,
    pub read_write_paths: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoNetwork {
    pub allow_raw: bool,
    pub allowed_protocols: SpoProtocols,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoProtocols {
    pub allow_tcp: bool,
    pub allow_udp: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoCapability {
    pub allowed_capabilities: Vec<String>,
}

/// `{a,b}` alternatives expanded (nested too); None when a path keeps a character the
/// operator's pattern refuses (`[`, `^`, `{`).
fn expand(path: &str) -> Option<Vec<String>> {
    let open = path
        .char_indices()
        .find(|&(i, c)| c == '{' && !path[..i].ends_with('@'))
        .map(|(i, _)| i);
    let Some(open) = open else {
        return accepted(path).then(|| vec![path.to_owned()]);
    };
    let (mut depth, mut close, mut commas) = (0, None, vec![]);
    for (i, c) in path[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + i),
            _ => {}
        }
    }
    let close = close?;
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = format!(
            "{}{}{}",
            &path[..open],
            &path[w[0] + 1..w[1]],
            &path[close + 1..]
        );
        out.extend(expand(&alt)?);
    }
    Some(out)
}

/// The operator's path pattern (its CRD's validation): `/` then `[a-zA-Z0-9_./*?+@ -]` or
/// `@{name}`; so `@{PROC}/...` is refused.
fn accepted(path: &str) -> bool {
    let mut rest = path;
    let mut plain = String::new();
    while let Some(at) = rest.find("@{") {
        plain.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            return false;
        };
        let name = &rest[at + 2..at + end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
        rest = &rest[at + end + 1..];
    }
    plain.push_str(rest);
    path.starts_with('/')
        && plain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./*?+@ -".contains(c))
}

/// The abstract profile and what the generated profile says that it cannot.
pub fn spo_profile(
    plan: &SandboxPlan,
    profile: &Profile,
    namespace: &str,
) -> (SpoProfile, Vec<String>) {
    let mut a = SpoAbstract::default();
    let mut lost = BTreeSet::new();
    a.capability.allowed_capabilities = plan
        .cap_add
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    for rule in profile.rules() {
        match rule {
            Rule::Capability(_) => {}
            Rule::Network { deny: false, .. } => {}
            Rule::Network { deny: true, .. } => {
                lost.insert("network deny rules (the API only allows)".to_owned());
            }
            Rule::Unix { .. } => {
                lost.insert("unix socket rules (peer labels)".to_owned());
            }
            Rule::Signal { .. } => {
                lost.insert("signal rules (peers)".to_owned());
            }
            Rule::Ptrace { .. } => {
                lost.insert("ptrace rules (peers)".to_owned());
            }
            Rule::DenyMount(_) => {
                lost.insert("deny mount, umount, pivot_root".to_owned());
            }
            Rule::File {
                deny: true, path, ..
            } => {
                lost.insert(format!("deny {}", path.display()));
            }
            Rule::File {
                deny: false,
                owner,
                path,
                perms,
            } => {
                file_rule(&mut a, &mut lost, *owner, &path.display(), *perms);
            }
        }
    }
    a.network.allowed_protocols = SpoProtocols {
        allow_tcp: true,
        allow_udp: true,
    };
    lost.insert("network families other than inet/inet6 stream and dgram (netlink)".to_owned());
    let spo = SpoProfile {
        api_version: "security-profiles-operator.x-k8s.io/v1alpha1",
        kind: "AppArmorProfile",
        metadata: SpoMeta {
            name: super::dns_name(&plan.full_slug),
            namespace: namespace.to_owned(),
        },
        spec: SpoSpec { abstract_: a },
    };
    (spo, lost.into_iter().collect())
}

fn file_rule(
    a: &mut SpoAbstract,
    lost: &mut BTreeSet<String>,
    owner: bool,
    path: &str,
    perms: FilePerms,
) {
    let Some(paths) = expand(path) else {
        lost.insert(format!("{path} (a pattern the API refuses)"));
        return;
    };
    if owner {
        lost.insert(format!("owner qualifier of {path}"));
    }
    if perms.contains(FilePerms::LINK) || perms.contains(FilePerms::LOCK) {
        lost.insert(format!("link/lock permission of {path}"));
    }
    let (r, w) = (
        perms.contains(FilePerms::READ),
        perms.contains(FilePerms::WRITE),
    );
    for p in paths {
        if perms.contains(FilePerms::EXEC) {
            a.executable.allowed_executables.insert(p.clone());
        }
        if perms.contains(FilePerms::MMAP_EXEC) {
            a.executable.allowed_libraries.insert(p.clone());
        }
        match (r, w) {
            (true, true) => a.filesystem.read_write_paths.insert(p),
            (true, false) => a.filesystem.read_only_paths.insert(p),
            (false, true) => a.filesystem.write_only_paths.insert(p),
            (false, false) => false,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn braces_expand_and_classes_are_refused() {
        assert_eq!(expand("/etc/{,**}").unwrap(), ["/etc/", "/etc/**"]);
        assert_eq!(expand("/data{,/**}").unwrap(), ["/data", "/data/**"]);
        assert_eq!(
            expand("/dev/{null,zero}").unwrap(),
            ["/dev/null", "/dev/zero"]
        );
        assert_eq!(expand("/proc/@{pid}/comm").unwrap(), ["/proc/@{pid}/comm"]);
        assert!(expand("@{PROC}/@{pid}/comm").is_none());
        assert_eq!(expand("/a/{b,c{d,e}}").unwrap(), ["/a/b", "/a/cd", "/a/ce"]);
        assert!(expand("@{PROC}/sys/[^k]**").is_none());
        assert!(expand("/run/s6-rc:s6-rc-init:*/x").is_none());
        assert_eq!(
            expand("/proc/@{pid}/{comm,task/@{tid}/comm}").unwrap(),
            ["/proc/@{pid}/comm", "/proc/@{pid}/task/@{tid}/comm"]
        );
    }
}
