//! The request path the gateway decides on is the path it forwards, byte for byte.
//!
//! A proxy that matches one spelling of a path and forwards another is an access-control
//! bypass waiting for the upstream's decoder to disagree with its own. So the raw path is
//! decoded once, checked, reduced to one canonical spelling (no dot segments, no empty
//! segments), and that spelling is both matched against the role tables and sent upstream.
//! Whatever could be read two ways is refused with 400 instead of guessed at: encoded `/`, `\`
//! and NUL, control characters, a `%` left after decoding (double encoding), a `..` that
//! climbs above the root, text that is not UTF-8. So is every spelling an upstream might
//! read as another name: a path parameter (`security;x`, which some servers strip), a segment
//! ending in a dot or a space (`security.`, `security%20`, trimmed by some file systems and
//! frameworks), and any non-ASCII character (`ſecurity` and the Kelvin sign fold to ASCII
//! letters under Unicode case rules, which the lowercase check cannot see). The Supervisor's
//! own bad-request filters run on top, on the recursively decoded path and query, as it runs
//! them.

use std::sync::LazyLock;

use regex::Regex;

/// Why a path was refused (the 400's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is not absolute")]
    NotAbsolute,
    #[error("bad percent-encoding in path")]
    BadEscape,
    #[error("path is not utf-8 after decoding")]
    NotUtf8,
    #[error("encoded slash, backslash or nul in path")]
    EncodedSeparator,
    #[error("control character in path")]
    Control,
    #[error("percent sign left after decoding (double encoding)")]
    DoubleEncoded,
    #[error("path climbs above the root")]
    EscapesRoot,
    #[error("request blocked by the supervisor's bad-request filter")]
    Filtered,
    #[error("path parameter (`;`) in path")]
    PathParameter,
    #[error("path segment ends in a dot or a space")]
    TrailingDotOrSpace,
    #[error("non-ascii character in path")]
    NotAscii,
}

