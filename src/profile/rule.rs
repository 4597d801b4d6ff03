//! The typed rule model. Every rule the generator can emit is one of these values; the
//! template turns them into text. User data can only enter through [`AaPath::literal`] (a
//! validated literal path) and the profile name, and the template escapes both.

use std::borrow::Cow;
use std::fmt;

/// File permissions, in AppArmor's letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FilePerms(u8);

impl FilePerms {
    pub const READ: FilePerms = FilePerms(1);
    pub const WRITE: FilePerms = FilePerms(2);
    pub const LINK: FilePerms = FilePerms(4);
    pub const LOCK: FilePerms = FilePerms(8);
    /// Map a file executable (`m`).
    pub const MMAP_EXEC: FilePerms = FilePerms(16);
    /// Execute, staying in this profile (`ix`; a deny rule writes it as `x`).
    pub const EXEC: FilePerms = FilePerms(32);

    pub const R: FilePerms = FilePerms::READ;
    pub const RW: FilePerms = FilePerms(1 | 2);
    pub const RWK: FilePerms = FilePerms(1 | 2 | 8);
    pub const RWLK: FilePerms = FilePerms(1 | 2 | 4 | 8);
    pub const WL: FilePerms = FilePerms(2 | 4);
    /// Read, map executable, execute: image code.
    pub const RMIX: FilePerms = FilePerms(1 | 16 | 32);
    pub const RIX: FilePerms = FilePerms(1 | 32);
    pub const MX: FilePerms = FilePerms(16 | 32);
    pub const ALL: FilePerms = FilePerms(63);

    pub const fn union(self, other: FilePerms) -> FilePerms {
        FilePerms(self.0 | other.0)
    }

    pub fn contains(self, other: FilePerms) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: FilePerms) -> bool {
        self.0 & other.0 != 0
    }

    /// The letters of an allow rule (`rwlkmix` order) or, with `deny`, of a deny rule.
    pub fn letters(self, deny: bool) -> String {
        let mut s = String::new();
        for (bit, letter) in [
            (FilePerms::READ, "r"),
            (FilePerms::WRITE, "w"),
            (FilePerms::LINK, "l"),
            (FilePerms::LOCK, "k"),
            (FilePerms::MMAP_EXEC, "m"),
            (FilePerms::EXEC, if deny { "x" } else { "ix" }),
        ] {
            if self.contains(bit) {
                s.push_str(letter);
            }
        }
        s
    }

    /// In words, for reports.
    pub fn words(self) -> String {
        let mut w = Vec::new();
        for (bit, word) in [
            (FilePerms::READ, "read"),
            (FilePerms::WRITE, "write"),
            (FilePerms::LINK, "link"),
            (FilePerms::LOCK, "lock"),
            (FilePerms::MMAP_EXEC, "map executable"),
            (FilePerms::EXEC, "execute"),
        ] {
            if self.contains(bit) {
                w.push(word);
            }
        }
        w.join(", ")
    }
}

/// A path in a rule: a validated literal part (escaped by the template) followed by a pattern
/// part that only this crate's code writes (never escaped, never from the config).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AaPath {
    literal: String,
    pattern: Cow<'static, str>,
}

/// Why a literal path cannot go into a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} '{path}' cannot go into an AppArmor profile: it {why}")]
pub struct BadPath {
    pub what: String,
    pub path: String,
    pub why: String,
}

/// Sorted as written, so a profile lists `/data` between `/dev` and `/etc` whatever part of
/// each is literal.
impl Ord for AaPath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.literal
            .chars()
            .chain(self.pattern.chars())
            .cmp(other.literal.chars().chain(other.pattern.chars()))
            .then_with(|| self.literal.cmp(&other.literal))
    }
}

impl PartialOrd for AaPath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl AaPath {
    /// A path written by this crate, pattern characters and `@{VARIABLES}` included.
    pub const fn pattern(pattern: &'static str) -> AaPath {
        AaPath {
            literal: String::new(),
            pattern: Cow::Borrowed(pattern),
        }
    }

