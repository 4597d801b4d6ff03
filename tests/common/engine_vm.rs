//! The official add-ons' stand-ins in the AppArmor VM's Docker engine, shared by
//! tests/official_vm.rs (the production path) and tests/learn_vm.rs (learn mode): each
//! add-on's config, options, files and client scripts, the images' data disk made on this
//! host, and the payload the harness (`tests/workloads/vm-harness.sh`) runs.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One add-on of the proof: its stand-in image's suite, the config as the user edits it, the
/// options, files made on the host into its payload folder, and the shell scripts the harness
/// runs in the VM (`$IP`: the container's address; `$GW`: the gateway's).
pub struct Case {
    pub addon: &'static str,
    pub suite: &'static str,
    pub config: fn(String) -> String,
    pub options: &'static str,
    pub host_files: fn(&Path),
    pub prepare: &'static str,
    pub ready: &'static str,
    pub check: &'static str,
}

fn same(config: String) -> String {
    config
}

fn nothing(_: &Path) {}

const DNSMASQ_OPTIONS: &str = r#"{"defaults":["8.8.8.8"],"forwards":[],"hosts":[{"host":"sandbox.test","ip":"10.11.12.13"}],"services":[],"cnames":[],"txts":[{"name":"sandbox.test","value":"from-the-sandbox"}],"ptrs":[],"log_queries":false,"cache_size":150}"#;
const MARIADB_OPTIONS: &str = r#"{"databases":["homeassistant"],"logins":[{"username":"homeassistant","password":"s3cret-login"}],"rights":[{"database":"homeassistant","username":"homeassistant"}]}"#;
const MOSQUITTO_OPTIONS: &str = r#"{"logins":[{"username":"sensor","password":"s3cret-mqtt"}],"log_dest":[],"log_type":[],"require_certificate":false,"certfile":"fullchain.pem","keyfile":"privkey.pem","customize":{"active":false,"folder":"mosquitto"}}"#;
const NGINX_OPTIONS: &str = r#"{"domain":"proxy.test","hsts":"max-age=31536000; includeSubDomains","certfile":"fullchain.pem","keyfile":"privkey.pem","cloudflare":false,"use_ssl_backend":false,"client_max_body_size_megabytes":1,"customize":{"active":false,"default":"nginx_proxy_default*.conf","servers":"nginx_proxy/*.conf"},"real_ip_from":[]}"#;
const SSH_OPTIONS: &str =
    r#"{"authorized_keys":[@PUBKEY@],"password":"","apks":[],"server":{"tcp_forwarding":false}}"#;

const SAMBA_OPTIONS: &str = r#"{"username":"homeassistant","password":"s3cret-smb","workgroup":"WORKGROUP","enabled_shares":["share","media"],"compatibility_mode":false,"apple_compatibility_mode":true,"netbios":false,"local_master":false,"network_discovery":false,"server_signing":"default","veto_files":["._*"],"allow_hosts":["172.16.0.0/12"]}"#;
pub const SMB: &str = "smbclient -m SMB3 -t 5 -U homeassistant%s3cret-smb";
/// VLC's HTTP interface behind the add-on's own nginx on its ingress port, which lets only the
/// Supervisor's address (`supervisor`, the gateway here) in: the VM's own address on the bridge.
/// VLC's lua interface takes seconds per request under emulation.
pub const VLC: &str = "curl -s --max-time 60 \"http://$IP:8099/requests";

