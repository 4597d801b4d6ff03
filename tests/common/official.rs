//! Stand-ins of official add-ons (`../shared/workloads/official/<addon>`): built from the
//! add-on's rootfs byte for byte and the Debian Dockerfile under `tests/workloads/<addon>/`,
//! run by `addon-sandbox run` next to a standalone `serve`, and reached by real clients from
//! the host. Used by tests/official_services.rs and tests/official_access.rs (included with
//! `#[path]`; each uses part of it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The test network `serve` makes for each add-on: its own name and subnet (outside those of
/// the default network, tests/launch.rs and tests/gateway*.rs), so the tests run in parallel
/// and a left-over network of another suite never collides with them.
pub fn network(addon: &str) -> (String, &'static str, &'static str) {
    let (subnet, gateway) = match addon {
        "dnsmasq" => ("172.30.200.0/23", "172.30.200.1"),
        "mariadb" => ("172.30.202.0/23", "172.30.202.1"),
        "nginx_proxy" => ("172.30.210.0/23", "172.30.210.1"),
        "ssh" => ("172.30.212.0/23", "172.30.212.1"),
        "samba" => ("172.30.206.0/23", "172.30.206.1"),
        "vlc" => ("172.30.214.0/23", "172.30.214.1"),
        _ => ("172.30.204.0/23", "172.30.204.1"),
    };
    (format!("addon-sandbox-official-{addon}"), subnet, gateway)
}

/// How long an add-on may take to answer its client (MariaDB's first start creates its
/// database and upgrades it: tens of seconds on a busy 2-core machine).
pub const READY_WITHIN: Duration = Duration::from_secs(180);

/// The add-on's own `apparmor.txt`, when it has one, beside its config: the supervisor policy
/// confines the add-on with it, as the Supervisor does.
pub fn copy_apparmor(addon: &str, folder: &Path) {
    let own = shared_official(addon).join("apparmor.txt");
    if own.exists() {
        std::fs::copy(own, folder.join("apparmor.txt")).unwrap();
    }
}

pub fn shared_official(addon: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/workloads/official/{addon}"))
}

