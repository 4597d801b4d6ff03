//! The literal path checks: every path from the config that reaches the profile and the
//! Docker body (map targets, devices, profile rules) is absolute, normalised and literal, so
//! it means the same thing in both places; map targets also stay off the system directories.

/// Kernel interfaces: nothing may be mounted anywhere inside them (a bind there would replace
/// what the kernel shows, or hide the device nodes the cgroup rules gate).
const KERNEL_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Directories a map may not replace as a whole: the image's code, its configuration and its
/// runtime state. A folder inside one (`/usr/local`, `/etc/<app>`) is accepted, as by the
/// Supervisor; only the directory itself cannot be made safe (the image would stop working,
/// or the add-on's own writable copy of it would become the code that runs).
const WHOLE_DIRS: [&str; 17] = [
    "/bin",
    "/boot",
    "/etc",
    "/init",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/run",
    "/sbin",
    "/usr",
    "/usr/bin",
    "/usr/lib",
    "/usr/libexec",
    "/usr/sbin",
    "/var",
    "/var/run",
];

/// Check a path from the config that reaches the profile and the Docker body: absolute,
/// normalised and literal (no AppArmor pattern characters, quotes or control characters).
/// The profile quotes and escapes as well; rejecting here keeps a surprising path from ever
/// meaning something else in one of the two places.
pub fn check_literal_path(path: &str) -> Result<(), String> {
    if plain_normal_path(path) {
        return Ok(());
    }
    literal_path_problem(path)
}

/// Every rule of [`check_literal_path`], one at a time, to say which one a path breaks.
fn literal_path_problem(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be absolute".into());
    }
    if path.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    if let Some(c) = path.chars().find(|c| {
        matches!(
            c,
            '*' | '?'
                | '['
                | ']'
                | '{'
                | '}'
                | '^'
                | '@'
                | '"'
                | '\\'
                | ','
                | '#'
                | '$'
                | '='
                | '\''
                | '~'
        )
    }) {
        return Err(format!("must not contain '{c}'"));
    }
    if path != "/"
        && (path.ends_with('/')
            || path.contains("//")
            || path.split('/').any(|s| s == "." || s == ".."))
    {
        return Err("must be normalised (no '.', '..', '//' or trailing '/')".into());
    }
    if path.split('/').any(|s| s != s.trim()) {
        return Err("must not have leading or trailing spaces in a component".into());
    }
    Ok(())
}

/// The common case of [`check_literal_path`] in one pass over the bytes: absolute, every
/// component non-empty, not `.` or `..`, and made of ASCII letters, digits and `._-+:` only.
/// Anything else takes the slow path, which says what is wrong.
fn plain_normal_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    // Split as bytes: `str::split` searches for a char, several times slower on short paths.
    rest.is_empty()
        || rest.as_bytes().split(|b| *b == b'/').all(|segment| {
            !segment.is_empty()
                && segment != b"."
                && segment != b".."
                && segment.iter().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b':')
                })
        })
}

/// A map target as the config writes it, normalised as the Supervisor's Docker mount is: one
/// trailing `/` dropped (`/home/node/` is `/home/node`).
pub fn normalise_target(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    }
}

/// Check a (normalised) target path from the config: literal (see [`check_literal_path`]),
/// not `/`, nothing inside `/proc`, `/sys` or `/dev`, and not one of the code, configuration
/// or runtime directories as a whole. Everything else is mounted where the config says.
pub fn check_target_path(path: &str) -> Result<(), String> {
    check_literal_path(path)?;
    if path == "/" {
        return Err("must not be '/': it would replace the whole image".into());
    }
    for dir in KERNEL_DIRS {
        if path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return Err(format!(
                "must not be inside {dir}: it is the kernel's interface, not a folder"
            ));
        }
    }
    if WHOLE_DIRS.contains(&path) {
        return Err(format!(
            "must not replace {path} as a whole: the image's own code or configuration lives there (a folder inside it is accepted)"
        ));
    }
    Ok(())
}

/// Check a device path from the config: a literal path under `/dev`.
pub fn check_device_path(path: &str) -> Result<(), String> {
    check_literal_path(path)?;
    if !path.starts_with("/dev/") {
        return Err("must be under /dev".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass check accepts nothing the rule-by-rule check refuses.
        #[test]
        fn fast_path_check_is_never_looser(path in "[/a.:+_~* \u{e9}\n-]{0,12}") {
            if plain_normal_path(&path) {
                prop_assert!(literal_path_problem(&path).is_ok(), "{path:?}");
            }
        }
    }

    #[test]
    fn targets_the_supervisor_accepts_are_accepted() {
        for path in [
            "/usr/local",
            "/etc/app",
            "/home/node",
            "/root",
            "/opt",
            "/opt/x",
        ] {
            assert_eq!(check_target_path(path), Ok(()), "{path}");
        }
        assert_eq!(normalise_target("/home/node/"), "/home/node");
        assert_eq!(normalise_target("/"), "/");
        for (path, why) in [
            ("/", "whole image"),
            ("/proc/x", "kernel"),
            ("/sys", "kernel"),
            ("/dev/x", "kernel"),
            ("/usr", "as a whole"),
            ("/etc", "as a whole"),
            ("/usr/bin", "as a whole"),
        ] {
            let err = check_target_path(path).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
    }

    #[test]
    fn fast_path_takes_the_usual_paths() {
        for path in [
            "/",
            "/dev/ttyUSB0",
            "/share/my-app_1.2",
            "/dev/serial/by-id/usb-x:1.0",
        ] {
            assert!(plain_normal_path(path), "{path}");
        }
        for path in [
            "",
            "dev",
            "/a/",
            "//a",
            "/a/./b",
            "/a/..",
            "/a b",
            "/a*",
            "/caf\u{e9}",
        ] {
            assert!(!plain_normal_path(path), "{path}");
        }
    }
}
