//! The literal path checks: every path from the config that reaches the profile and the
//! Docker body (map targets, devices, profile rules) is absolute, normalised and literal, so
//! it means the same thing in both places; map targets also stay off the system directories.

/// System directories no map may cover: the image's code, and the kernel's interfaces.
const SYSTEM_DIRS: [&str; 15] = [
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/sys", "/usr", "/var/run", "/init",
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

/// Check a target path from the config: literal (see [`check_literal_path`]), not `/` and not
/// over a system directory.
pub fn check_target_path(path: &str) -> Result<(), String> {
    check_literal_path(path)?;
    if path == "/" {
        return Err("must not be '/'".into());
    }
    for dir in SYSTEM_DIRS {
        if path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return Err(format!("must not be inside the system directory {dir}"));
        }
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
