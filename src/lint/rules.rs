//! The rule table: every rule's stable id, default level, one-line why and help text. The ids
//! never change meaning; a retired rule keeps its id unused.

use serde::Serialize;

/// How serious a finding is; the order is `--fail-on`'s (`Error` is the most serious).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Note,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }

    /// At least as serious as `threshold` (`--fail-on`).
    pub fn reaches(self, threshold: Level) -> bool {
        self <= threshold
    }
}

/// One rule of the linter.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable, kebab-case; what `--format sarif` calls `ruleId`.
    pub id: &'static str,
    pub level: Level,
    /// One line: what the rule looks for.
    pub title: &'static str,
    /// One line: why it matters.
    pub why: &'static str,
    /// The page of Home Assistant's developer documentation the practice comes from.
    pub help_uri: &'static str,
}

const SECURITY: &str = "https://developers.home-assistant.io/docs/add-ons/security";
const CONFIGURATION: &str = "https://developers.home-assistant.io/docs/add-ons/configuration";
const APPARMOR: &str = "https://developers.home-assistant.io/docs/add-ons/presentation#apparmor";
const COMMUNICATION: &str = "https://developers.home-assistant.io/docs/add-ons/communication";

pub const CHECK_ERROR: Rule = Rule {
    id: "check-error",
    level: Level::Error,
    title: "the Supervisor refuses this config",
    why: "the Supervisor would not install or start the add-on as written",
    help_uri: CONFIGURATION,
};
pub const CHECK_WARNING: Rule = Rule {
    id: "check-warning",
    level: Level::Warning,
    title: "the Supervisor warns about or ignores this",
    why: "the Supervisor reads this differently from how it is written, or drops it",
    help_uri: CONFIGURATION,
};
pub const HOST_NETWORK: Rule = Rule {
    id: "host-network",
    level: Level::Warning,
    title: "host_network: true",
    why: "the add-on shares the host's network stack: every host port, interface and local-only service is reachable from it",
    help_uri: SECURITY,
};
pub const APPARMOR_DISABLED: Rule = Rule {
    id: "apparmor-disabled",
    level: Level::Warning,
    title: "apparmor: false",
    why: "the add-on runs without any AppArmor profile, not even Docker's default one",
    help_uri: SECURITY,
};
pub const APPARMOR_PERMISSIVE: Rule = Rule {
    id: "apparmor-permissive",
    level: Level::Warning,
    title: "apparmor.txt grants a whole class of access",
    why: "a bare rule such as `file,` or `capability,` allows everything of its kind, so the profile confines nothing there",
    help_uri: APPARMOR,
};
pub const APPARMOR_MISSING: Rule = Rule {
    id: "apparmor-missing",
    level: Level::Note,
    title: "no apparmor.txt",
    why: "without its own profile the add-on gets Docker's generic one, which knows nothing of what it needs",
    help_uri: APPARMOR,
};
pub const MAP_RW: Rule = Rule {
    id: "map-rw",
    level: Level::Note,
    title: "a folder mapped read-write",
    why: "a compromised add-on can change or encrypt everything in a folder it may write",
    help_uri: SECURITY,
};
pub const API_ROLE_BROAD: Rule = Rule {
    id: "api-role-broad",
    level: Level::Warning,
    title: "hassio_role broader than the API calls of the add-on's scripts",
    why: "the token's role allows Supervisor endpoints the add-on never calls",
    help_uri: COMMUNICATION,
};
pub const API_UNUSED: Rule = Rule {
    id: "api-unused",
    level: Level::Note,
    title: "hassio_api: true but the scripts call no Supervisor endpoint",
    why: "the add-on carries a Supervisor API token it does not use",
    help_uri: COMMUNICATION,
};
pub const IMAGE_UNSIGNED: Rule = Rule {
    id: "image-unsigned",
    level: Level::Note,
    title: "no image signing identity in the build file",
    why: "users cannot tell the published image from one pushed by someone else",
    help_uri: SECURITY,
};
pub const CREDENTIAL_PLAINTEXT: Rule = Rule {
    id: "credential-plaintext",
    level: Level::Warning,
    title: "a credential option typed `str`",
    why: "a `str` option is shown in clear text in the add-on's configuration page; `password` hides it",
    help_uri: SECURITY,
};
pub const OWN_LOGIN: Rule = Rule {
    id: "own-login",
    level: Level::Note,
    title: "a login the add-on checks itself",
    why: "a username and password set in the options are stored in plain text and checked by the add-on's own code; auth_api lets Home Assistant check its users instead",
    help_uri: SECURITY,
};
pub const FULL_ACCESS: Rule = Rule {
    id: "full-access",
    level: Level::Warning,
    title: "full_access: true",
    why: "every host device, privileged: disks, memory and the kernel are open to the add-on",
    help_uri: SECURITY,
};
pub const DOCKER_API: Rule = Rule {
    id: "docker-api",
    level: Level::Warning,
    title: "docker_api: true",
    why: "control of the host's Docker engine is root on the host",
    help_uri: SECURITY,
};
pub const HOST_PID: Rule = Rule {
    id: "host-pid",
    level: Level::Warning,
    title: "host_pid: true",
    why: "the add-on sees every host process, and with a capability can signal or trace them",
    help_uri: SECURITY,
};
pub const HOST_IPC: Rule = Rule {
    id: "host-ipc",
    level: Level::Note,
    title: "host_ipc: true",
    why: "the add-on shares the host's System V IPC and shared memory",
    help_uri: SECURITY,
};
pub const HOST_DBUS: Rule = Rule {
    id: "host-dbus",
    level: Level::Warning,
    title: "host_dbus: true",
    why: "the host's system D-Bus reaches systemd, NetworkManager and the other host services",
    help_uri: SECURITY,
};
pub const KERNEL_MODULES: Rule = Rule {
    id: "kernel-modules",
    level: Level::Warning,
    title: "kernel_modules: true",
    why: "loading a kernel module is running code in the host's kernel",
    help_uri: SECURITY,
};
pub const PRIVILEGED_CAPABILITY: Rule = Rule {
    id: "privileged-capability",
    level: Level::Warning,
    title: "a high-risk capability in privileged",
    why: "this capability reaches past the container into the host",
    help_uri: SECURITY,
};
pub const RAW_DEVICE: Rule = Rule {
    id: "raw-device",
    level: Level::Warning,
    title: "a raw host device in devices",
    why: "raw disks, memory, consoles or unknown nodes reach past every file permission of the host",
    help_uri: SECURITY,
};
pub const ADMIN_ROLE: Rule = Rule {
    id: "admin-role",
    level: Level::Warning,
    title: "hassio_role: admin",
    why: "the admin role can switch off protection mode and so grant itself every host right",
    help_uri: SECURITY,
};
pub const DEPRECATED_KEY: Rule = Rule {
    id: "deprecated-key",
    level: Level::Warning,
    title: "a dead or deprecated key or value",
    why: "the Supervisor ignores or rewrites it, so the config does not say what runs",
    help_uri: CONFIGURATION,
};

