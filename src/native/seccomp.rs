//! The sandbox's seccomp filter: Docker's default profile ([`seccomp_table`]) decided for the
//! plan's capabilities (the same set the sandbox's process gets), as Docker decides it for a
//! container's, plus two restrictions of this crate's own against code that does not come from
//! the image:
//!
//! - `memfd_create` only with `MFD_NOEXEC_SEAL` (and without `MFD_EXEC`): a memfd is an
//!   anonymous file that no `noexec` mount covers and that Landlock does not mediate (it lives
//!   on an internal mount), so an executable one would run code written at run time. Kernels
//!   before 6.3 do not know the flag and refuse the call: there memfd is simply unavailable,
//!   which is the closed side to fail on.
//! - `execveat` only without `AT_EMPTY_PATH`: executing an open file descriptor (`fexecve`)
//!   runs whatever the descriptor names, wherever it came from.
//!
//! Denied calls fail with EPERM (`defaultErrnoRet`). A profile entry with another errno
//! (`clone3` → ENOSYS without CAP_SYS_ADMIN) becomes a second filter installed after the first:
//! the kernel runs the newest filter first and keeps the first result of the most restrictive
//! kind, so ENOSYS wins over the first filter's EPERM. Only the native architecture's calls pass;
//! seccompiler kills a process making calls of another ABI (32-bit `int 0x80`, arm32 on arm64),
//! where Docker would filter them by the same names: 32-bit programs do not run natively.
//!
//! [`seccomp_table`]: super::seccomp_table

use std::collections::{BTreeMap, HashMap};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::seccomp_numbers;
use super::seccomp_table::{Action, Arg, DEFAULT_ERRNO, Entry, PROFILE};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "no seccomp filter for the {0} architecture: the native backend runs on x86_64 and aarch64"
    )]
    Architecture(String),
    #[error("build the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("apply the seccomp filter: {0}")]
    Apply(#[from] seccompiler::Error),
}

const MFD_NOEXEC_SEAL: u64 = 0x8;
const MFD_EXEC: u64 = 0x10;
const AT_EMPTY_PATH: u64 = 0x1000;

/// This crate's restrictions (see the module documentation): each replaces the conditions the
/// profile gave the call, when the profile allows it at all.
const OVERRIDES: &[(&str, &[Arg])] = &[
    (
        "memfd_create",
        &[Arg::MaskedEq(
            1,
            MFD_NOEXEC_SEAL | MFD_EXEC,
            MFD_NOEXEC_SEAL,
        )],
    ),
    ("execveat", &[Arg::MaskedEq(4, AT_EMPTY_PATH, 0)]),
];

/// Syscall name → the alternative conditions under which its action applies; an empty
/// alternative means always.
pub type Rules = BTreeMap<&'static str, Vec<&'static [Arg]>>;

/// The architecture as the profile names it (Go's names), and as seccompiler does.
fn architecture(arch: &str) -> Result<(&'static str, TargetArch, &'static str), SeccompError> {
    match arch {
        "x86_64" => Ok(("amd64", TargetArch::x86_64, seccomp_numbers::X86_64)),
        "aarch64" => Ok(("arm64", TargetArch::aarch64, seccomp_numbers::AARCH64)),
        other => Err(SeccompError::Architecture(other.to_owned())),
    }
}

/// Whether a profile entry applies, as moby's `setupSeccomp` decides it: every included
/// capability held, no excluded one; the architecture included (when the entry names any) and
/// not excluded; the kernel new enough.
fn applies(entry: &Entry, caps: &[String], arch: &str, kernel: (u32, u32)) -> bool {
    let held = |cap: &&str| {
        caps.iter()
            .any(|c| cap.strip_prefix("CAP_") == Some(c.as_str()))
    };
    entry.caps.iter().all(&held)
        && !entry.not_caps.iter().any(held)
        && (entry.arches.is_empty() || entry.arches.contains(&arch))
        && !entry.not_arches.contains(&arch)
        && entry.min_kernel.is_none_or(|min| kernel >= min)
}