const MYSQL: &str = "mariadb -h \"$IP\" -P 3306 -u homeassistant -ps3cret-login --connect-timeout=2 -N -B homeassistant";
const MQTT: &str = "-h \"$IP\" -p 1883 -u sensor -t sandbox/check";
/// The service the add-on registers with the Supervisor after it is ready, waited for (60 s).
const REGISTERED: &str = "registered() { for i in $(seq 120); do grep -q \"\\\"$1\\\"\" /var/lib/addon-sandbox/state/services.json 2>/dev/null && return 0; sleep 0.5; done; echo \"$1 never registered\"; return 1; }; registered";

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            addon: "dnsmasq",
            suite: "bookworm",
            config: same,
            options: DNSMASQ_OPTIONS,
            host_files: nothing,
            prepare: "",
            ready: r#"test "$(dig +short +time=1 +tries=1 @"$IP" sandbox.test A)" = 10.11.12.13"#,
            check: r#"txt=$(dig +short +time=2 +tries=2 @"$IP" sandbox.test TXT); echo "$txt"; test "$txt" = '"from-the-sandbox"'"#,
        },
        Case {
            addon: "mariadb",
            suite: "bookworm",
            config: same,
            options: MARIADB_OPTIONS,
            host_files: nothing,
            prepare: "",
            ready: "test \"$(@MYSQL@ -e 'SELECT 6*7')\" = 42",
            check: "r=$(@MYSQL@ -e \"CREATE TABLE IF NOT EXISTS t (v TEXT); INSERT INTO t VALUES ('kept'); SELECT COUNT(*) > 0 FROM t WHERE v = 'kept';\"); echo \"$r\"; test \"$r\" = 1 && @REGISTERED@ mysql",
        },
        Case {
            addon: "mosquitto",
            suite: "trixie",
            config: same,
            options: MOSQUITTO_OPTIONS,
            host_files: nothing,
            prepare: "",
            ready: "mosquitto_pub @MQTT@ -P s3cret-mqtt -m ready",
            check: "mosquitto_pub @MQTT@ -P s3cret-mqtt -r -q 1 -m hello && r=$(mosquitto_sub @MQTT@ -P s3cret-mqtt -C 1 -W 10); echo \"$r\"; test \"$r\" = hello && ! mosquitto_pub @MQTT@ -P wrong -m x && @REGISTERED@ mqtt",
        },
        Case {
            addon: "nginx_proxy",
            suite: "trixie",
            config: same,
            options: NGINX_OPTIONS,
            host_files: certificate_and_dhparams,
            // The add-on's first start makes /data/dhparams.pem (`openssl dhparam -dsaparam
            // 4096`): minutes under emulation, seconds here. Made on the host as that first
            // start would, and found in /data as by every later start.
            prepare: "mkdir -p /var/lib/addon-sandbox/data/ssl /var/lib/addon-sandbox/data/apps/data/local_nginx_proxy && cp /payload/addons/nginx_proxy/fullchain.pem /payload/addons/nginx_proxy/privkey.pem /var/lib/addon-sandbox/data/ssl/ && cp /payload/addons/nginx_proxy/dhparams.pem /var/lib/addon-sandbox/data/apps/data/local_nginx_proxy/",
            ready: "curl -sk --max-time 5 --resolve \"proxy.test:443:$IP\" https://proxy.test/ | grep -q 'upstream answer from the VM'",
            check: "curl -sk --max-time 5 --resolve \"proxy.test:443:$IP\" https://proxy.test/",
        },
        Case {
            addon: "ssh",
            suite: "bookworm",
            // What the user sets in the UI's network settings to turn sshd on.
            config: |c| c.replace("22/tcp: null", "22/tcp: 22022"),
            options: SSH_OPTIONS,
            host_files: ssh_key,
            prepare: "",
            ready: "ssh -i /payload/addons/ssh/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o BatchMode=yes \"root@$IP\" true",
            check: "ssh -i /payload/addons/ssh/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o BatchMode=yes \"root@$IP\" 'echo logged in as $(id -un)'",
        },
        Case {
            addon: "samba",
            suite: "trixie",
            config: same,
            options: SAMBA_OPTIONS,
            host_files: nothing,
            prepare: "echo 'written over SMB in the VM' > /run/smb-upload.txt",
            ready: "l=$(@SMB@ -L \"//$IP\"); echo \"$l\" | grep -q share && echo \"$l\" | grep -q media",
            check: "@SMB@ \"//$IP/share\" -c 'put /run/smb-upload.txt from-smb.txt' && grep -q 'written over SMB' /var/lib/addon-sandbox/data/share/from-smb.txt && ! smbclient -m SMB3 -t 5 -U homeassistant%wrong \"//$IP/share\" -c ls && echo put and refused",
        },
        Case {
            addon: "vlc",
            suite: "bookworm",
            config: same,
            options: "{}",
            host_files: nothing,
            // The audio server's socket (VLC waits for it; nothing is played) and a file in
            // media; perl-base is in every Debian root.
            prepare: "mkdir -p /var/lib/addon-sandbox/data/audio/external /var/lib/addon-sandbox/data/media && echo 'not really a tune' > /var/lib/addon-sandbox/data/media/sandbox-tune.ogg && (perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => shift, Listen => 5) or die $!; sleep 100000' /var/lib/addon-sandbox/data/audio/external/pulse.sock &) && sleep 1",
            ready: "@VLC@/status.json\" | grep -q '\"state\"'",
            check: "@VLC@/browse.json?uri=file:///media\" | grep -o sandbox-tune.ogg",
        },
    ]
}

