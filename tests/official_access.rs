//! Official add-ons that give access to the host from outside (nginx_proxy, ssh), as
//! stand-in images built from their own `rootfs/` (byte for byte, from
//! `../shared/workloads/official`) on Home Assistant's Debian base, run under `addon-sandbox
//! run` with the strict policy and protection on, as a user would run them (here with
//! `--allow-unconfined`: this kernel has no AppArmor). Each must reach its ready state and
//! answer a real client from outside its container; `stop` and `rm` leave nothing behind.
//!
//! Gated like the bashio test: without the base image (and REQUIRE_WORKLOADS unset) each test
//! skips with the reason. Run under the shared lock:
//! `flock /tmp/addon-sandbox-docker.lock env REQUIRE_DOCKER=1 REQUIRE_WORKLOADS=1 cargo test --test official_access`.

mod common;
#[path = "common/official.rs"]
mod official;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use official::{network, shared_official, stand_in};

const READY_WITHIN: Duration = Duration::from_secs(90);

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One official add-on under the sandbox: its folder (the official config.yaml, edited as the
/// user would through the UI where said), data root and state directory, and a standalone
/// `serve` for the Supervisor API.
struct Official {
    addon: String,
    dir: tempfile::TempDir,
    serve: Option<std::process::Child>,
    /// Where `serve` listens on loopback (for Home Assistant's calls: ingress).
    listen: String,
}

/// Home Assistant's token for `serve --core-token-file` (ingress sessions).
const CORE_TOKEN: &str = "core-token-of-the-official-tests";

impl Official {
    fn new(addon: &str, edit: impl Fn(String) -> String) -> Official {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("addon");
        std::fs::create_dir(&folder).unwrap();
        let config = std::fs::read_to_string(shared_official(addon).join("config.yaml")).unwrap();
        std::fs::write(folder.join("config.yaml"), edit(config)).unwrap();
        official::copy_apparmor(addon, &folder);
        let _ = Command::new("docker")
            .args(["network", "rm", &network(addon).0])
            .output();
        Official {
            addon: addon.to_owned(),
            dir,
            serve: None,
            listen: String::new(),
        }
    }

    fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn container(&self) -> String {
        format!("app_local_{}", self.addon)
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
        c.args(args).arg("--state-dir").arg(self.state());
        c
    }

    /// A standalone `serve` on the tests' own network, with `homeassistant` when given.
    fn serve(&mut self, homeassistant: Option<&str>) {
        let log = self.dir.path().join("serve.log");
        let (name, subnet, gateway) = network(&self.addon);
        let core = self.dir.path().join("core-token");
        std::fs::write(&core, CORE_TOKEN).unwrap();
        let mut cmd = self.cli(&["serve", "--listen", "127.0.0.1:0", "--network-name", &name]);
        cmd.args(["--subnet", subnet])
            .arg("--core-token-file")
            .arg(&core);
        if let Some(url) = homeassistant {
            cmd.args(["--homeassistant", url]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn serve");
        let line = common::first_line(&mut child);
        self.serve = Some(child);
        let said: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!("{}: serve said {line:?}: {}", self.addon, self.serve_log())
        });
        assert_eq!(said["supervisor"], format!("{gateway}:80"), "{said}");
        self.listen = said["listen"].as_str().unwrap_or_default().to_owned();
    }

    fn serve_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// `addon-sandbox run --json --allow-unconfined --policy POLICY` with the user's options
    /// (`strict`: least privilege; `supervisor`: the Supervisor's own choices), protection on.
    /// Returns the JSON report.
    fn run_under(&self, image: &str, options: &str, policy: &str) -> Value {
        let folder = self.dir.path().join("addon");
        let out = self
            .cli(&["run", "--json", "--allow-unconfined", "--image", image])
            .args(["--policy", policy, "--options", options])
            .arg(&folder)
            .arg("--data-root")
            .arg(self.data_root())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: run: {}", self.addon, text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// The container's address on the add-on's own network, or None on the host's network.
    fn address(&self) -> Option<String> {
        let out = ok(
            "docker",
            &[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                &self.container(),
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|ip| ip.starts_with("172.30.2"))
            .map(str::to_owned)
    }

    fn logs(&self) -> String {
        text(
            &Command::new("docker")
                .args(["logs", &self.container()])
                .output()
                .unwrap(),
        )
    }

    /// Polls `probe` until it answers true; the time it took, or a panic naming the step with
    /// the container's logs.
    fn ready(&self, step: &str, start: Instant, mut probe: impl FnMut() -> bool) -> Duration {
        while start.elapsed() < READY_WITHIN {
            if probe() {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "{}: {step}: not ready within {READY_WITHIN:?}; logs:\n{}\nserve:\n{}",
            self.addon,
            self.logs(),
            self.serve_log()
        );
    }

    /// `stop` then `rm`: no container, token, record or lock is left; the data stays.
    fn stop_and_remove(&self) {
        let slug = format!("local_{}", self.addon);
        for verb in ["stop", "rm"] {
            let out = self.cli(&[verb, &slug]).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {verb}: {}",
                self.addon,
                text(&out)
            );
        }
        let inspect = Command::new("docker")
            .args(["inspect", &self.container()])
            .output()
            .unwrap();
        assert!(
            !inspect.status.success(),
            "{}: rm left the container",
            self.addon
        );
        let dir = self.state().join("addons").join(&slug);
        for file in ["token", "record.json", "lock"] {
            assert!(!dir.join(file).exists(), "{}: rm left {file}", self.addon);
        }
        let data = self.data_root().join("apps/data").join(&slug);
        assert!(
            data.join("options.json").exists(),
            "{}: the data went too",
            self.addon
        );
    }
}

impl Drop for Official {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.container()])
            .output();
        if let Some(mut serve) = self.serve.take() {
            let _ = serve.kill();
            let _ = serve.wait();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &network(&self.addon).0])
            .output();
    }
}

