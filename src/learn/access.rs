//! What a record says the add-on tried, as an access the profile oracle can judge
//! ([`crate::apparmor::probe::Probe`]).

use serde::Serialize;

use super::audit::Record;
use crate::apparmor::probe::Probe;
use crate::profile::rule::FilePerms;

/// An access an add-on attempted, deduplicated across records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Access {
    File {
        path: String,
        perms: String,
    },
    Capability {
        name: String,
    },
    Network {
        family: String,
        sock_type: String,
    },
    Mount {
        path: String,
    },
    Signal {
        peer: String,
    },
    Ptrace {
        peer: String,
    },
    Unix {
        peer: String,
    },
    /// A record of a class this reading does not know: shown, never acted on.
    Other {
        class: String,
        operation: String,
    },
}

impl Access {
    /// What the record says was attempted; `None` for records that name no access (a record
    /// of profile management, say).
    pub fn of(record: &Record) -> Option<Access> {
        let class = record.get("class").unwrap_or("");
        let op = record.operation();
        let mask = record
            .get("denied_mask")
            .or(record.get("requested_mask"))
            .unwrap_or("");
        let peer = record.get("peer").unwrap_or("?").to_owned();
        Some(match (class, op) {
            (_, "capable") => Access::Capability {
                name: record.get("capname")?.to_owned(),
            },
            ("net", _) | (_, "create" | "socket_create")
                if record.get("family").is_some() && class != "unix" =>
            {
                Access::Network {
                    family: record.get("family")?.to_owned(),
                    sock_type: record.get("sock_type").unwrap_or("").to_owned(),
                }
            }
            ("unix", _) => Access::Unix { peer },
            ("signal", _) | (_, "signal") => Access::Signal { peer },
            ("ptrace", _) | (_, "ptrace") => Access::Ptrace { peer },
            ("mount", _) | (_, "mount" | "umount" | "pivotroot" | "remount") => Access::Mount {
                path: record.get("name").unwrap_or("?").to_owned(),
            },
            _ if record.get("name").is_some_and(|n| n.starts_with('/')) => Access::File {
                path: record.get("name")?.to_owned(),
                perms: letters(mask),
            },
            _ => Access::Other {
                class: class.to_owned(),
                operation: op.to_owned(),
            },
        })
    }

    /// The same access as a probe of the profile oracle, when the oracle can judge it.
    pub fn probe(&self) -> Option<Probe> {
        match self {
            Access::File { path, perms } => Some(Probe::file(path, perms_of(perms)?)),
            Access::Capability { name } => Some(Probe::Capability(static_cap(name)?)),
            Access::Network { family, sock_type } => Some(Probe::Network {
                family: static_word(family, FAMILIES)?,
                kind: static_word(sock_type, SOCK_TYPES)?,
            }),
            Access::Signal { peer } if peer == "unconfined" => Some(Probe::SignalHost),
            Access::Ptrace { peer } if peer == "unconfined" => Some(Probe::PtraceHost),
            Access::Unix { peer } if peer == "unconfined" => Some(Probe::UnixConnectHost),
            _ => None,
        }
    }

    /// One line for people: `write /share/notes.txt`, `capability net_admin`.
    pub fn describe(&self) -> String {
        match self {
            Access::File { path, perms } => format!("{} {path}", verb(perms)),
            Access::Capability { name } => format!("capability {name}"),
            Access::Network { family, sock_type } => format!("network {family} {sock_type}"),
            Access::Mount { path } => format!("mount on {path}"),
            Access::Signal { peer } => format!("signal to {peer}"),
            Access::Ptrace { peer } => format!("ptrace of {peer}"),
            Access::Unix { peer } => format!("unix socket to {peer}"),
            Access::Other { class, operation } => format!("{operation} ({class})"),
        }
    }
}

/// The file permissions of a mask, in the profile's letters (`rwlkmx`): create, delete,
/// append and rename need `w` in a profile; `x` is written as `ix`'s `x`.
fn letters(mask: &str) -> String {
    let mut out = String::new();
    for (letter, from) in [
        ('r', "r"),
        ('w', "wacd"),
        ('l', "l"),
        ('k', "k"),
        ('m', "m"),
        ('x', "xix"),
    ] {
        if mask.chars().any(|c| from.contains(c)) && !out.contains(letter) {
            out.push(letter);
        }
    }
    out
}