fn certificate(dir: &Path) {
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=proxy.test", "-keyout"])
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem")));
}

fn certificate_and_dhparams(dir: &Path) {
    certificate(dir);
    run(Command::new("openssl")
        .args(["dhparam", "-dsaparam", "-out"])
        .arg(dir.join("dhparams.pem"))
        .arg("4096"));
}

fn ssh_key(dir: &Path) {
    let key = dir.join("id_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let options = std::fs::read_to_string(dir.join("options.json")).unwrap();
    let quoted = serde_json::to_string(public.trim()).unwrap();
    std::fs::write(
        dir.join("options.json"),
        options.replace("@PUBKEY@", &quoted),
    )
    .unwrap();
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Docker's data disk for the VM, kept beside the VM's root as `docker-<key>.img` (the key: the
/// hash of the root and the images' ids), booted on a snapshot. It is made on this host by a
/// second, private dockerd (Debian's docker.io, the same package as the VM's engine, on its own
/// data root, socket and exec root and in a network namespace of its own, with no bridge and no
/// iptables rules) that loads the images
/// natively, and written into an ext4 disk with `mke2fs -d`, which keeps overlay2's hard links,
/// whiteout devices and `trusted.overlay.*` attributes. Loading the same tarball inside the VM
/// under emulation took 6-8 minutes for five images; here it takes seconds. The VM's engine
/// then lists the images at boot (`@@ IMAGES`), and a missing one fails its add-on's `run`.
pub fn images_disk(root: &addon_sandbox::vm::EngineRoot, images: &[&str]) -> std::path::PathBuf {
    let mut ids: Vec<String> = images
        .iter()
        .map(|i| {
            run(Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", i]))
                .trim()
                .to_owned()
        })
        .collect();
    ids.sort();
    let dir = root.disk.parent().unwrap().to_owned();
    let key = run(Command::new("sh").arg("-c").arg(format!(
        "echo '{}' {} | sha256sum | cut -c1-16",
        root.disk.display(),
        ids.join(" ")
    )));
    let disk = dir.join(format!("docker-{}.img", key.trim()));
    if disk.is_file() {
        return disk;
    }
    // Disks of other images are of no use any more.
    for old in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with("docker-") && (name.ends_with(".img") || name.ends_with(".ids")) {
            let _ = std::fs::remove_file(old.path());
        }
    }
    let started = std::time::Instant::now();
    let loading = disk.with_extension("loading");
    load_on_host(&dir, &loading, images);
    eprintln!(
        "official_vm: {} image(s) loaded on the host into {} in {:.0} s",
        images.len(),
        disk.display(),
        started.elapsed().as_secs_f64()
    );
    std::fs::rename(&loading, &disk).unwrap();
    disk
}

/// A private dockerd on this host loads `images` into a data root under `work_dir`, which then
/// becomes the ext4 disk `disk`.
fn load_on_host(work_dir: &Path, disk: &Path, images: &[&str]) {
    let work = tempfile::tempdir_in(work_dir).unwrap();
    let data = work.path().join("docker");
    // Short paths: a unix socket's path has at most 107 bytes.
    let tag = format!("/run/addon-sandbox-vm-load-{}", std::process::id());
    let socket = format!("unix://{tag}.sock");
    // In a network namespace of its own: with `--bridge=none` dockerd deletes any `docker0`
    // it sees at start, which would be the host engine's bridge.
    let mut dockerd = Command::new("unshare")
        .args(["--net", "--", "dockerd", "--data-root"])
        .arg(&data)
        .args(["--exec-root", &tag, "--pidfile", &format!("{tag}.pid")])
        .args(["-H", &socket, "--bridge=none", "--iptables=false"])
        .args(["--storage-driver", "overlay2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(work.path().join("dockerd.log")).unwrap())
        .spawn()
        .expect("start a private dockerd");
    let up = (0..240).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        Command::new("docker")
            .args(["-H", &socket, "info"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let loaded = up
        && Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {} | docker -H {socket} load -q",
                images.join(" ")
            ))
            .status()
            .is_ok_and(|s| s.success());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dockerd.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = dockerd.wait();
    let _ = Command::new("rm").args(["-rf", &tag]).output();
    let log = std::fs::read_to_string(work.path().join("dockerd.log")).unwrap_or_default();
    assert!(
        up && loaded,
        "the private dockerd did not load the images:\n{log}"
    );
    // The host daemon's networks are not the VM's: the VM's engine makes its own.
    let _ = std::fs::remove_dir_all(data.join("network"));
    let out = Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-L", "docker", "-d"])
        .arg(&data)
        .arg(disk)
        .arg("24G")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mke2fs -d of the loaded images: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The payload: the binary, the harness and one folder per add-on, then the harness's calls
/// `call` gives for each add-on, in table order.
pub fn payload(dir: &Path, cases: &[(&Case, String)], call: &dyn Fn(&Case, &str) -> String) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_addon-sandbox"),
        dir.join("bin/addon-sandbox"),
    )
    .unwrap();
    let mut harness = format!(
        "PATH=/payload/bin:$PATH\nexport PATH\n{}",
        include_str!("../workloads/vm-harness.sh")
    );
    for (case, image) in cases {
        let folder = dir.join("addons").join(case.addon);
        std::fs::create_dir_all(&folder).unwrap();
        let config = std::fs::read_to_string(
            crate::official::shared_official(case.addon).join("config.yaml"),
        )
        .unwrap();
        std::fs::write(folder.join("config.yaml"), (case.config)(config)).unwrap();
        std::fs::write(folder.join("options.json"), case.options).unwrap();
        (case.host_files)(&folder);
        let script = |s: &str| {
            s.replace("@MYSQL@", MYSQL)
                .replace("@SMB@", SMB)
                .replace("@VLC@", VLC)
                .replace("@MQTT@", MQTT)
                .replace("@REGISTERED@", REGISTERED)
        };
        for (file, text) in [
            ("prepare.sh", case.prepare),
            ("ready.sh", case.ready),
            ("check.sh", case.check),
        ] {
            std::fs::write(folder.join(file), script(text) + "\n").unwrap();
        }
        for file in ["id_ed25519", "privkey.pem"] {
            if let Ok(m) = std::fs::metadata(folder.join(file)) {
                let mut p = m.permissions();
                p.set_mode(0o600);
                std::fs::set_permissions(folder.join(file), p).unwrap();
            }
        }
        harness.push_str(&call(case, image));
    }
    std::fs::write(dir.join("harness.sh"), harness).unwrap();
}

/// The add-ons to run: all, or those `OFFICIAL_VM_ONLY` names.
pub fn selected() -> Vec<Case> {
    let only = std::env::var("OFFICIAL_VM_ONLY").unwrap_or_default();
    cases()
        .into_iter()
        .filter(|c| only.is_empty() || only.split(',').any(|o| o == c.addon))
        .collect()
}

/// One boot of the engine VM on `payload` with the images' disk `docker` (a snapshot), the
/// console copied to `/tmp/addon-sandbox-<name>.console`; the payload is removed after.
pub fn boot(
    root: &addon_sandbox::vm::EngineRoot,
    payload: &Path,
    docker: std::path::PathBuf,
    deadline: Duration,
    name: &str,
) -> addon_sandbox::vm::EngineReport {
    let log = std::env::temp_dir().join(format!("addon-sandbox-{name}.console"));
    eprintln!("{name}: console copied to {}", log.display());
    let report = addon_sandbox::vm::run_engine(&addon_sandbox::vm::EngineRun {
        root,
        payload,
        docker: Some(addon_sandbox::vm::DockerDisk::Snapshot(docker)),
        memory_mb: 4096,
        deadline,
        console_log: Some(log),
    })
    .unwrap_or_else(|e| panic!("the engine VM did not run: {e}"));
    let _ = Command::new("rm").arg("-rf").arg(payload).output();
    report
}

/// Each case's stand-in image (built by `scripts/build-official`), and the images' disk for
/// the VM; None (skip) when a base image is missing and not required.
pub fn stand_ins_and_disk<'a>(
    root: &addon_sandbox::vm::EngineRoot,
    cases: &'a [Case],
) -> Option<(Vec<(&'a Case, String)>, std::path::PathBuf)> {
    let mut built = Vec::new();
    for case in cases {
        built.push((case, crate::official::stand_in(case.addon, case.suite)?));
    }
    let images: Vec<&str> = built.iter().map(|(_, i)| i.as_str()).collect();
    let docker = images_disk(root, &images);
    Some((built, docker))
}