    /// A path from the plan (a mount target, a device node): checked to be an absolute,
    /// normalised literal without AppArmor pattern characters, quotes or control characters.
    /// `what` names it in the error.
    pub fn literal(what: &str, path: &str) -> Result<AaPath, BadPath> {
        crate::policy::check_literal_path(path).map_err(|why| BadPath {
            what: what.to_owned(),
            path: path.to_owned(),
            why,
        })?;
        Ok(AaPath {
            literal: path.to_owned(),
            pattern: Cow::Borrowed(""),
        })
    }

    /// The literal followed by a pattern of this crate (`{,/**}` for a whole subtree).
    pub fn with_pattern(mut self, pattern: impl Into<Cow<'static, str>>) -> AaPath {
        let pattern = pattern.into();
        self.pattern = match self.pattern {
            Cow::Borrowed("") => pattern,
            existing => Cow::Owned(format!("{existing}{pattern}")),
        };
        self
    }

    /// The literal part: the template escapes it.
    pub fn literal_part(&self) -> &str {
        &self.literal
    }

    /// The pattern part: the template writes it as is.
    pub fn pattern_part(&self) -> &str {
        &self.pattern
    }

    /// Literal and pattern joined, for reports (not for profile text).
    pub fn display(&self) -> String {
        format!("{}{}", self.literal, self.pattern)
    }
}

/// Linux capabilities in AppArmor's spelling (the ABI 3.0 set): a closed list, so no string
/// from elsewhere can reach a `capability` rule.
pub const CAPABILITIES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cap(&'static str);

impl Cap {
    /// From Docker's spelling (`SYS_ADMIN`, optionally `CAP_SYS_ADMIN`).
    pub fn from_docker(name: &str) -> Option<Cap> {
        let lower = name.trim_start_matches("CAP_").to_ascii_lowercase();
        CAPABILITIES.iter().find(|c| **c == lower).map(|c| Cap(c))
    }

    pub fn name(self) -> &'static str {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Inet,
    Inet6,
    Netlink,
    Packet,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
            Family::Netlink => "netlink",
            Family::Packet => "packet",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SockType {
    Stream,
    Dgram,
    Raw,
}

impl fmt::Display for SockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SockType::Stream => "stream",
            SockType::Dgram => "dgram",
            SockType::Raw => "raw",
        })
    }
}

/// The other side of a signal, ptrace or unix rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// This profile and its children (`"<name>{,//**}"`).
    ItSelf,
    /// A label written by this crate (`unconfined`, `{unconfined,runc,crun}`).
    Label(&'static str),
}

/// One rule. The variant order is the section order of the profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Capability(Cap),
    Network {
        deny: bool,
        family: Family,
        kind: Option<SockType>,
    },
    /// `unix (<perms>) [type=<kind>] [peer=(label=<peer>)]`; perms written by this crate.
    Unix {
        perms: &'static str,
        kind: Option<SockType>,
        peer: Option<Peer>,
    },
    Signal {
        perms: &'static str,
        peer: Peer,
    },
    Ptrace {
        perms: &'static str,
        peer: Peer,
    },
    /// `deny mount,`, `deny umount,`, `deny pivot_root,`.
    DenyMount(&'static str),
    File {
        deny: bool,
        owner: bool,
        path: AaPath,
        perms: FilePerms,
    },
}

impl Rule {
    pub fn file(path: AaPath, perms: FilePerms) -> Rule {
        Rule::File {
            deny: false,
            owner: false,
            path,
            perms,
        }
    }

    pub fn deny_file(path: AaPath, perms: FilePerms) -> Rule {
        Rule::File {
            deny: true,
            owner: false,
            path,
            perms,
        }
    }

    /// The section heading this rule is listed under.
    pub fn section(&self) -> &'static str {
        match self {
            Rule::Capability(_) => "capabilities (exactly the container's CapAdd)",
            Rule::Network { .. } => "network",
            Rule::Unix { .. } => "unix sockets",
            Rule::Signal { .. } => "signals",
            Rule::Ptrace { .. } => "ptrace",
            Rule::DenyMount(_) => "mounts",
            Rule::File { deny: false, .. } => "files",
            Rule::File { deny: true, .. } => "files denied",
        }
    }
}
