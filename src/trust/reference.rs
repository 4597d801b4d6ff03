//! Image references as Docker reads them (`busybox` is `docker.io/library/busybox:latest`), so
//! that a policy pattern, the cache and the engine all name an image the same way.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference {0:?} is empty or has a space or control character")]
    Malformed(String),
    #[error("image reference {0:?}: the digest must be sha256: and 64 lowercase hex digits")]
    BadDigest(String),
    #[error(
        "image reference {0:?}: the repository must be lowercase letters, digits and . _ - / (Docker's grammar)"
    )]
    BadRepository(String),
}

/// `registry/repository` with a tag and/or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/busybox`, `home-assistant/amd64-addon-ssh`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

impl Reference {
    /// Docker's normalisation: a first component without `.` or `:` that is not `localhost` is
    /// a Docker Hub name; a one-component Hub name is under `library/`; no tag and no digest
    /// means `latest`.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError::Malformed(text.to_owned()));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                if !is_sha256_digest(digest) {
                    return Err(ReferenceError::BadDigest(text.to_owned()));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            Some(_) => ("docker.io".to_owned(), name.to_owned()),
            None => ("docker.io".to_owned(), format!("library/{name}")),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if !repo_ok || tag.as_deref().is_some_and(|t| !valid_tag(t)) {
            return Err(ReferenceError::BadRepository(text.to_owned()));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, what policy patterns match.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag or digest a registry is asked for (the digest wins).
    pub fn lookup(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = Reference::parse("ghcr.io/home-assistant/amd64-addon-ssh:9.1").unwrap();
        assert_eq!(r.name(), "ghcr.io/home-assistant/amd64-addon-ssh");
        assert_eq!(r.tag.as_deref(), Some("9.1"));
        let r = Reference::parse("127.0.0.1:5000/t/busybox:1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "t/busybox");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["", "a b", "Upper/case", "x@sha256:12", "x:", "a//b"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