fn ok(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    out
}

/// A tiny HTTP server standing in for Home Assistant: every request gets `body`.
fn upstream(listener: std::net::TcpListener, body: String) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
}

/// HTTPS through nginx_proxy: a self-signed certificate in the ssl folder, Home Assistant
/// stood in for by a tiny HTTP server on the network's gateway, and `curl` at the published
/// port 443 gets the upstream's answer.
#[test]
fn nginx_proxy_serves_https_to_its_upstream() {
    if !common::docker_available() {
        return;
    }
    let Some(image) = stand_in("nginx_proxy", "trixie") else {
        return;
    };
    let mut addon = Official::new("nginx_proxy", |c| c);
    // The port is chosen free on loopback, then bound on the network's gateway once `serve`
    // has made it: Home Assistant on this host is reached there, as under the Supervisor.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    addon.serve(Some(&format!("http://127.0.0.1:{port}")));
    let listener =
        std::net::TcpListener::bind((network("nginx_proxy").2, port)).expect("bind the upstream");
    let body = format!("upstream answer {}", std::process::id());
    upstream(listener, body.clone());
    let ssl = addon.data_root().join("ssl");
    std::fs::create_dir_all(&ssl).unwrap();
    let (key, cert) = (ssl.join("privkey.pem"), ssl.join("fullchain.pem"));
    ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=proxy.test",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    let options = r#"{"domain":"proxy.test","hsts":"max-age=31536000; includeSubDomains",
        "certfile":"fullchain.pem","keyfile":"privkey.pem","cloudflare":false,
        "use_ssl_backend":false,"client_max_body_size_megabytes":1,
        "customize":{"active":false,"default":"nginx_proxy_default*.conf","servers":"nginx_proxy/*.conf"},
        "real_ip_from":[]}"#;
    // Strict, then the Supervisor's own choices: the same check.
    for policy in ["strict", "supervisor"] {
        let start = Instant::now();
        addon.run_under(&image, options, policy);
        let mut last = String::new();
        let took = addon.ready("curl https through the proxy", start, || {
            let out = Command::new("curl")
                .args([
                    "-sk",
                    "--max-time",
                    "5",
                    "--resolve",
                    "proxy.test:443:127.0.0.1",
                ])
                .arg("https://proxy.test/")
                .output()
                .unwrap();
            last = text(&out);
            out.status.success() && last == body
        });
        eprintln!(
            "nginx_proxy: start to ready under addon-sandbox run --policy {policy}: {took:?}"
        );
        addon.stop_and_remove();
    }
}