/// `supervisor/api/middleware/security.py::FILTERS`, verbatim, case-insensitive.
static FILTERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:proc/self/environ|(<|%3C).*script.*(>|%3E)|(\.\.//?)+|[a-zA-Z0-9_]=/([a-z0-9_.]//?)+|union.*select.*\(|union.*all.*select.*|concat.*\()",
    )
    .expect("valid filter regex")
});

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// One round of percent-decoding; `None` on a malformed escape.
fn decode_once(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = hex(*raw.get(i + 1)?)?;
            let lo = hex(*raw.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Python's `unquote` repeated until nothing changes, as `block_bad_requests` does. Malformed
/// escapes stay as they are, like Python's.
fn unquote_recursively(text: &str) -> String {
    let mut current = text.to_owned();
    for _ in 0..16 {
        let bytes = current.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escape = (bytes[i] == b'%')
                .then(|| Some(hex(*bytes.get(i + 1)?)? << 4 | hex(*bytes.get(i + 2)?)?))
                .flatten();
            match escape {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        let next = String::from_utf8_lossy(&out).into_owned();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Characters a path segment may carry unencoded (RFC 3986 `pchar` without `%`).
fn is_segment_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// Percent-encode a decoded path for the upstream: every `/` is a separator, everything else
/// outside `pchar` is escaped, so the upstream decodes exactly the path that was matched.
pub fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b == b'/' || is_segment_char(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A segment that names one thing to every server: no path parameter, nothing trimmable at
/// its end. (`.` and `..` are resolved before this is asked.)
fn one_name(segment: &str) -> Result<&str, PathError> {
    if segment.contains(';') {
        return Err(PathError::PathParameter);
    }
    if segment.ends_with('.') || segment.ends_with(' ') {
        return Err(PathError::TrailingDotOrSpace);
    }
    Ok(segment)
}

/// The decoded, canonical path: what the tables match and what the upstream receives.
pub fn normalise(raw_path: &str) -> Result<String, PathError> {
    if !raw_path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode_once(raw_path.as_bytes()).ok_or(PathError::BadEscape)?;
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
    if decoded.bytes().any(|b| b == b'\\' || b == 0) {
        return Err(PathError::EncodedSeparator);
    }
    if decoded.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    // A slash that was encoded would be a separator here but a character upstream.
    let encoded_slashes = raw_path.matches('/').count() != decoded.matches('/').count();
    if encoded_slashes {
        return Err(PathError::EncodedSeparator);
    }
    if decoded.contains('%') {
        return Err(PathError::DoubleEncoded);
    }
    if !decoded.is_ascii() {
        return Err(PathError::NotAscii);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/').skip(1) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::EscapesRoot)?;
            }
            s => segments.push(one_name(s)?),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() {
        path.push('/');
    } else if decoded.ends_with('/') && !decoded.ends_with("/..") {
        // A trailing slash is part of what the tables see ("/info/" is not "/info").
        path.push('/');
    }
    Ok(path)
}

/// The Supervisor's `block_bad_requests`: the filters on the recursively decoded path and query.
pub fn check_filters(raw_path: &str, query: Option<&str>) -> Result<(), PathError> {
    let unquoted_path = unquote_recursively(raw_path);
    let unquoted_query = query.map(unquote_recursively).unwrap_or_default();
    if FILTERS.is_match(&unquoted_path) || FILTERS.is_match(&unquoted_query) {
        return Err(PathError::Filtered);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_spellings() {
        assert_eq!(normalise("/addons/self/info").unwrap(), "/addons/self/info");
        assert_eq!(
            normalise("//addons///self/./info").unwrap(),
            "/addons/self/info"
        );
        assert_eq!(
            normalise("/addons/x/../self/info").unwrap(),
            "/addons/self/info"
        );
        assert_eq!(
            normalise("/%61ddons/self/info").unwrap(),
            "/addons/self/info"
        );
        assert_eq!(normalise("/host/info/").unwrap(), "/host/info/");
        assert_eq!(normalise("/").unwrap(), "/");
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        use PathError::*;
        for (raw, err) in [
            ("/addons%2fself/info", EncodedSeparator),
            ("/addons%5cself", EncodedSeparator),
            ("/a%00b", EncodedSeparator),
            ("/a%0ab", Control),
            ("/a%2573ecurity", DoubleEncoded),
            ("/..", EscapesRoot),
            ("/a/../../b", EscapesRoot),
            ("/a%zz", BadEscape),
            ("/a%c3", NotUtf8),
            ("addons", NotAbsolute),
            ("/addons/self/security;x", PathParameter),
            ("/addons/self/security%3b", PathParameter),
            ("/addons/self/security.", TrailingDotOrSpace),
            ("/addons/self/security%20", TrailingDotOrSpace),
            ("/addons/self/.../x", TrailingDotOrSpace),
            ("/addons/self/%C5%BFecurity", NotAscii),
            ("/os/datadis%E2%84%AA/wipe", NotAscii),
            ("/a/%C3%BC", NotAscii),
        ] {
            assert_eq!(normalise(raw), Err(err), "{raw}");
        }
    }

    #[test]
    fn encoding_round_trips_through_normalise() {
        for p in ["/a b/c", "/q?x#y", "/a=b,c", "/a\"<>{}"] {
            assert_eq!(normalise(&encode(p)), Ok(p.to_owned()), "{p}");
        }
    }

    #[test]
    fn supervisor_filters() {
        assert!(check_filters("/x/%2e%2e/y", None).is_err());
        assert!(check_filters("/x/a..b", None).is_ok());
        assert!(check_filters("/x/%252e%252e%252fy", None).is_err());
        assert!(check_filters("/proc/self/environ", None).is_err());
        assert!(check_filters("/a", Some("q=%3Cscript%3E")).is_err());
        assert!(check_filters("/a", Some("x=UNION%20ALL%20SELECT")).is_err());
        assert!(check_filters("/addons/self/info", Some("a=b")).is_ok());
    }
}