/// Every rule, in the order the documentation lists them.
pub const ALL: [&Rule; 23] = [
    &CHECK_ERROR,
    &CHECK_WARNING,
    &HOST_NETWORK,
    &APPARMOR_DISABLED,
    &APPARMOR_PERMISSIVE,
    &APPARMOR_MISSING,
    &MAP_RW,
    &API_ROLE_BROAD,
    &API_UNUSED,
    &IMAGE_UNSIGNED,
    &CREDENTIAL_PLAINTEXT,
    &OWN_LOGIN,
    &FULL_ACCESS,
    &DOCKER_API,
    &HOST_PID,
    &HOST_IPC,
    &HOST_UTS,
    &HOST_DBUS,
    &KERNEL_MODULES,
    &PRIVILEGED_CAPABILITY,
    &RAW_DEVICE,
    &ADMIN_ROLE,
    &DEPRECATED_KEY,
];

pub const HOST_UTS: Rule = Rule {
    id: "host-uts",
    level: Level::Note,
    title: "host_uts: true",
    why: "the add-on shares the host's hostname, and with SYS_ADMIN can change it for the whole host",
    help_uri: SECURITY,
};

/// The rule of an id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.into_iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        for (i, r) in ALL.iter().enumerate() {
            assert!(
                r.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                r.id
            );
            assert!(ALL[i + 1..].iter().all(|o| o.id != r.id), "{}", r.id);
            assert_eq!(by_id(r.id), Some(*r));
        }
    }
}