/// The profile decided: per action, the calls it applies to. `caps` are names without `CAP_`
/// (`NET_ADMIN`), as the plan has them; `arch` is the profile's name (`amd64`).
pub fn decide(caps: &[String], arch: &str, kernel: (u32, u32)) -> BTreeMap<Action, Rules> {
    let mut decided: BTreeMap<Action, Rules> = BTreeMap::new();
    for entry in PROFILE.iter().filter(|e| applies(e, caps, arch, kernel)) {
        let rules = decided.entry(entry.action).or_default();
        for name in entry.names.split_whitespace() {
            rules.entry(name).or_default().push(entry.args);
        }
    }
    if let Some(allowed) = decided.get_mut(&Action::Allow) {
        for (name, args) in OVERRIDES {
            if let Some(conditions) = allowed.get_mut(name) {
                *conditions = vec![*args];
            }
        }
    }
    decided
}

/// The kernel reads these arguments as 32-bit `int`s: compare only the low half, so that high
/// bits set by the caller cannot make a value look different from what the kernel will use.
/// `clone`'s flags are an `unsigned long`.
fn width(name: &str) -> SeccompCmpArgLen {
    if name == "clone" {
        SeccompCmpArgLen::Qword
    } else {
        SeccompCmpArgLen::Dword
    }
}

fn condition(name: &str, arg: Arg) -> Result<SeccompCondition, SeccompError> {
    let (index, op, value) = match arg {
        Arg::Eq(i, v) => (i, SeccompCmpOp::Eq, v),
        Arg::Ne(i, v) => (i, SeccompCmpOp::Ne, v),
        Arg::MaskedEq(i, mask, v) => (i, SeccompCmpOp::MaskedEq(mask), v),
    };
    Ok(SeccompCondition::new(index, width(name), op, value)?)
}

/// One seccompiler filter: the named calls (those this architecture has) get `action`, every
/// other call `otherwise`.
fn filter(
    rules: &Rules,
    numbers: &HashMap<&str, i64>,
    action: SeccompAction,
    otherwise: SeccompAction,
    target: TargetArch,
) -> Result<BpfProgram, SeccompError> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (name, alternatives) in rules {
        let Some(&number) = numbers.get(name) else {
            continue;
        };
        // An unconditional alternative makes the others moot (and seccompiler reads an empty
        // list of rules as "always").
        let seccomp_rules = if alternatives.iter().any(|a| a.is_empty()) {
            Vec::new()
        } else {
            alternatives
                .iter()
                .map(|args| {
                    let conditions = args
                        .iter()
                        .map(|a| condition(name, *a))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(SeccompRule::new(conditions)?)
                })
                .collect::<Result<Vec<_>, SeccompError>>()?
        };
        map.insert(number, seccomp_rules);
    }
    let filter = SeccompFilter::new(map, otherwise, action, target)?;
    Ok(filter.try_into()?)
}

