//! A real registry for the trust tests: Debian's `docker-registry` started with a config of
//! the test's own, bound to 127.0.0.1 only, and the bits of the distribution API the tests
//! push with (blobs, manifests), over plain HTTP/1.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An answer: status, headers (lowercase names), body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

pub struct Registry {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's registry binary, or None (skip) unless `REQUIRE_REGISTRY=1`.
pub fn binary() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/docker-registry");
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("REQUIRE_REGISTRY").as_deref() == Ok("1") {
        panic!(
            "REQUIRE_REGISTRY=1 but /usr/bin/docker-registry is missing (apt-get install docker-registry)"
        );
    }
    eprintln!("skipped: no /usr/bin/docker-registry (set REQUIRE_REGISTRY=1 to fail instead)");
    None
}

impl Registry {
    pub fn start(binary: &std::path::Path) -> Registry {
        let registry = Registry::spawn(binary, |addr, dir| {
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            )
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while registry.request("GET", "/v2/", &[], &[]).map(|r| r.0) != Some(200) {
            assert!(Instant::now() < deadline, "the registry did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    /// `docker-registry serve` of the config `config(address, its folder)` on a free port.
    fn spawn(
        binary: &std::path::Path,
        config: impl FnOnce(&str, &std::path::Path) -> String,
    ) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let file = dir.path().join("config.yml");
        std::fs::write(&file, config(&addr, dir.path())).unwrap();
        let child = Command::new(binary)
            .args(["serve", file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        Registry {
            addr,
            child,
            _dir: dir,
        }
    }

    /// The registry's storage: another registry may serve the same images.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// A second registry over `data` (the same images), served over HTTPS with `cert`/`key`
    /// and asking for tokens from `realm` (the `auth: token` of Docker's distribution: a JWT
    /// whose `x5c` chain ends in `bundle`, issuer `test-issuer`, service `test-registry`).
    pub fn start_secure(
        binary: &std::path::Path,
        data: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
        realm: &str,
        bundle: &std::path::Path,
    ) -> Registry {
        let registry = Registry::spawn(binary, |addr, _| {
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nauth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {}\n    key: {}\n",
                data.display(),
                bundle.display(),
                cert.display(),
                key.display()
            )
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            assert!(Instant::now() < deadline, "the registry did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    /// One request; the status, the headers (lowercase names) and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Answer> {
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let text = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Some((status, headers, body))
    }

    /// Upload a blob; returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = addon_sandbox::trust::sha256_digest(bytes);
        let (status, headers, _) = self
            .request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[])
            .unwrap();
        assert_eq!(status, 202, "start upload");
        let location = headers
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.clone())
            .unwrap();
        let path = location
            .split_once(&self.addr)
            .map_or(location.as_str(), |(_, p)| p);
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, body) = self
            .request(
                "PUT",
                &format!("{path}{sep}digest={digest}"),
                &[("Content-Type", "application/octet-stream")],
                bytes,
            )
            .unwrap();
        assert_eq!(
            status,
            201,
            "finish upload: {}",
            String::from_utf8_lossy(&body)
        );
        digest
    }

    pub fn put_manifest(&self, repo: &str, tag: &str, media: &str, bytes: &[u8]) {
        let (status, _, body) = self
            .request(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Content-Type", media)],
                bytes,
            )
            .unwrap();
        assert_eq!(
            status,
            201,
            "put manifest: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// The manifest bytes of `repo:tag` as Docker pushed them.
    pub fn manifest(&self, repo: &str, tag: &str) -> Vec<u8> {
        let (status, _, body) = self
            .request(
                "GET",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[(
                    "Accept",
                    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
                )],
                &[],
            )
            .unwrap();
        assert_eq!(status, 200);
        body
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
    out
}
