//! The OCI 1.1 referrers API in front of the real registry. Debian's `docker-registry` 2.8 has
//! no referrers API and no registry that has one can be installed here, so this stand-in on
//! 127.0.0.1 answers `GET /v2/<name>/referrers/<digest>` itself, with the image index the test
//! gave it (an empty index for other digests, as the API does), and passes every other request
//! through to the real registry unchanged, one request per connection. Like the registry, it
//! speaks plain HTTP (a TLS handshake is refused as Go's server refuses it).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct ReferrersApi {
    pub addr: String,
    listed: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl ReferrersApi {
    pub fn start(upstream: &str) -> ReferrersApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let listed: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let (upstream, map) = (upstream.to_owned(), listed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (upstream, map) = (upstream.clone(), map.clone());
                std::thread::spawn(move || serve(stream, &upstream, &map));
            }
        });
        ReferrersApi { addr, listed }
    }

    /// Answer the referrers API for `digest` with `index`.
    pub fn list(&self, digest: &str, index: Vec<u8>) {
        self.listed.lock().unwrap().insert(digest.to_owned(), index);
    }
}

/// The request's head (up to the blank line) and its body (by Content-Length).
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let split = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw[0] == 0x16 {
            // A TLS ClientHello: answered as Go's HTTP server does, so the client sees a
            // registry that does not speak TLS (as the real one behind this does).
            let _ = stream.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n");
            return None;
        }
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some((head, body))
}

fn serve(mut stream: TcpStream, upstream: &str, listed: &Mutex<HashMap<String, Vec<u8>>>) {
    let Some((head, body)) = read_request(&mut stream) else {
        return;
    };
    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
    let referrers = target
        .strip_prefix("/v2/")
        .and_then(|p| p.rsplit_once("/referrers/"))
        .map(|(_, digest)| digest.split('?').next().unwrap_or_default().to_owned());
    if let Some(digest) = referrers {
        let index = listed.lock().unwrap().get(&digest).cloned().unwrap_or_else(|| {
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec()
        });
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            index.len()
        );
        let _ = stream.write_all(&index);
        return;
    }
    // Passed through: one request per connection, so the answer ends where the upstream closes.
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head.push("Connection: close");
    let _ = up.write_all(format!("{}\r\n\r\n", head.join("\r\n")).as_bytes());
    let _ = up.write_all(&body);
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    // Tell the client the connection closes, so it never reuses it.
    let status_end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(answer.len());
    let _ = stream.write_all(&answer[..status_end]);
    let _ = stream.write_all(b"\r\nConnection: close");
    let _ = stream.write_all(&answer[status_end..]);
}