fn must(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The stand-in image `addon-sandbox-test/official-<addon>:1`, built FROM the base image of
/// `suite` by `scripts/build-official` (the script a user runs: the tests run the same image);
/// None (skip) when the base image is not there and not required.
pub fn stand_in(addon: &str, suite: &str) -> Option<String> {
    crate::common::base_image(suite)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/build-official");
    let out = must(
        &format!("{addon}: scripts/build-official {addon} {suite}"),
        Command::new(script).args([addon, suite]).output(),
    );
    let image = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(image, format!("addon-sandbox-test/official-{addon}:1"));
    Some(image)
}

/// One official add-on under test: its config in a temporary add-on folder, a data root, a
/// state directory and the standalone `serve` of that state directory.
pub struct Official {
    pub addon: String,
    pub image: String,
    dir: tempfile::TempDir,
    serve: Child,
}

impl Official {
    pub fn new(addon: &str, image: String) -> Official {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("addon").join(addon);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(
            shared_official(addon).join("config.yaml"),
            folder.join("config.yaml"),
        )
        .unwrap();
        copy_apparmor(addon, &folder);
        // A left-over network of an interrupted run would make `serve` refuse to start.
        let (network, subnet, gateway) = network(addon);
        let _ = Command::new("docker")
            .args(["network", "rm", &network])
            .output();
        let state = dir.path().join("state");
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut serve = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log", "all"])
            .args(["--network-name", &network, "--subnet", subnet])
            .arg("--state-dir")
            .arg(&state)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let line = crate::common::first_line(&mut serve);
        let me = Official {
            addon: addon.to_owned(),
            image,
            dir,
            serve,
        };
        assert!(
            line.contains(gateway),
            "{addon}: serve said {line:?}: {}",
            me.serve_log()
        );
        me
    }

    pub fn full_slug(&self) -> String {
        format!("local_{}", self.addon)
    }

    pub fn container(&self) -> String {
        format!("app_{}", self.full_slug())
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The add-on's /data on the host.
    pub fn data(&self) -> PathBuf {
        self.data_root().join("apps/data").join(self.full_slug())
    }

    pub fn serve_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The container's own output, for a failure message.
    pub fn logs(&self, container: &str) -> String {
        let out = Command::new("docker")
            .args(["logs", "--tail", "60", container])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn sandbox(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
            .args(args)
            .arg("--state-dir")
            .arg(self.state())
            .output()
            .unwrap()
    }

    /// `addon-sandbox run --json --allow-unconfined` (strict policy, protection on: the
    /// defaults) of the add-on's own config with `options`.
    pub fn run(&self, options: &str) -> Value {
        self.run_under(options, "strict")
    }

    /// The same under `--policy POLICY` (`supervisor`: the Supervisor's own choices).
    pub fn run_under(&self, options: &str, policy: &str) -> Value {
        let folder = self.dir.path().join("addon").join(&self.addon);
        let data_root = self.data_root();
        let out = self.sandbox(&[
            "run",
            "--json",
            "--allow-unconfined",
            "--policy",
            policy,
            "--image",
            &self.image,
            "--options",
            options,
            folder.to_str().unwrap(),
            "--data-root",
            data_root.to_str().unwrap(),
        ]);
        let out = must(
            &format!("{}: addon-sandbox run --policy {policy}", self.addon),
            Ok(out),
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// The container's address on the add-ons' network.
    pub fn address(&self, container: &str) -> String {
        let out = must(
            &format!("{}: docker inspect {container}", self.addon),
            Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                    container,
                ])
                .output(),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find(|ip| ip.starts_with("172.30.2"))
            .unwrap_or_else(|| panic!("{}: {container} not on its network: {text}", self.addon))
            .to_owned()
    }

    /// `stop` then `rm`: afterwards no container, no token, no record and no lock is left;
    /// the data stays.
    pub fn stop_and_rm(&self) {
        let slug = self.full_slug();
        for verb in ["stop", "rm"] {
            let out = self.sandbox(&[verb, &slug]);
            must(&format!("{}: addon-sandbox {verb}", self.addon), Ok(out));
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
        let folder = self.state().join("addons").join(&slug);
        for file in ["token", "record.json", "lock"] {
            assert!(
                !folder.join(file).exists(),
                "{}: rm left {}",
                self.addon,
                folder.join(file).display()
            );
        }
        assert!(self.data().is_dir(), "{}: rm took the data", self.addon);
    }

    /// Stop the add-on's sandboxed container with docker itself, so that its token still
    /// opens the gateway (the standalone `serve` answers only known add-ons) for a plain run
    /// of the same image, and its ports are free. Returns that token.
    pub fn docker_stop_keeping_token(&self) -> String {
        let token = std::fs::read_to_string(
            self.state()
                .join("addons")
                .join(self.full_slug())
                .join("token"),
        )
        .unwrap_or_else(|e| panic!("{}: no token of the running add-on: {e}", self.addon));
        must(
            &format!("{}: docker stop of the sandboxed container", self.addon),
            Command::new("docker")
                .args(["stop", "-t", "20", &self.container()])
                .output(),
        );
        token.trim().to_owned()
    }

    /// The same image under plain `docker run`, for the timing comparison: the same /data
    /// (options.json included), the same published ports, on the same network with the same
    /// Supervisor (`supervisor`/`hassio` as extra hosts, the add-on's `token`).
    pub fn plain_run(&self, ports: &[&str], token: &str) -> String {
        let name = format!("addon-sandbox-test-plain-{}", self.addon);
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let (network, _, gateway) = network(&self.addon);
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--name", &name, "--network", &network]);
        for host in ["supervisor", "hassio"] {
            cmd.args(["--add-host", &format!("{host}:{gateway}")]);
        }
        for port in ports {
            cmd.args(["-p", port]);
        }
        cmd.arg("-v")
            .arg(format!("{}:/data", self.data().display()))
            .args(["-e", &format!("SUPERVISOR_TOKEN={token}")])
            .arg(&self.image);
        must(&format!("{}: plain docker run", self.addon), cmd.output());
        name
    }
}

impl Drop for Official {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args([
                "rm",
                "-f",
                &format!("addon-sandbox-test-plain-{}", self.addon),
            ])
            .output();
        let _ = self.sandbox(&["rm", &self.full_slug()]);
        let _ = self.serve.kill();
        let _ = self.serve.wait();
        let _ = Command::new("docker")
            .args(["network", "rm", &network(&self.addon).0])
            .output();
        // The containers wrote /data as root; the temp folder must still go.
        let _ = Command::new("rm").arg("-rf").arg(self.dir.path()).output();
    }
}

/// Poll `probe` until it answers Ok or `READY_WITHIN` passes; the time it took, or a panic
/// naming the add-on, the step, the last answer and the container's log.
pub fn wait_ready(
    official: &Official,
    step: &str,
    container: &str,
    started: Instant,
    probe: &mut dyn FnMut() -> Result<(), String>,
) -> Duration {
    let mut last = String::new();
    while started.elapsed() < READY_WITHIN {
        match probe() {
            Ok(()) => return started.elapsed(),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "{}: {step}: not ready within {READY_WITHIN:?}: {last}\n--- container log:\n{}\n--- serve log:\n{}",
        official.addon,
        official.logs(container),
        official.serve_log()
    );
}

/// A host command's stdout when it exits 0, else its error text.
pub fn client(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{program} exit {:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The client program, or a panic saying which Debian package brings it (.ci/run installs
/// them).
pub fn require_client(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| Path::new(&d).join(program).exists()));
    assert!(found, "{program} is missing: apt-get install {package}");
}

/// `min-max` of the times, in seconds.
pub fn range(times: &[Duration]) -> String {
    let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    let min = secs.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = secs.iter().cloned().fold(0.0, f64::max);
    format!("{min:.1}-{max:.1} s")
}
