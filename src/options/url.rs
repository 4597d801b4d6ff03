//! `vol.Url()`: `urllib.parse.urlparse` must find a scheme and a host (`netloc`).

/// Whether `urlparse(value)` has a scheme and a netloc and does not raise.
pub fn is_url(value: &str) -> bool {
    // urlsplit strips leading C0 controls and spaces and drops tabs and newlines anywhere.
    let cleaned: String = value
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let Some((scheme, rest)) = split_scheme(&cleaned) else {
        return false;
    };
    let scheme = scheme.trim_matches(|c: char| c <= ' ');
    let Some(after) = rest.strip_prefix("//") else {
        return false;
    };
    let netloc = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    !scheme.is_empty() && !netloc.is_empty() && brackets_ok(netloc)
}

/// `url[:i]` before the first `:` is the scheme when it starts with an ASCII letter and
/// holds only letters, digits, `+`, `-` and `.`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let i = url.find(':')?;
    let scheme = &url[..i];
    let first = scheme.chars().next()?;
    let valid = first.is_ascii_alphabetic()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| (scheme, &url[i + 1..]))
}

/// urlsplit raises `Invalid IPv6 URL` for an unbalanced bracket, and for a bracketed host
/// that is neither an IPv6 address nor `v<hex>.<text>` (IPvFuture).
fn brackets_ok(netloc: &str) -> bool {
    let open = netloc.contains('[');
    let close = netloc.contains(']');
    if open != close {
        return false;
    }
    if !open {
        return true;
    }
    let inside = netloc.split_once('[').map_or("", |(_, r)| r);
    let host = inside.split_once(']').map_or(inside, |(h, _)| h);
    if let Some(future) = host.strip_prefix('v') {
        return future.split_once('.').is_some_and(|(hex, rest)| {
            !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) && !rest.is_empty()
        });
    }
    let address = host.split_once('%').map_or(host, |(a, _)| a);
    address.parse::<std::net::Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::is_url;

    #[test]
    fn urls_like_urlparse() {
        for ok in [
            "http://example.com",
            "mqtt://h:1883/x",
            " https://a",
            "http://[::1]:80/",
            "x+y://h",
        ] {
            assert!(is_url(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "//example.com/path",
            "http:/x",
            "http://",
            "1http://h",
            "http://[::1/",
            "http://[zz]/",
        ] {
            assert!(!is_url(bad), "{bad}");
        }
    }
}
