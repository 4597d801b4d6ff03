//! The host-side preparation both backends share: the profile text that confines a plan,
//! the plan's data folders, and the per-start token.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::LaunchError;
use crate::plan::{Confinement, MountKind, SandboxPlan};
use crate::profile;

/// The text of the profile `name` that confines `plan`: the add-on's own `apparmor.txt`
/// renamed, or the generated one.
pub fn profile_text(
    plan: &SandboxPlan,
    name: &str,
    addon_profile: Option<&str>,
) -> Result<String, LaunchError> {
    match plan.confinement {
        Confinement::AddonProfile => addon_profile
            .map(|text| rename_addon_profile(text, name))
            .ok_or(LaunchError::AddonProfileMissing),
        _ => Ok(profile::generate(plan)?.render(false)?),
    }
}

/// The plan's data folders under the data root, created owner-only (the add-on runs as root
/// inside); folders elsewhere (host paths the plan binds) are never created.
pub fn create_data_folders(plan: &SandboxPlan, data_root: &Path) -> std::io::Result<()> {
    for m in &plan.mounts {
        let source = Path::new(&m.source);
        if m.kind == MountKind::Directory && source.starts_with(data_root) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(source)?;
        }
    }
    Ok(())
}

/// 32 random bytes, hex: the add-on's token for one start.
pub fn new_token() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The author's profile with its name replaced by ours, as the Supervisor installs it.
pub fn rename_addon_profile(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len() + name.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && line.starts_with("profile ") {
            let rest = &line["profile ".len()..];
            let after = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            out.push_str("profile ");
            out.push_str(name);
            out.push_str(&rest[after..]);
            done = true;
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{new_token, rename_addon_profile};

    #[test]
    fn the_authors_profile_gets_the_installed_name() {
        let text = "#include <tunables/global>\nprofile example flags=(attach_disconnected) {\n  profile child {\n  }\n}\n";
        let renamed = rename_addon_profile(text, "local_example");
        assert!(renamed.contains("\nprofile local_example flags=(attach_disconnected) {\n"));
        assert!(
            renamed.contains("  profile child {"),
            "children keep their names"
        );
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
