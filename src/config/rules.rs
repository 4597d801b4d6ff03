//! The voluptuous validators the Supervisor's schema is made of, over [`Node`]s.
//!
//! Each function returns the coerced value or an error message; the caller attaches the
//! position and the key path. Keeping them separate from the schema makes each one testable
//! against what voluptuous does.

use std::sync::LazyLock;

use regex::Regex;

use crate::source::{Node, Value};

pub type Check<T> = Result<T, String>;

/// `vol.Boolean()`: strings from a fixed list in any case; anything else by Python truthiness.
pub fn boolean(node: &Node) -> Check<bool> {
    match &node.value {
        Value::Str(s) => match s.to_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "enable" => Ok(true),
            "0" | "false" | "no" | "off" | "disable" => Ok(false),
            _ => Err(format!("expected boolean, got {}", node.display())),
        },
        _ => Ok(node.truthy()),
    }
}

/// Python's `int(value)`: integers, floats truncated, booleans as 0/1, and strings of decimal
/// digits (surrounding white space and single underscores between digits allowed).
pub fn coerce_int(node: &Node) -> Check<i128> {
    let fail = || format!("expected int, got {}", node.display());
    match &node.value {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::Float(f) if f.is_finite() => Ok(f.trunc() as i128),
        Value::Str(s) => python_int_literal(s).ok_or_else(fail),
        _ => Err(fail()),
    }
}

fn python_int_literal(s: &str) -> Option<i128> {
    let t = s.trim();
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let value: i128 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -value } else { value })
}

/// `network_port`: `vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))`.
pub fn network_port(node: &Node) -> Check<u16> {
    let value = coerce_int(node)?;
    if (1..=65535).contains(&value) {
        Ok(value as u16)
    } else {
        Err(format!(
            "value must be at most 65535 and at least 1, got {value}"
        ))
    }
}

/// The `str` type check.
pub fn string(node: &Node) -> Check<&str> {
    node.as_str()
        .ok_or_else(|| format!("expected str, got {}", node.kind()))
}

/// `vol.Match(pattern)` (anchored at the start, like Python's `re.match`).
pub fn matches<'a>(node: &'a Node, re: &Regex, what: &str) -> Check<&'a str> {
    let s = node
        .as_str()
        .ok_or_else(|| format!("expected a string ({what}), got {}", node.kind()))?;
    if re.is_match(s) {
        Ok(s)
    } else {
        Err(format!("{} is not {what}", node.display()))
    }
}

/// `version_tag`: anything `AwesomeVersion` accepts, formatted as Python's `str()` would.
pub fn version(node: &Node) -> Check<String> {
    match &node.value {
        Value::Seq(_) | Value::Map(_) => Err(format!("expected a version, got {}", node.kind())),
        Value::Null => Err("expected a version, got null".to_owned()),
        _ => Ok(node.python_str().unwrap_or_default()),
    }
}

/// `vol.Url()`: Python's `urlparse` must find a scheme and a host.
pub fn url(node: &Node) -> Check<&str> {
    let s = node.as_str().ok_or_else(|| "expected a URL".to_owned())?;
    // urlparse: scheme = leading [A-Za-z][A-Za-z0-9+.-]* before ':'; netloc after '//'.
    let valid = s.split_once(':').is_some_and(|(scheme, rest)| {
        let scheme_ok = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let netloc = rest
            .strip_prefix("//")
            .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
        scheme_ok && netloc.is_some_and(|n| !n.is_empty())
    });
    if valid {
        Ok(s)
    } else {
        Err(format!(
            "expected a URL with a scheme and a host, got {}",
            node.display()
        ))
    }
}

/// Compile a pattern written for Python's `re`. Python's `$` also matches before a final
/// line break (so `re.match("^a$", "a\n")` succeeds); Rust's does not, so a trailing `$`
/// becomes `\n?\z`.
pub fn python_regex(pattern: &str) -> Regex {
    let translated = match pattern.strip_suffix('$') {
        Some(head) => format!("{head}\\n?\\z"),
        None => pattern.to_owned(),
    };
    Regex::new(&translated).expect("static regex")
}

macro_rules! regex {
    ($name:ident, $pattern:expr) => {
        pub static $name: LazyLock<Regex> = LazyLock::new(|| python_regex($pattern));
    };
}

regex!(RE_SLUG, r"^[-_.A-Za-z0-9]+$");
regex!(
    RE_MACHINE,
    r"^!?(?:|intel-nuc|khadas-vim3|generic-aarch64|generic-x86-64|odroid-c2|odroid-c4|odroid-m1|odroid-n2|odroid-xu|qemuarm-64|qemuarm|qemux86-64|qemux86|raspberrypi|raspberrypi2|raspberrypi3-64|raspberrypi3|raspberrypi4-64|raspberrypi4|raspberrypi5-64|yellow|green|tinker)$"
);
regex!(
    RE_WATCHDOG,
    r"^(?:https?|\[PROTO:\w+\]|tcp)://\[HOST\]:(?:\[PORT:\d+\]|\d+).*$"
);
regex!(
    RE_WEBUI,
    r"^(?:https?|\[PROTO:\w+\])://\[HOST\]:\[PORT:\d+\].*$"
);
regex!(RE_DOCKER_PORT, r"^(\d+)(?:/(tcp|udp))?$");
regex!(RE_SERVICE, r"^(?:mqtt|mysql):(?:provide|want|need)$");
regex!(
    RE_VOLUME,
    r"^(data|config|ssl|local_apps|addons|backup|share|media|homeassistant_config|all_app_configs|all_addon_configs|app_config|addon_config)(?::(rw|ro))?$"
);
regex!(RE_IMAGE_COMPONENT, r"^[a-z0-9{][a-z0-9.\-_{}]*$");
regex!(
    RE_REGISTRY,
    r"^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))(?::\d{1,5})?$"
);
regex!(
    RE_BUILD_FROM,
    r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$"
);
/// `environment` keys: `re.match(r"\w*")` matches every string (an empty match counts).
pub fn environment_key_ok(_key: &str) -> bool {
    true
}