/// The filters for `caps` on the architecture `arch` (`std::env::consts::ARCH`) under a kernel
/// of `kernel`, in the order to install them.
pub fn compile(
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> Result<Vec<BpfProgram>, SeccompError> {
    let (profile_arch, target, table) = architecture(arch)?;
    let numbers: HashMap<&str, i64> = table
        .split_whitespace()
        .filter_map(|pair| {
            let (name, number) = pair.split_once('=')?;
            Some((name, number.parse().ok()?))
        })
        .collect();
    let deny = SeccompAction::Errno(DEFAULT_ERRNO);
    let mut programs = Vec::new();
    let decided = decide(caps, profile_arch, kernel);
    if let Some(allowed) = decided.get(&Action::Allow) {
        programs.push(filter(
            allowed,
            &numbers,
            SeccompAction::Allow,
            deny,
            target,
        )?);
    }
    for (action, rules) in &decided {
        if let Action::Errno(errno) = action {
            programs.push(filter(
                rules,
                &numbers,
                SeccompAction::Errno(*errno),
                SeccompAction::Allow,
                target,
            )?);
        }
    }
    Ok(programs)
}

/// The running kernel's (major, minor); (0, 0) when unreadable, so that entries needing a newer
/// kernel stay out.
pub fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Install the filters in order. The calling thread must have `no_new_privs` set.
pub fn apply(programs: &[BpfProgram]) -> Result<(), SeccompError> {
    for program in programs {
        seccompiler::apply_filter(program)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::seccomp_table::CLONE_NAMESPACE_FLAGS;

    fn allowed(caps: &[&str]) -> Rules {
        let caps: Vec<String> = caps.iter().map(|c| (*c).to_owned()).collect();
        decide(&caps, "amd64", (6, 1))
            .remove(&Action::Allow)
            .unwrap()
    }

    #[test]
    fn capabilities_decide_the_conditional_calls() {
        let plain = allowed(&[]);
        for denied in [
            "unshare", "mount", "setns", "keyctl", "add_key", "bpf", "reboot", "chroot",
        ] {
            assert!(!plain.contains_key(denied), "{denied}");
        }
        // The kernel ≥ 4.8 entry, as Docker has it.
        assert!(allowed(&[]).contains_key("process_vm_readv"));
        let admin = allowed(&["SYS_ADMIN"]);
        assert!(admin.contains_key("unshare") && admin.contains_key("mount"));
        assert_eq!(admin["clone"], vec![&[] as &[Arg]], "unconditional");
        assert_eq!(
            plain["clone"],
            vec![&[Arg::MaskedEq(0, CLONE_NAMESPACE_FLAGS, 0)] as &[Arg]]
        );
        assert!(allowed(&["SYS_TIME"]).contains_key("clock_settime"));
        assert!(!plain.contains_key("clock_settime"));
    }

    #[test]
    fn io_uring_and_executable_memfds_are_out() {
        let plain = allowed(&[]);
        for name in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
            assert!(!plain.contains_key(name), "{name}");
        }
        assert_eq!(
            plain["memfd_create"],
            vec![&[Arg::MaskedEq(1, 0x18, 0x8)] as &[Arg]]
        );
        assert_eq!(
            plain["execveat"],
            vec![&[Arg::MaskedEq(4, 0x1000, 0)] as &[Arg]]
        );
    }

    #[test]
    fn clone3_is_enosys_only_without_sys_admin() {
        let decided = decide(&[], "arm64", (6, 1));
        assert!(decided[&Action::Errno(38)].contains_key("clone3"));
        let admin = decide(&["SYS_ADMIN".into()], "arm64", (6, 1));
        assert!(!admin.contains_key(&Action::Errno(38)));
        assert!(admin[&Action::Allow].contains_key("clone3"));
        // arm64 gets the arm entries, not the x86 ones.
        assert!(decided[&Action::Allow].contains_key("cacheflush"));
        assert!(!decided[&Action::Allow].contains_key("arch_prctl"));
    }

    #[test]
    fn both_architectures_compile_and_others_are_refused() {
        for arch in ["x86_64", "aarch64"] {
            assert_eq!(compile(&[], arch, (6, 1)).unwrap().len(), 2, "{arch}");
            assert_eq!(
                compile(&["SYS_ADMIN".into()], arch, (6, 1)).unwrap().len(),
                1
            );
        }
        assert!(matches!(
            compile(&[], "riscv64", (6, 1)),
            Err(SeccompError::Architecture(_))
        ));
    }

    #[test]
    fn the_number_tables_name_the_calls_the_tests_rely_on() {
        for table in [seccomp_numbers::X86_64, seccomp_numbers::AARCH64] {
            for name in [
                "read",
                "execve",
                "clone",
                "clone3",
                "memfd_create",
                "socket",
            ] {
                assert!(
                    table
                        .split_whitespace()
                        .any(|p| p.split('=').next() == Some(name)),
                    "{name}"
                );
            }
        }
    }
}