fn perms_of(letters: &str) -> Option<FilePerms> {
    let mut perms: Option<FilePerms> = None;
    for c in letters.chars() {
        let p = match c {
            'r' => FilePerms::READ,
            'w' => FilePerms::WRITE,
            'l' => FilePerms::LINK,
            'k' => FilePerms::LOCK,
            'm' => FilePerms::MMAP_EXEC,
            'x' => FilePerms::EXEC,
            _ => continue,
        };
        perms = Some(perms.map_or(p, |q| q.union(p)));
    }
    perms
}

fn verb(perms: &str) -> &'static str {
    if perms.contains('x') {
        "execute"
    } else if perms.contains('w') && perms.contains('r') {
        "read and write"
    } else if perms.contains('w') {
        "write"
    } else if perms.contains('m') {
        "map executable"
    } else if perms.contains('l') {
        "link"
    } else if perms.contains('k') {
        "lock"
    } else {
        "read"
    }
}

const FAMILIES: &[&str] = &[
    "inet",
    "inet6",
    "netlink",
    "packet",
    "unix",
    "bluetooth",
    "can",
    "alg",
    "key",
    "appletalk",
    "ax25",
    "x25",
    "ipx",
    "netrom",
    "atmpvc",
    "rose",
    "llc",
    "ib",
    "mpls",
    "vsock",
    "xdp",
    "mctp",
];

const SOCK_TYPES: &[&str] = &["stream", "dgram", "raw", "seqpacket", "rdm", "packet"];

fn static_word(word: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| *k == word)
}

/// AppArmor's capability names (the kernel's, lower case) as static strings: the profile's own
/// closed list.
fn static_cap(name: &str) -> Option<&'static str> {
    static_word(name, &crate::profile::rule::CAPABILITIES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::audit::parse_line;

    fn access(line: &str) -> Access {
        Access::of(&parse_line(line).unwrap()).unwrap()
    }

    #[test]
    fn records_become_accesses() {
        assert_eq!(
            access(
                r#"apparmor="ALLOWED" operation="mknod" class="file" profile="p" name="/share/x" requested_mask="c" denied_mask="c""#
            ),
            Access::File {
                path: "/share/x".into(),
                perms: "w".into()
            }
        );
        assert_eq!(
            access(
                r#"apparmor="ALLOWED" operation="open" class="file" profile="p" name="/dev/ttyUSB0" requested_mask="wr" denied_mask="wr""#
            ),
            Access::File {
                path: "/dev/ttyUSB0".into(),
                perms: "rw".into()
            }
        );
        assert_eq!(
            access(
                r#"apparmor="DENIED" operation="capable" class="cap" profile="p" capability=12 capname="net_admin""#
            ),
            Access::Capability {
                name: "net_admin".into()
            }
        );
        assert_eq!(
            access(
                r#"apparmor="DENIED" operation="create" class="net" profile="p" family="packet" sock_type="raw" protocol=768"#
            ),
            Access::Network {
                family: "packet".into(),
                sock_type: "raw".into()
            }
        );
        assert_eq!(
            access(
                r#"apparmor="DENIED" operation="mount" class="mount" info="failed mntpnt match" error=-13 profile="p" name="/mnt/" fstype="tmpfs" srcname="tmpfs""#
            ),
            Access::Mount {
                path: "/mnt/".into()
            }
        );
    }

    #[test]
    fn accesses_become_probes_where_the_oracle_can_judge_them() {
        let file = Access::File {
            path: "/share/x".into(),
            perms: "rw".into(),
        };
        assert_eq!(file.probe(), Some(Probe::file("/share/x", FilePerms::RW)));
        assert_eq!(file.describe(), "read and write /share/x");
        let cap = Access::Capability {
            name: "sys_time".into(),
        };
        assert_eq!(cap.probe(), Some(Probe::Capability("sys_time")));
        assert_eq!(
            Access::Capability {
                name: "bogus".into()
            }
            .probe(),
            None
        );
        assert_eq!(
            Access::Mount {
                path: "/mnt".into()
            }
            .probe(),
            None
        );
    }
}