/// An ssh login with the configured authorized key. The config's `22/tcp: null` is what the
/// user changes in the UI's network settings to turn sshd on; here it is 22022 on the host.
#[test]
fn ssh_logs_in_with_the_configured_key() {
    if !common::docker_available() {
        return;
    }
    let Some(image) = stand_in("ssh", "bookworm") else {
        return;
    };
    let mut addon = Official::new("ssh", |c| c.replace("22/tcp: null", "22/tcp: 22022"));
    addon.serve(None);
    let key = addon.dir.path().join("id_ed25519");
    ok(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let options = serde_json::json!({
        "authorized_keys": [public.trim()],
        "password": "",
        "apks": [],
        "server": {"tcp_forwarding": false},
    })
    .to_string();
    // Strict, then the Supervisor's own choices: the same login.
    for policy in ["strict", "supervisor"] {
        let start = Instant::now();
        addon.run_under(&image, &options, policy);
        let took = addon.ready("ssh login with the key", start, || {
            ssh_true(&key, "127.0.0.1", "22022")
        });
        eprintln!("ssh: start to ready under addon-sandbox run --policy {policy}: {took:?}");
        addon.stop_and_remove();
    }
}

fn ssh_true(key: &Path, host: &str, port: &str) -> bool {
    Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args([
            "-p",
            port,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "ConnectTimeout=5", "-o", "BatchMode=yes"])
        .arg(format!("root@{host}"))
        .arg("true")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// samba: the configured login lists the shares and writes a file into `share`, which lands
/// in the data root's `share` folder on the host. Under the strict policy `host_network` is
/// withheld (samba declares no ports), so the client reaches it at its address on the
/// add-on's network; samba binds the interfaces the gateway's `/network/info` names (`eth0`
/// there). Then a second pass under `--policy supervisor`: the host's network, as the
/// Supervisor runs it, reached on 127.0.0.1.
#[test]
fn samba_lists_its_shares_and_takes_a_file_with_the_configured_login() {
    if !common::docker_available() {
        return;
    }
    let Some(image) = stand_in("samba", "trixie") else {
        return;
    };
    official::require_client("smbclient", "smbclient");
    let mut addon = Official::new("samba", |c| c);
    addon.serve(None);
    let options = r#"{"username":"homeassistant","password":"s3cret-smb","workgroup":"WORKGROUP",
        "enabled_shares":["share","media"],"compatibility_mode":false,
        "apple_compatibility_mode":true,"netbios":false,"local_master":false,
        "network_discovery":false,"server_signing":"default","veto_files":["._*"],
        "allow_hosts":["172.16.0.0/12"]}"#;
    let local = addon.dir.path().join("upload.txt");
    for policy in ["strict", "supervisor"] {
        let body = format!("written over SMB under {policy} {}", std::process::id());
        std::fs::write(&local, &body).unwrap();
        let start = Instant::now();
        addon.run_under(&image, options, policy);
        let host = addon.address().unwrap_or_else(|| "127.0.0.1".to_owned());
        let target = format!("//{host}/share");
        let mut last = String::new();
        let took = addon.ready("smbclient lists the shares", start, || {
            let out = Command::new("smbclient")
                .args(["-L", &format!("//{host}"), "-m", "SMB3", "-t", "5"])
                .args(["-U", "homeassistant%s3cret-smb"])
                .output()
                .unwrap();
            last = text(&out);
            out.status.success() && last.contains("share") && last.contains("media")
        });
        let put = format!("put {} from-smb-{policy}.txt", local.display());
        ok(
            "smbclient",
            &[
                &target,
                "-m",
                "SMB3",
                "-U",
                "homeassistant%s3cret-smb",
                "-c",
                &put,
            ],
        );
        let landed = addon
            .data_root()
            .join("share")
            .join(format!("from-smb-{policy}.txt"));
        assert_eq!(
            std::fs::read_to_string(&landed).ok().as_deref(),
            Some(body.as_str()),
            "samba ({policy}): the file written over SMB is not in {}",
            landed.display()
        );
        // A wrong password is refused.
        let wrong = Command::new("smbclient")
            .args([
                &target,
                "-m",
                "SMB3",
                "-U",
                "homeassistant%wrong",
                "-c",
                "ls",
            ])
            .output()
            .unwrap();
        assert!(
            !wrong.status.success(),
            "samba ({policy}): a wrong password got in"
        );
        eprintln!("samba: start to ready under addon-sandbox run --policy {policy}: {took:?}");
        addon.stop_and_remove();
    }
}

/// VLC: ingress and audio, rights no other add-on here uses. Its pulse client waits for the
/// audio server's socket (`<data root>/audio/external/pulse.sock`, bound at `/run/audio`): the
/// test listens there (nothing is played, so nothing is spoken on it). Home Assistant's side
/// of ingress is played with the core token: a session from `POST /ingress/session`, then
/// VLC's HTTP interface through the gateway at `/ingress/<token>/` (nginx in the add-on lets
/// only the Supervisor's address in, and adds VLC's password): its status, and `/media` (the
/// `media:ro` map) browsed, listing a file put in the data root's `media` folder.
#[test]
fn vlc_serves_its_interface_through_ingress_with_media_mapped() {
    if !common::docker_available() {
        return;
    }
    let Some(image) = stand_in("vlc", "bookworm") else {
        return;
    };
    let mut addon = Official::new("vlc", |c| c);
    addon.serve(None);
    let external = addon.data_root().join("audio/external");
    std::fs::create_dir_all(&external).unwrap();
    let _pulse = std::os::unix::net::UnixListener::bind(external.join("pulse.sock")).unwrap();
    let media = addon.data_root().join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("sandbox-tune.ogg"), b"not really a tune").unwrap();
    let session = ingress_session(&addon.listen);
    for policy in ["strict", "supervisor"] {
        let start = Instant::now();
        let report = addon.run_under(&image, "{}", policy);
        let token = report["ingress_token"]
            .as_str()
            .unwrap_or_else(|| panic!("vlc ({policy}): no ingress token in {report}"))
            .to_owned();
        let get = |path: &str| {
            let url = format!("http://{}/ingress/{token}/{path}", addon.listen);
            let out = Command::new("curl")
                .args(["-s", "--max-time", "5", "-b"])
                .arg(format!("ingress_session={session}"))
                .arg(&url)
                .output()
                .unwrap();
            serde_json::from_slice::<Value>(&out.stdout).map_err(|_| text(&out))
        };
        let mut last = String::new();
        let took = addon.ready("VLC's status through ingress", start, || {
            match get("requests/status.json") {
                Ok(status) if status["state"].is_string() => true,
                Ok(other) => {
                    last = other.to_string();
                    false
                }
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        let listing = get("requests/browse.json?uri=file:///media")
            .unwrap_or_else(|e| panic!("vlc ({policy}): browse /media: {e}"));
        assert!(
            listing.to_string().contains("sandbox-tune.ogg"),
            "vlc ({policy}): /media through ingress lists {listing}"
        );
        eprintln!("vlc: start to ready under addon-sandbox run --policy {policy}: {took:?}");
        addon.stop_and_remove();
    }
}

/// An ingress session, as Home Assistant makes one with its token.
fn ingress_session(listen: &str) -> String {
    let out = ok(
        "curl",
        &[
            "-s",
            "--max-time",
            "5",
            "-X",
            "POST",
            "-H",
            &format!("X-Supervisor-Token: {CORE_TOKEN}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"user_id":"u-1","user_name":"tester"}"#,
            &format!("http://{listen}/ingress/session"),
        ],
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("a session as JSON");
    json["data"]["session"]
        .as_str()
        .unwrap_or_else(|| panic!("no session in {json}"))
        .to_owned()
}