/// `docker_image`: a repository without tag, lowercase path components, `{arch}`/`{machine}`
/// placeholders allowed, and a valid registry host when the first component names one.
pub fn docker_image(node: &Node) -> Check<&str> {
    let s = node
        .as_str()
        .ok_or_else(|| format!("expected an image name, got {}", node.kind()))?;
    let parts: Vec<&str> = s.split('/').collect();
    let bad = |why: &str| {
        Err(format!(
            "{} is not a valid image name: {why}",
            node.display()
        ))
    };
    if parts.len() < 2 {
        return bad("expected at least a namespace and a name, such as ghcr.io/owner/name");
    }
    let (registry, path) = if parts.len() > 2
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        (Some(parts[0]), &parts[1..])
    } else {
        (None, &parts[..])
    };
    if let Some(registry) = registry
        && !RE_REGISTRY.is_match(registry)
    {
        return bad("the registry is not a valid host name");
    }
    for component in path {
        if !RE_IMAGE_COMPONENT.is_match(component) {
            return bad(if component.contains(':') || component.contains('@') {
                "a tag or digest is not allowed (the version is the tag)"
            } else {
                "each path component must be lowercase letters, digits, '.', '-', '_' or a {placeholder}"
            });
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Pos;

    fn n(v: Value) -> Node {
        Node::new(v, Pos::default())
    }
    fn s(x: &str) -> Node {
        n(Value::Str(x.into()))
    }

    #[test]
    fn boolean_like_voluptuous() {
        for t in ["1", "true", "YES", "On", "enable", "True"] {
            assert_eq!(boolean(&s(t)), Ok(true), "{t}");
        }
        for f in ["0", "false", "NO", "off", "Disable", "False"] {
            assert_eq!(boolean(&s(f)), Ok(false), "{f}");
        }
        assert!(boolean(&s("maybe")).is_err());
        assert!(boolean(&s("")).is_err());
        assert_eq!(boolean(&n(Value::Int(2))), Ok(true));
        assert_eq!(boolean(&n(Value::Int(0))), Ok(false));
        assert_eq!(boolean(&n(Value::Null)), Ok(false));
        assert_eq!(boolean(&n(Value::Seq(vec![]))), Ok(false));
    }

    #[test]
    fn int_like_python() {
        assert_eq!(coerce_int(&s(" 42 ")), Ok(42));
        assert_eq!(coerce_int(&s("1_000")), Ok(1000));
        assert_eq!(coerce_int(&s("-3")), Ok(-3));
        assert!(coerce_int(&s("1.5")).is_err());
        assert!(coerce_int(&s("1__0")).is_err());
        assert!(coerce_int(&s("0x10")).is_err());
        assert_eq!(coerce_int(&n(Value::Float(12.9))), Ok(12));
        assert_eq!(coerce_int(&n(Value::Bool(true))), Ok(1));
        assert!(coerce_int(&n(Value::Null)).is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(network_port(&s("8080")), Ok(8080));
        assert!(network_port(&n(Value::Int(0))).is_err());
        assert!(network_port(&n(Value::Int(65536))).is_err());
    }

    #[test]
    fn images() {
        for ok in [
            "ghcr.io/home-assistant/{arch}-addon-ssh",
            "homeassistant/{arch}-addon-ssh",
            "localhost:5000/me/thing",
            "registry.example.com:443/a/b/c",
        ] {
            assert!(docker_image(&s(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "Ghcr.io/Me/Thing",
            "me/Thing",
            "me/thing:latest",
            "alpine",
            "me/thing@sha256:abc",
            "bad_host!/a/b",
        ] {
            assert!(docker_image(&s(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(url(&s("https://example.com/x")).is_ok());
        assert!(url(&s("example.com")).is_err());
        assert!(url(&s("https://")).is_err());
        assert!(url(&n(Value::Int(3))).is_err());
    }

    #[test]
    fn watchdog_and_webui() {
        assert!(RE_WATCHDOG.is_match("tcp://[HOST]:[PORT:1883]"));
        assert!(RE_WATCHDOG.is_match("http://[HOST]:8080/health"));
        assert!(!RE_WATCHDOG.is_match("ftp://[HOST]:21"));
        assert!(RE_WEBUI.is_match("[PROTO:ssl]://[HOST]:[PORT:443]/"));
        assert!(!RE_WEBUI.is_match("http://[HOST]:8080"));
    }
}
