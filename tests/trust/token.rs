//! What a public registry's HTTPS and token flow need, made by the test with `openssl`: a
//! server certificate for 127.0.0.1 (its own CA), and a token service on 127.0.0.1 that hands
//! out one ES256 JWT (the `auth: token` format of Docker's distribution, its `x5c` chain the
//! issuer's certificate) granting `pull` on one repository, and records what it was asked.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A P-256 key and a self-signed certificate for `subject`, with `san` when given.
pub fn key_and_cert(
    dir: &Path,
    name: &str,
    subject: &str,
    san: Option<&str>,
) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.crt"));
    let (k, c) = (key.to_str().unwrap(), cert.to_str().unwrap());
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        k,
    ]);
    let mut args = vec![
        "req", "-x509", "-new", "-key", k, "-subj", subject, "-days", "2", "-out", c,
    ];
    let ext = san.map(|s| format!("subjectAltName={s}"));
    if let Some(ext) = &ext {
        args.extend(["-addext", ext]);
    }
    openssl(&args);
    (key, cert)
}

/// A CA, and a server certificate for 127.0.0.1 it issued (a CA's own certificate cannot
/// serve: TLS clients refuse a CA as the end entity). Returns (CA, server key, server cert).
pub fn server_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca_key, ca) = key_and_cert(dir, "ca", "/CN=addon-sandbox test CA", None);
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.crt");
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &path(&key),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        &path(&key),
        "-subj",
        "/CN=127.0.0.1",
        "-out",
        &path(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path(&csr),
        "-CA",
        &path(&ca),
        "-CAkey",
        &path(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &path(&ext),
        "-out",
        &path(&cert),
    ]);
    (ca, key, cert)
}

/// The JWT the registry accepts for `pull` on `repository`, signed by `key` and carrying
/// `cert` (PEM) as its `x5c` chain.
pub fn pull_token(key: &Path, cert: &Path, repository: &str) -> String {
    let der = openssl(&["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"]);
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(der)]});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": "", "aud": "test-registry",
        "exp": now + 900, "nbf": now - 60, "iat": now - 60, "jti": "addon-sandbox-test",
        "access": [{"type": "repository", "name": repository, "actions": ["pull"]}],
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let dir = key.parent().unwrap();
    let data = dir.join("jwt-input");
    std::fs::write(&data, &input).unwrap();
    let sig = openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        key.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(raw_signature(&sig)))
}

/// An ASN.1 ECDSA signature (`SEQUENCE { INTEGER r, INTEGER s }`) as JWS's 64 bytes r || s.
fn raw_signature(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 2; // SEQUENCE tag and a one-byte length: P-256 signatures are < 128 bytes
    for _ in 0..2 {
        assert_eq!(der[i], 0x02, "an INTEGER");
        let len = der[i + 1] as usize;
        let int = &der[i + 2..i + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        i += 2 + len;
    }
    out
}

/// The token service: `GET /token?...` answers `{"token": ...}`; the request lines it got.
pub struct TokenService {
    pub realm: String,
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl TokenService {
    pub fn start(token: String) -> TokenService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the head.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                seen.lock().unwrap().push(line.trim().to_owned());
                let body = serde_json::json!({ "token": token }).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenService { realm, asked }
    }
}
