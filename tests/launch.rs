//! The launcher against the real Docker engine (DESIGN §6): the created container equals the
//! plan, and a container of the test image proves from inside what it may and may not do.
//! Every test uses its own add-on slug, state directory and data root, and removes what it
//! started. This host has no AppArmor, so runs pass `--allow-unconfined` unless a test is about
//! the refusal.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::proof::{cap_mask, field};
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    slug: String,
}

impl Env {
    /// A temporary add-on `slug` with the given extra config lines.
    fn new(slug: &str, extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let addon = dir.path().join("addon");
        std::fs::create_dir(&addon).unwrap();
        std::fs::write(
            addon.join("config.yaml"),
            format!(
                "name: T\nversion: \"1.0\"\nslug: {slug}\ndescription: d\narch: [amd64, aarch64]\n{extra}"
            ),
        )
        .unwrap();
        Env {
            dir,
            slug: slug.to_owned(),
        }
    }

    fn full_slug(&self) -> String {
        format!("local_{}", self.slug)
    }

    fn addon(&self) -> PathBuf {
        self.dir.path().join("addon")
    }

    fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
        c.args(args);
        c
    }

    /// `addon-sandbox run` of this add-on with `image`, its own data root and state directory,
    /// the `extra` flags and, unless empty, `command`.
    fn run_cmd(&self, image: &str, extra: &[&str], command: &[&str]) -> Command {
        let addon = self.addon();
        let data = self.data_root();
        let state = self.state();
        let mut args = vec![
            "run",
            addon.to_str().unwrap(),
            "--image",
            image,
            "--data-root",
            data.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        if !command.is_empty() {
            args.push("--command");
            args.extend_from_slice(command);
        }
        self.cmd(&args)
    }

    /// `addon-sandbox run --json` of this add-on with the test image and `script` as its command.
    fn run(&self, extra: &[&str], script: &str) -> Output {
        let mut flags = vec!["--json"];
        flags.extend_from_slice(extra);
        self.run_cmd(common::TEST_IMAGE, &flags, &["/bin/sh", "-c", script])
            .output()
            .unwrap()
    }

    fn sub(&self, verb: &str) -> Output {
        let state = self.state();
        let slug = self.full_slug();
        self.cmd(&[verb, &slug, "--state-dir", state.to_str().unwrap()])
            .output()
            .unwrap()
    }

    fn plan(&self, extra: &[&str]) -> Value {
        let addon = self.addon();
        let data = self.data_root();
        let mut args = vec![
            "plan",
            "--json",
            addon.to_str().unwrap(),
            "--data-root",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = self.cmd(&args).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn container(&self) -> String {
        format!("app_{}", self.full_slug())
    }

    fn inspect(&self) -> Option<Value> {
        let out = Command::new("docker")
            .args(["inspect", &self.container()])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone())
    }

    /// Wait for the container's proof file under the data root.
    fn proof(&self) -> String {
        let file = self
            .data_root()
            .join("apps/data")
            .join(self.full_slug())
            .join("proof");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(text) = std::fs::read_to_string(&file)
                && text.contains("END\n")
            {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no proof from {} in 30 s", self.container());
    }

    fn token(&self) -> Option<String> {
        std::fs::read_to_string(
            self.state()
                .join("addons")
                .join(self.full_slug())
                .join("token"),
        )
        .ok()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.container()])
            .output();
    }
}

impl Env {
    /// `addon-sandbox run` with a fake `apparmor_parser` running `script_tail` after it logs
    /// its arguments, and the kernel file saying AppArmor is on. Returns the command (to run or
    /// spawn) and the log path.
    fn with_fake_parser(
        &self,
        log_line: &str,
        script_tail: &str,
        command: &[&str],
    ) -> (Command, PathBuf) {
        let log = self.dir.path().join("parser.log");
        let fake = self.dir.path().join("apparmor_parser");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"{log_line}\" >> {}\n{script_tail}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let enabled = self.dir.path().join("enabled");
        std::fs::write(&enabled, "Y\n").unwrap();
        let mut cmd = self.run_cmd(common::TEST_IMAGE, &[], command);
        cmd.env("APPARMOR_PARSER", &fake)
            .env("ADDON_SANDBOX_APPARMOR_ENABLED", &enabled)
            .env("ADDON_SANDBOX_TEST_ENGINE_APPARMOR", "1");
        (cmd, log)
    }
}

fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn setup() -> bool {
    if !common::docker_available() {
        return false;
    }
    common::ensure_test_image();
    true
}

fn host_has_apparmor() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// The script that proves the sandbox from inside, into /data/proof.
const PROOF: &str = r#"p=/data/proof.tmp
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status > $p
echo "net=$(readlink /proc/self/ns/net)" >> $p
echo "pid=$(readlink /proc/self/ns/pid)" >> $p
echo "pid1=$(cat /proc/1/comm)" >> $p
if (echo x > /share/x) 2>/tmp/err; then echo share=written >> $p; else echo "share=$(cat /tmp/err)" >> $p; fi
if (echo hello > /media/from-inside) 2>/tmp/err; then echo media=written >> $p; else echo "media=$(cat /tmp/err)" >> $p; fi
if [ -e /run/docker.sock ]; then echo docker_sock=yes >> $p; else echo docker_sock=no >> $p; fi
echo "token=$SUPERVISOR_TOKEN" >> $p
echo "hassio=$HASSIO_TOKEN" >> $p
echo END >> $p
mv $p /data/proof
exec sleep 600"#;

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

const MAPS: &str = "map: [share, \"media:rw\"]\nports:\n  8080/tcp: null\nulimits:\n  nofile: 4096\nenvironment:\n  MODE: test\n";
const DEVICES: &str = "devices: [/dev/zero]\nvideo: true\n";

#[test]
fn without_apparmor_run_refuses_and_leaves_nothing() {
    if !setup() || host_has_apparmor() {
        return;
    }
    let env = Env::new("refuse", MAPS);
    let out = env.run(&[], "sleep 600");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot enforce it") && err.contains("--allow-unconfined"),
        "{err}"
    );
    assert!(env.inspect().is_none(), "a container was left behind");
    assert!(env.token().is_none(), "a token was left behind");
}

#[test]
fn the_container_equals_the_plan_and_proves_it_from_inside() {
    if !setup() {
        return;
    }
    let env = Env::new("proof", &format!("{MAPS}{DEVICES}"));
    let plan = env.plan(&[]);
    let report = ok(&env.run(&["--allow-unconfined"], PROOF));
    assert_eq!(report["confinement"], "unconfined");
    let c = env.inspect().expect("container");
    let hc = &c["HostConfig"];
    let sorted = |v: &Value| {
        let mut v: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(sorted(&hc["CapAdd"]), sorted(&plan["cap_add"]));
    assert_eq!(sorted(&hc["CapDrop"]), ["ALL"]);
    assert_eq!(hc["NetworkMode"], plan["network_mode"]);
    assert_eq!(hc["IpcMode"], "private");
    assert_eq!(hc["PidMode"], "");
    let mut want_sec: Vec<String> = sorted(&plan["security_opt"])
        .into_iter()
        .map(|o| {
            if o.starts_with("apparmor=") {
                "apparmor=unconfined".into()
            } else {
                o
            }
        })
        .collect();
    want_sec.sort();
    assert_eq!(sorted(&hc["SecurityOpt"]), want_sec);
    assert!(want_sec.contains(&"no-new-privileges:true".to_string()));
    for m in plan["mounts"].as_array().unwrap() {
        let got = hc["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["Target"] == m["target"])
            .unwrap_or_else(|| panic!("mount {} missing", m["target"]));
        assert_eq!(got["Source"], m["source"]);
        assert_eq!(
            got["ReadOnly"].as_bool().unwrap_or(false),
            m["read_only"].as_bool().unwrap()
        );
    }
    let devices: Vec<(String, String, String)> = hc["Devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_owned();
            (
                s("PathOnHost"),
                s("PathInContainer"),
                s("CgroupPermissions"),
            )
        })
        .collect();
    assert_eq!(
        devices,
        [("/dev/zero".into(), "/dev/zero".into(), "rwm".into())]
    );
    assert_eq!(
        sorted(&hc["DeviceCgroupRules"]),
        sorted(&plan["device_cgroup_rules"])
    );
    assert!(!sorted(&plan["device_cgroup_rules"]).is_empty());
    assert_eq!(
        hc["Tmpfs"],
        serde_json::json!({"/dev/shm": "rw,nosuid,nodev,noexec"})
    );
    assert_eq!(hc["Ulimits"][0]["Name"], "nofile");
    let env_keys: Vec<String> = c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().split('=').next().unwrap().to_owned())
        .filter(|k| k != "PATH")
        .collect();
    let mut env_keys = env_keys;
    env_keys.sort();
    assert_eq!(env_keys, sorted(&plan["env_keys"]));

    let proof = env.proof();
    let cap_eff = u64::from_str_radix(field(&proof, "CapEff"), 16).unwrap();
    assert_eq!(
        cap_eff,
        cap_mask(
            plan["cap_add"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
        ),
        "CapEff"
    );
    assert_eq!(field(&proof, "NoNewPrivs"), "1");
    assert_eq!(field(&proof, "Seccomp"), "2");
    assert!(
        field(&proof, "share").contains("Read-only file system"),
        "{proof}"
    );
    assert_eq!(field(&proof, "media"), "written");
    let on_host = env.data_root().join("media/from-inside");
    assert_eq!(std::fs::read_to_string(on_host).unwrap(), "hello\n");
    assert_ne!(
        field(&proof, "net"),
        host_ns("net"),
        "shares the host's network namespace"
    );
    assert_ne!(
        field(&proof, "pid"),
        host_ns("pid"),
        "shares the host's PID namespace"
    );
    assert_eq!(plan["init"], true);
    assert_eq!(
        field(&proof, "pid1"),
        "docker-init",
        "its own PID 1: the init the plan asks for"
    );
    assert_eq!(field(&proof, "docker_sock"), "no");
    let token = env.token().expect("token in the state directory");
    assert_eq!(token.len(), 64);
    assert_eq!(field(&proof, "token"), token);
    assert_eq!(field(&proof, "hassio"), token);
    let mode = std::fs::metadata(
        env.state()
            .join("addons")
            .join(env.full_slug())
            .join("token"),
    )
    .unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // A second run replaces the first with a fresh token.
    std::fs::remove_file(
        env.data_root()
            .join("apps/data")
            .join(env.full_slug())
            .join("proof"),
    )
    .unwrap();
    ok(&env.run(&["--allow-unconfined"], PROOF));
    let again = env.proof();
    assert_ne!(
        field(&again, "token"),
        token,
        "the token must change on every start"
    );
    assert_eq!(field(&again, "token"), env.token().unwrap());

    // ps shows it unconfined; rm removes container and token and keeps the data.
    let line = env.ps_entry().expect("in ps");
    assert_eq!(line["confinement"], "unconfined");
    assert_eq!(line["state"], "running");
    assert!(env.sub("rm").status.success());
    assert!(env.inspect().is_none());
    assert!(env.token().is_none());
    assert!(
        env.data_root().join("media/from-inside").exists(),
        "data is kept"
    );
}

#[test]
fn protection_off_and_grants_give_exactly_the_granted_rights() {
    if !setup() {
        return;
    }
    let extra = "host_network: true\nhost_pid: true\nprivileged: [SYS_ADMIN, SYS_NICE]\n";
    let sys_admin = 1u64 << 21;
    let sys_nice = 1u64 << 23;

    let env = Env::new("grants", extra);
    ok(&env.run(&["--allow-unconfined", "--grant", "host_network"], PROOF));
    let p = env.proof();
    assert_eq!(field(&p, "net"), host_ns("net"), "host_network granted");
    assert_ne!(field(&p, "pid"), host_ns("pid"), "host_pid not granted");
    let caps = u64::from_str_radix(field(&p, "CapEff"), 16).unwrap();
    assert_eq!(caps & sys_admin, 0, "SYS_ADMIN not granted");
    assert_ne!(caps & sys_nice, 0, "SYS_NICE is not high-risk: granted");
    drop(env);

    let env = Env::new("unprotected", extra);
    ok(&env.run(&["--allow-unconfined", "--protection", "off"], PROOF));
    let p = env.proof();
    assert_eq!(field(&p, "net"), host_ns("net"));
    assert_eq!(field(&p, "pid"), host_ns("pid"));
    let caps = u64::from_str_radix(field(&p, "CapEff"), 16).unwrap();
    assert_ne!(caps & sys_admin, 0, "SYS_ADMIN with protection off");
    assert_eq!(
        field(&p, "NoNewPrivs"),
        "1",
        "strict keeps no-new-privileges"
    );
    assert_eq!(field(&p, "Seccomp"), "2", "strict keeps seccomp");
}

#[test]
fn failures_say_what_happened_and_leave_nothing() {
    if !setup() {
        return;
    }
    // Image missing.
    let env = Env::new("noimage", "");
    let out = env
        .run_cmd("addon-sandbox-test/none:0", &["--allow-unconfined"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not on this host"));
    assert!(env.inspect().is_none() && env.token().is_none());

    // Bad command: start fails (without docker-init, the engine execs it directly), and the
    // created container is removed.
    let env2 = Env::new("badcmd", "init: false\n");
    let out = env2
        .run_cmd(
            common::TEST_IMAGE,
            &["--allow-unconfined"],
            &["/no/such/program"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("docker start failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env2.inspect().is_none(),
        "the failed container was left behind"
    );
    assert!(env2.token().is_none(), "the token was left behind");

    // Name conflict with a container that is not ours: refused, theirs untouched.
    let env = Env::new("conflict", "");
    let made = Command::new("docker")
        .args([
            "create",
            "--name",
            &env.container(),
            common::TEST_IMAGE,
            "/bin/sleep",
            "1",
        ])
        .output()
        .unwrap();
    assert!(made.status.success());
    let out = env.run(&["--allow-unconfined"], "sleep 600");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not started by addon-sandbox"));
    let theirs = env.inspect().expect("their container is still there");
    assert!(theirs["Config"]["Labels"]["io.addon-sandbox.slug"].is_null());
    assert!(env.token().is_none());
}

#[test]
fn an_unreachable_or_silent_engine_is_a_clear_error() {
    if !setup() {
        return;
    }
    let env = Env::new("noengine", "");
    let state = env.state();
    let out = env
        .run_cmd(common::TEST_IMAGE, &["--allow-unconfined"], &[])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Docker engine"));

    // An engine that accepts connections and never answers.
    let sock = env.dir.path().join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(2) {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let start = Instant::now();
    let out = env
        .cmd(&[
            "ps",
            "--state-dir",
            state.to_str().unwrap(),
            "--timeout",
            "1",
        ])
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not answer"));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the timeout was not applied"
    );
    drop(holder);
}

/// A fake `apparmor_parser` that records its arguments (the load path up to the parser call;
/// this host cannot load profiles). The kernel file says AppArmor is on; the engine ignores the
/// profile, so the attestation after start must fail and undo everything, unloading included.
#[test]
fn the_profile_is_written_loaded_and_unloaded_when_attestation_fails() {
    if !setup() || host_has_apparmor() {
        return;
    }
    let env = Env::new("loadpath", "map: [share]\n");
    let (mut cmd, log) = env.with_fake_parser("$@", "", &["/bin/sleep", "600"]);
    let out = cmd.output().unwrap();
    let state = env.state();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not confined as planned"), "{err}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let profile = state.join("apparmor/local_loadpath");
    let cache = state.join("apparmor/cache");
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            format!(
                "--replace --write-cache --cache-loc {} {}",
                cache.display(),
                profile.display()
            ),
            format!("--remove {}", profile.display()),
        ]
    );
    assert!(!profile.exists(), "the profile file was left behind");
    assert!(env.inspect().is_none(), "the container was left behind");
    assert!(env.token().is_none());
}

#[test]
fn logs_stop_and_rm() {
    if !setup() {
        return;
    }
    let env = Env::new("lifecycle", "");
    ok(&env.run(
        &["--allow-unconfined"],
        "echo hello from inside; exec sleep 600",
    ));
    let start = Instant::now();
    loop {
        let logs = env.sub("logs");
        if String::from_utf8_lossy(&logs.stdout).contains("hello from inside") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no output in logs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(env.sub("stop").status.success());
    assert_eq!(env.inspect().unwrap()["State"]["Running"], false);
    assert!(env.sub("rm").status.success());
    assert!(env.inspect().is_none());
    let again = env.sub("rm");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("was started by addon-sandbox"));
}

#[test]
fn twenty_addons_launched_at_once() {
    if !setup() {
        return;
    }
    let envs: Vec<Env> = (0..20)
        .map(|i| Env::new(&format!("many{i}"), "map: [\"share:rw\"]\n"))
        .collect();
    // One shared state directory and data root, as on a real host.
    let shared = tempfile::tempdir().unwrap();
    let state = shared.path().join("state");
    let data = shared.path().join("data");
    let children: Vec<std::process::Child> = envs
        .iter()
        .map(|e| {
            let addon = e.addon();
            e.cmd(&[
                "run",
                addon.to_str().unwrap(),
                "--allow-unconfined",
                "--image",
                common::TEST_IMAGE,
                "--state-dir",
                state.to_str().unwrap(),
                "--data-root",
                data.to_str().unwrap(),
                "--command",
                "/bin/sleep",
                "600",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ps = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["ps", "--json", "--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    let running = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains("local_many") && l.contains("\"running\""))
        .count();
    assert_eq!(running, 20);
    for e in &envs {
        let token = state.join("addons").join(e.full_slug()).join("token");
        assert_eq!(std::fs::read_to_string(&token).unwrap().len(), 64);
    }
    let rms: Vec<std::process::Child> = envs
        .iter()
        .map(|e| {
            Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
                .args(["rm", &e.full_slug(), "--state-dir", state.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in rms {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let left = std::fs::read_dir(state.join("addons"))
        .unwrap()
        .flatten()
        .filter(|d| d.path().join("token").exists() || d.path().join("record.json").exists())
        .count();
    assert_eq!(left, 0, "tokens or records left behind");
}

#[test]
fn ctrl_c_mid_launch_undoes_the_launch() {
    if !setup() || host_has_apparmor() {
        return;
    }
    let env = Env::new("interrupt", "");
    // Loading takes 5 s: long enough to be interrupted in the middle.
    let (mut cmd, log) =
        env.with_fake_parser("$1", "[ \"$1\" = --replace ] && sleep 5\nexit 0", &[]);
    let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let state = env.state();
    let start = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("--replace")) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the load never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "did not stop at once"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.lines().any(|l| l == "--remove"),
        "profile not unloaded: {calls}"
    );
    assert!(!state.join("apparmor/local_interrupt").exists());
    assert!(env.token().is_none());
    assert!(env.inspect().is_none());
}

/// A whole HTTP/1.1 exchange over a fresh connection; the answer as text.
fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

#[test]
fn run_text_output_names_the_ingress_token_the_record_holds() {
    if !setup() {
        return;
    }
    let env = Env::new("webtext", "ingress: true\ningress_port: 8099\n");
    let out = env
        .run_cmd(
            common::TEST_IMAGE,
            &["--allow-unconfined"],
            &["/bin/sh", "-c", "sleep 60"],
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let record: Value = serde_json::from_slice(
        &std::fs::read(
            env.state()
                .join("addons")
                .join(env.full_slug())
                .join("record.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let token = record["ingress_token"]
        .as_str()
        .expect("record has a token");
    assert!(
        text.contains(&format!("  ingress: /ingress/{token}/ on the gateway")),
        "{text}"
    );
    assert!(env.sub("rm").status.success());
}

impl Env {
    /// `addon-sandbox serve` on this state directory (core token `core-secret`, upstream down):
    /// the process and the address it listens on.
    fn serve(&self) -> (std::process::Child, String) {
        let core = self.dir.path().join("core-token");
        std::fs::write(&core, "core-secret").unwrap();
        let mut gateway = self
            .cmd(&[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:9",
            ])
            .arg("--state-dir")
            .arg(self.state())
            .arg("--core-token-file")
            .arg(&core)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let line = common::first_line(&mut gateway);
        let listen = serde_json::from_str::<Value>(&line).unwrap()["listen"]
            .as_str()
            .unwrap()
            .to_owned();
        (gateway, listen)
    }
}

#[test]
fn an_ingress_addon_is_reached_through_the_gateway_as_the_sessions_user() {
    if !setup() {
        return;
    }
    let env = Env::new("webui", "ingress: true\ningress_port: 8099\n");
    // busybox httpd with a CGI script that answers with the user headers it was given.
    let script = "mkdir -p /data/www/cgi-bin && \
        printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"user=$HTTP_X_REMOTE_USER_ID name=$HTTP_X_REMOTE_USER_NAME ingress=$HTTP_X_INGRESS_PATH\"\\n' > /data/www/cgi-bin/who && \
        chmod 755 /data/www/cgi-bin/who && exec busybox httpd -f -p 8099 -h /data/www";
    let report = ok(&env.run(&["--allow-unconfined"], script));
    let ingress = report["ingress_token"]
        .as_str()
        .expect("run reports the ingress token")
        .to_owned();
    let record: Value = serde_json::from_slice(
        &std::fs::read(
            env.state()
                .join("addons")
                .join(env.full_slug())
                .join("record.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["ingress_token"], ingress.as_str());
    let address = record["ingress_address"].as_str().unwrap();
    let ip = env.inspect().unwrap()["NetworkSettings"]["Networks"]["bridge"]["IPAddress"].clone();
    assert_eq!(address, format!("{}:8099", ip.as_str().unwrap()));

    let (mut gateway, listen) = env.serve();

    let body = r#"{"user_id": "u-1", "user_name": "alice"}"#;
    let created = http(
        &listen,
        &format!(
            "POST /ingress/session HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: core-secret\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let json = &created[created.find("\r\n\r\n").unwrap() + 4..];
    let session = serde_json::from_str::<Value>(json).unwrap()["data"]["session"]
        .as_str()
        .unwrap()
        .to_owned();

    // `_` for `-` is the same CGI variable (HTTP_X_REMOTE_USER_ID) to busybox httpd.
    let who = |session: &str| {
        format!(
            "GET /ingress/{ingress}/cgi-bin/who HTTP/1.1\r\nHost: s\r\nCookie: ingress_session={session}\r\nx-remote-USER-id: evil\r\nX_Remote_User_Id: evil2\r\nX-Remote-User-Name: mallory\r\nX_REMOTE_USER_NAME: mallory2\r\nX-Ingress-Path: /evil\r\nX_Ingress_Path: /evil2\r\nConnection: close\r\n\r\n"
        )
    };
    let start = Instant::now();
    let answer = loop {
        let answer = http(&listen, &who(&session));
        if answer.starts_with("HTTP/1.1 200") || start.elapsed() > Duration::from_secs(20) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let created = http(
        &listen,
        "POST /ingress/session HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: core-secret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let json = &created[created.find("\r\n\r\n").unwrap() + 4..];
    let anonymous = serde_json::from_str::<Value>(json).unwrap()["data"]["session"]
        .as_str()
        .unwrap()
        .to_owned();
    let anonymous_answer = http(&listen, &who(&anonymous));
    // The add-on's own token passes the gateway for its own paths, not for others' protection.
    let token = env.token().unwrap();
    let own = http(
        &listen,
        &format!(
            "GET /addons/self/info HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    let other = http(
        &listen,
        &format!(
            "GET /addons/core_ssh/security HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    let _ = gateway.kill();
    let _ = gateway.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let path = format!("ingress=/api/hassio_ingress/{ingress}");
    assert!(
        answer.contains(&format!("user=u-1 name=alice {path}")),
        "{answer}"
    );
    assert!(
        anonymous_answer.contains(&format!("user= name= {path}")),
        "{anonymous_answer}"
    );
    for a in [&answer, &anonymous_answer] {
        assert!(!a.contains("evil") && !a.contains("mallory"), "{a}");
    }
    assert!(
        own.starts_with("HTTP/1.1 502"),
        "allowed, and the upstream is down: {own}"
    );
    assert!(other.starts_with("HTTP/1.1 403"), "{other}");
    assert!(env.sub("rm").status.success());
}

// ---- the native backend (issue: native sandbox) ----

impl Env {
    fn rootfs(&self) -> PathBuf {
        let dir = self.dir.path().join("rootfs");
        if !dir.exists() {
            common::busybox_rootfs(&dir);
        }
        dir
    }

    /// `addon-sandbox run --backend native --json` of this add-on in the busybox rootfs.
    fn run_native(&self, extra: &[&str], script: &str) -> Output {
        let addon = self.addon();
        let data = self.data_root();
        let state = self.state();
        let rootfs = self.rootfs();
        let mut args = vec![
            "run",
            "--backend",
            "native",
            "--json",
            addon.to_str().unwrap(),
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--data-root",
            data.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.extend(["--command", "/bin/sh", "-c", script]);
        self.cmd(&args).output().unwrap()
    }

    /// This add-on's line of `ps --json`.
    fn ps_entry(&self) -> Option<Value> {
        let ps = self
            .cmd(&[
                "ps",
                "--json",
                "--state-dir",
                self.state().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&ps.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|l| l["full_slug"] == self.full_slug().as_str())
    }

    fn native_pid(&self) -> Option<i32> {
        let record: Value = serde_json::from_slice(
            &std::fs::read(
                self.state()
                    .join("addons")
                    .join(self.full_slug())
                    .join("record.json"),
            )
            .ok()?,
        )
        .ok()?;
        addon_sandbox::native::live_pid(record["container_id"].as_str()?)
    }
}

fn native_setup() -> bool {
    common::native_available()
}

/// What the inside-proof says, in terms both backends must agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answers {
    cap_eff: u64,
    no_new_privs: String,
    share: String,
    media: String,
    media_on_host: String,
    own_network: bool,
    own_pids: bool,
    docker_sock: String,
    token_is_the_states: bool,
    hassio_is_the_token: bool,
    mode: String,
    nofile: String,
    hostname: String,
}

fn answers(env: &Env, proof: &str) -> Answers {
    let token = env.token().expect("token in the state directory");
    Answers {
        cap_eff: u64::from_str_radix(field(proof, "CapEff"), 16).unwrap(),
        no_new_privs: field(proof, "NoNewPrivs").to_owned(),
        share: field(proof, "share")
            .rsplit(": ")
            .next()
            .unwrap()
            .to_owned(),
        media: field(proof, "media").to_owned(),
        media_on_host: std::fs::read_to_string(env.data_root().join("media/from-inside"))
            .unwrap_or_default(),
        own_network: field(proof, "net") != host_ns("net"),
        own_pids: field(proof, "pid") != host_ns("pid"),
        docker_sock: field(proof, "docker_sock").to_owned(),
        token_is_the_states: field(proof, "token") == token,
        hassio_is_the_token: field(proof, "hassio") == token,
        mode: field(proof, "mode").to_owned(),
        nofile: field(proof, "nofile").to_owned(),
        hostname: field(proof, "host").to_owned(),
    }
}

#[test]
fn both_backends_give_the_same_inside_proof() {
    if !setup() || !native_setup() {
        return;
    }
    let script = PROOF.replacen(
        "echo END >> $p",
        "echo \"mode=$MODE\" >> $p\necho \"nofile=$(ulimit -n)\" >> $p\necho \"host=$(hostname)\" >> $p\necho END >> $p",
        1,
    );
    let docker = Env::new("proofd", MAPS);
    let native = Env::new("proofn", MAPS);
    let plan = docker.plan(&[]);
    ok(&docker.run(&["--allow-unconfined"], &script));
    let report = ok(&native.run_native(&[], &script));
    assert_eq!(
        report["confinement"], "landlock",
        "no AppArmor here: Landlock is chosen"
    );
    let from_docker = answers(&docker, &docker.proof());
    let from_native = answers(&native, &native.proof());
    let expected = Answers {
        cap_eff: cap_mask(
            plan["cap_add"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap()),
        ),
        no_new_privs: "1".into(),
        share: "Read-only file system".into(),
        media: "written".into(),
        media_on_host: "hello\n".into(),
        own_network: true,
        own_pids: true,
        docker_sock: "no".into(),
        token_is_the_states: true,
        hassio_is_the_token: true,
        mode: "test".into(),
        nofile: "4096".into(),
        hostname: String::new(),
    };
    let with_host = |host: &Value| Answers {
        hostname: host.as_str().unwrap().to_owned(),
        ..expected.clone()
    };
    let expected_docker = with_host(&plan["hostname"]);
    let expected_native = with_host(&native.plan(&[])["hostname"]);
    assert_eq!(from_docker, expected_docker, "docker");
    assert_eq!(from_native, expected_native, "native");

    // ps, stop and rm know the native sandbox from the state directory alone.
    let line = native.ps_entry().expect("in ps");
    assert_eq!(line["state"], "running");
    assert_eq!(line["confinement"], "landlock");
    let pid = native.native_pid().expect("running");
    let record_id = format!(
        "native:{pid}:{}",
        addon_sandbox::native::start_time(pid).unwrap()
    );
    // stop: the command is PID 1 and ignores SIGTERM, so this is the SIGKILL after 10 s.
    assert!(native.sub("stop").status.success());
    assert!(native.native_pid().is_none(), "stopped");
    assert_eq!(native.ps_entry().expect("in ps")["state"], "exited");
    let logs = native.sub("logs");
    assert!(logs.status.success());
    assert!(native.sub("rm").status.success());
    assert!(
        addon_sandbox::native::live_pid(&record_id).is_none(),
        "pid {pid} is gone"
    );
    assert!(native.token().is_none());
    assert!(
        native.data_root().join("media/from-inside").exists(),
        "data is kept"
    );
}

#[test]
fn native_with_landlock_confines_files_where_nothing_else_would() {
    if !native_setup() {
        return;
    }
    let script = "p=/data/out.tmp; \
        if touch /dev/planted 2>/tmp/e; then echo dev=created >> $p; else echo \"dev=$(cat /tmp/e)\" >> $p; fi; \
        cp /bin/busybox /data/bb; \
        if /data/bb true 2>/tmp/e; then echo data_exec=ran >> $p; else echo \"data_exec=$(cat /tmp/e)\" >> $p; fi; \
        if /bin/busybox true; then echo image_exec=ran >> $p; fi; \
        if echo x > /data/written; then echo data_write=ok >> $p; fi; \
        echo END >> $p; mv $p /data/out; exec sleep 600";
    let read = |env: &Env| {
        let file = env
            .data_root()
            .join("apps/data")
            .join(env.full_slug())
            .join("out");
        let start = Instant::now();
        loop {
            if let Ok(t) = std::fs::read_to_string(&file)
                && t.contains("END")
            {
                return t;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no output");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let landlock = Env::new("landlocked", "");
    ok(&landlock.run_native(&["--confinement", "landlock"], script));
    let confined = read(&landlock);
    let open = Env::new("unlocked", "");
    let report = ok(&open.run_native(&["--confinement", "none"], script));
    assert_eq!(report["confinement"], "unconfined");
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("UNCONFINED")
    );
    let unconfined = read(&open);
    // Creating a node in /dev: only Landlock stops it (the /dev tmpfs itself is writable).
    assert!(
        field(&confined, "dev").contains("Permission denied"),
        "{confined}"
    );
    assert_eq!(field(&unconfined, "dev"), "created", "{unconfined}");
    // Code from /data never runs (Landlock, and the noexec mount under it).
    assert!(
        field(&confined, "data_exec").contains("Permission denied"),
        "{confined}"
    );
    assert!(
        field(&unconfined, "data_exec").contains("Permission denied"),
        "{unconfined}"
    );
    assert_eq!(field(&confined, "image_exec"), "ran");
    assert_eq!(field(&confined, "data_write"), "ok");
    assert!(landlock.sub("rm").status.success());
    assert!(open.sub("rm").status.success());
}

/// Mounts in this (the host's) namespace that are not the engine's own: containers that other
/// tests start at the same time add and remove overlay, shm and netns mounts under Docker's
/// folders, which says nothing about what the native backend left.
fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            let point = l.split(' ').nth(4).unwrap_or("");
            !point.starts_with("/var/lib/docker/") && !point.starts_with("/run/docker/")
        })
        .count()
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn native_failures_are_clear_and_leave_nothing_behind() {
    if !native_setup() {
        return;
    }
    // A serial name: strict protection passes it, and the node is missing. As the Supervisor
    // does, the add-on starts without it, and a warning says so.
    let env = Env::new("broken", "devices: [/dev/ttyUSB9999]\n");
    let out = env.run_native(&[], "sleep 600");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: device /dev/ttyUSB9999 does not exist on this host: skipped"),
        "{err}"
    );
    assert!(env.sub("stop").status.success());
    assert!(env.sub("rm").status.success());
    // Counted from here: what follows are failures, which must leave no mount behind.
    let mounts = mount_count();

    // A right the native backend cannot deliver is refused, not dropped.
    let env = Env::new("fulldev", "full_access: true\n");
    let out = env.run_native(
        &["--protection", "off", "--confinement", "none"],
        "sleep 600",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("full device access) is not offered natively"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let env = Env::new("nocmd", "");
    let addon = env.addon();
    let state = env.state();
    let data = env.data_root();
    let rootfs = env.rootfs();
    let base = [
        "run",
        "--backend",
        "native",
        addon.to_str().unwrap(),
        "--data-root",
        data.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let bad_rootfs = env
        .cmd(
            &[
                &base[..],
                &["--rootfs", "/nonexistent/rootfs", "--command", "sh"],
            ]
            .concat(),
        )
        .output()
        .unwrap();
    assert_eq!(bad_rootfs.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad_rootfs.stderr)
            .contains("rootfs /nonexistent/rootfs is not a directory")
    );
    let missing = env
        .cmd(
            &[
                &base[..],
                &[
                    "--rootfs",
                    rootfs.to_str().unwrap(),
                    "--command",
                    "no-such-program",
                ],
            ]
            .concat(),
        )
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no-such-program is not in the rootfs's PATH")
    );
    assert!(env.token().is_none(), "a failed start forgets its token");
    let no_command = env
        .cmd(&[&base[..], &["--rootfs", rootfs.to_str().unwrap()]].concat())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&no_command.stderr).contains("needs --command"));

    // Without the privilege to make namespaces (as nobody): a clear error and nothing started.
    let as_nobody = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args([
            "run",
            "--backend",
            "native",
            addon.to_str().unwrap(),
            "--rootfs",
            rootfs.to_str().unwrap(),
        ])
        .args([
            "--data-root",
            "/tmp/addon-sandbox-nobody-data",
            "--state-dir",
            "/tmp/addon-sandbox-nobody-state",
        ])
        .args(["--confinement", "none", "--command", "sleep", "600"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&as_nobody.stderr);
    assert_eq!(as_nobody.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unshare the mount, network, PID, IPC and UTS namespaces: EPERM"),
        "{err}"
    );

    // A host that claims AppArmor but cannot apply it (a parser that only records its
    // arguments, a kernel file saying "Y"): the profile is loaded, the exec label cannot be
    // set, and the start fails closed: the profile is unloaded and removed, the token gone.
    if !host_has_apparmor() {
        let env = Env::new("claimed", "");
        let log = env.dir.path().join("parser.log");
        let fake = env.dir.path().join("apparmor_parser");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$1\" >> {}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let enabled = env.dir.path().join("enabled");
        std::fs::write(&enabled, "Y\n").unwrap();
        let addon = env.addon();
        let out = env
            .cmd(&["run", "--backend", "native", addon.to_str().unwrap()])
            .args(["--rootfs", env.rootfs().to_str().unwrap()])
            .args(["--data-root", env.data_root().to_str().unwrap()])
            .args(["--state-dir", env.state().to_str().unwrap()])
            .args(["--confinement", "apparmor", "--command", "sleep", "600"])
            .env("APPARMOR_PARSER", &fake)
            .env("ADDON_SANDBOX_APPARMOR_ENABLED", &enabled)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("set the AppArmor exec profile local_claimed"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "--replace\n--remove\n"
        );
        assert!(!env.state().join("apparmor/local_claimed").exists());
        assert!(env.token().is_none());
    }

    // AppArmor asked for on a host without it: refused, exit 3.
    if !host_has_apparmor() {
        let out = env.run_native(&["--confinement", "apparmor"], "sleep 600");
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not enforce AppArmor"));
    }
    assert_eq!(
        mount_count(),
        mounts,
        "no mount left in the host's namespace"
    );
    assert!(
        processes_with("__native-init").is_empty(),
        "no setup helper is left running"
    );
    assert!(env.token().is_none());
}

// ---- the engine chosen, and a slow one (issue: Docker connection, aborted calls) ----

/// A real relay in front of the engine's socket, on a listener of its own: it counts the
/// requests it passes and holds back the engine's answer to a container create for `delay`
/// (the engine has made the container by then: a slow engine, not a lost request).
struct Relay {
    /// The `DOCKER_HOST` that reaches it.
    host: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    creates: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

type Halves = (
    Box<dyn std::io::Read + Send>,
    Box<dyn std::io::Write + Send>,
);

impl Relay {
    fn unix(dir: &std::path::Path, delay: Duration) -> Relay {
        let sock = dir.join("relay.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        Relay::start(format!("unix://{}", sock.display()), delay, move || {
            let (c, _) = listener.accept().unwrap();
            (Box::new(c.try_clone().unwrap()), Box::new(c))
        })
    }

    fn tcp(delay: Duration) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("tcp://{}", listener.local_addr().unwrap());
        Relay::start(host, delay, move || {
            let (c, _) = listener.accept().unwrap();
            (Box::new(c.try_clone().unwrap()), Box::new(c))
        })
    }

    fn start(host: String, delay: Duration, accept: impl Fn() -> Halves + Send + 'static) -> Relay {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let requests = Arc::new(AtomicUsize::new(0));
        let creates = Arc::new(AtomicUsize::new(0));
        let (r, c) = (requests.clone(), creates.clone());
        std::thread::spawn(move || {
            loop {
                let (mut from_client, mut to_client) = accept();
                let engine =
                    std::os::unix::net::UnixStream::connect("/var/run/docker.sock").unwrap();
                let (mut from_engine, mut to_engine) = (engine.try_clone().unwrap(), engine);
                let held = Arc::new(AtomicBool::new(false));
                let (r, c, h) = (r.clone(), c.clone(), held.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = std::io::Read::read(&mut from_client, &mut buf) {
                        let text = String::from_utf8_lossy(&buf[..n]);
                        let starts = text.matches(" HTTP/1.1\r\n").count();
                        r.fetch_add(starts, Ordering::SeqCst);
                        if text.starts_with("POST ") && text.contains("/containers/create") {
                            h.store(true, Ordering::SeqCst);
                            c.fetch_add(1, Ordering::SeqCst);
                        }
                        if std::io::Write::write_all(&mut to_engine, &buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = std::io::Read::read(&mut from_engine, &mut buf) {
                        if held.swap(false, Ordering::SeqCst) {
                            std::thread::sleep(delay);
                        }
                        if std::io::Write::write_all(&mut to_client, &buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Relay {
            host,
            requests,
            creates,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn creates(&self) -> usize {
        self.creates.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn docker_host_is_the_engine_used_and_a_bad_one_is_named() {
    if !setup() {
        return;
    }
    // tcp:// on 127.0.0.1 through the relay: the launch really goes there.
    let relay = Relay::tcp(Duration::ZERO);
    let env = Env::new("viatcp", "");
    let out = env
        .run_cmd(
            common::TEST_IMAGE,
            &["--allow-unconfined"],
            &["/bin/sleep", "600"],
        )
        .env("DOCKER_HOST", &relay.host)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        relay.creates() == 1 && relay.requests() > 3,
        "the relay saw {} requests",
        relay.requests()
    );
    assert!(env.inspect().is_some());
    let state = env.state();
    let ps = env
        .cmd(&["ps", "--json", "--state-dir", state.to_str().unwrap()])
        .env("DOCKER_HOST", &relay.host)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ps.stdout).contains("local_viatcp"));
    assert!(env.sub("rm").status.success());

    // A closed port is named, and nothing falls back to the local engine.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let env = Env::new("closedport", "");
    let out = env
        .run_cmd(
            common::TEST_IMAGE,
            &["--allow-unconfined"],
            &["/bin/sleep", "600"],
        )
        .env("DOCKER_HOST", format!("tcp://{addr}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("connection refused at tcp://{addr}")),
        "{}",
        stderr(&out)
    );
    assert!(env.inspect().is_none(), "started on the local engine");
    for bad in ["ssh://me@example", "fd://"] {
        let out = env.sub_with_env("ps", "DOCKER_HOST", bad);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(bad) && stderr(&out).contains("unsupported"),
            "{}",
            stderr(&out)
        );
    }

    // A user outside the docker group is told which socket refused them.
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["ps", "--state-dir", "/tmp/addon-sandbox-nobody-state"])
        .env_remove("DOCKER_HOST")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied on /var/run/docker.sock"),
        "{}",
        stderr(&out)
    );
}

impl Env {
    fn sub_with_env(&self, verb: &str, key: &str, value: &str) -> Output {
        let state = self.state();
        self.cmd(&[verb, "--state-dir", state.to_str().unwrap()])
            .env(key, value)
            .output()
            .unwrap()
    }

    fn addon_state_dir(&self) -> PathBuf {
        self.state().join("addons").join(self.full_slug())
    }
}

#[test]
fn a_create_cut_short_by_timeout_or_ctrl_c_leaves_no_container() {
    if !setup() {
        return;
    }
    let env = Env::new("slowcreate", "");
    let relay = Relay::unix(env.dir.path(), Duration::from_secs(4));
    let out = env
        .run_cmd(
            common::TEST_IMAGE,
            &["--allow-unconfined", "--timeout", "2"],
            &["/bin/sleep", "600"],
        )
        .env("DOCKER_HOST", &relay.host)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not answer create"),
        "{}",
        stderr(&out)
    );
    assert_eq!(relay.creates(), 1);
    assert!(
        env.inspect().is_none(),
        "the container made by the slow create was left behind"
    );
    assert!(env.token().is_none());
    assert!(
        !env.addon_state_dir().exists(),
        "the lock and folder were left behind"
    );

    let child = env
        .run_cmd(
            common::TEST_IMAGE,
            &["--allow-unconfined"],
            &["/bin/sleep", "600"],
        )
        .env("DOCKER_HOST", &relay.host)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while relay.creates() < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "no create");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        env.inspect().is_none(),
        "the container made by the interrupted create was left behind"
    );
    assert!(env.token().is_none());
}

#[test]
fn an_interrupted_load_is_ended_before_the_unload() {
    if !setup() || host_has_apparmor() {
        return;
    }
    let env = Env::new("loadorder", "");
    let log = env.dir.path().join("parser.log");
    // The load finishes 2 s after it began, unless it is ended first.
    let tail = format!(
        "[ \"$1\" = --replace ] && sleep 2 && echo loaded >> {}\nexit 0",
        log.display()
    );
    let (mut cmd, log) = env.with_fake_parser("$1", &tail, &[]);
    let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("--replace")) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the load never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    // Long enough for a parser left running to finish its load after the unload.
    std::thread::sleep(Duration::from_secs(3));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        ["--replace", "--remove"],
        "{calls}"
    );
    assert!(!env.addon_state_dir().exists());
}

// ---- one state directory's add-ons, short names, tokens, permissions ----

#[test]
fn ps_logs_stop_and_rm_answer_for_the_state_directory_by_short_name() {
    if !setup() {
        return;
    }
    let a = Env::new("dup", "");
    let b = Env::new("dup", "");
    let elsewhere = Env::new("elsewhere", "");
    ok(&a.run(&["--allow-unconfined"], "echo from-a; exec sleep 600"));
    // The same slug from another repository, into a's state directory.
    let state = a.state();
    let state = state.to_str().unwrap();
    let data = a.data_root();
    let b_addon = b.addon();
    let out = b
        .cmd(&[
            "run",
            b_addon.to_str().unwrap(),
            "--image",
            common::TEST_IMAGE,
            "--allow-unconfined",
            "--repository",
            "other",
            "--state-dir",
            state,
            "--data-root",
            data.to_str().unwrap(),
            "--command",
            "/bin/sleep",
            "600",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let _b_container = Dropper("app_other_dup".into());
    ok(&elsewhere.run(&["--allow-unconfined"], "exec sleep 600"));

    let ambiguous = a
        .cmd(&["stop", "dup", "--state-dir", state])
        .output()
        .unwrap();
    assert_eq!(ambiguous.status.code(), Some(1));
    assert!(
        stderr(&ambiguous).contains("local_dup, other_dup"),
        "{}",
        stderr(&ambiguous)
    );
    let foreign = a
        .cmd(&["logs", "local_elsewhere", "--state-dir", state])
        .output()
        .unwrap();
    assert_eq!(foreign.status.code(), Some(1));
    assert!(
        stderr(&foreign).contains("with this state directory"),
        "{}",
        stderr(&foreign)
    );

    let ps = |extra: &[&str]| {
        let mut args = vec!["ps", "--json", "--state-dir", state];
        args.extend_from_slice(extra);
        let out = a.cmd(&args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| {
                ["local_dup", "other_dup", "local_elsewhere"]
                    .contains(&e["full_slug"].as_str().unwrap())
            })
            .map(|e| {
                (
                    e["full_slug"].as_str().unwrap().to_owned(),
                    e["state_dir"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let own = ps(&[]);
    assert_eq!(
        own,
        [
            ("local_dup".to_owned(), Value::Null),
            ("other_dup".to_owned(), Value::Null)
        ]
    );
    let all = ps(&["--all"]);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.contains(&(
        "local_elsewhere".into(),
        Value::from(elsewhere.state().to_str().unwrap())
    )));

    // By short name in the other state directory: stop says what it waits for, rm cleans up.
    let es = elsewhere.state();
    let es = es.to_str().unwrap();
    let stop = a
        .cmd(&["stop", "elsewhere", "--state-dir", es])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(
        stderr(&stop).contains("waiting up to 10 s for it to exit"),
        "{}",
        stderr(&stop)
    );
    assert!(String::from_utf8_lossy(&stop.stdout).contains("stopped local_elsewhere"));
    let rm = a
        .cmd(&["rm", "elsewhere", "--state-dir", es])
        .output()
        .unwrap();
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(elsewhere.inspect().is_none());
    assert!(
        !elsewhere.addon_state_dir().exists(),
        "lock file or folder left after rm"
    );
    assert!(
        a.cmd(&["rm", "local_dup", "--state-dir", state])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        a.cmd(&["rm", "other_dup", "--state-dir", state])
            .status()
            .unwrap()
            .success()
    );

    // A failed run leaves no folder behind either.
    let failed = Env::new("failedrun", "");
    let out = failed
        .run_cmd("addon-sandbox-test/none:0", &["--allow-unconfined"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!failed.addon_state_dir().exists());
}

/// Removes a container of a test that is not its Env's.
struct Dropper(String);

impl Drop for Dropper {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn a_stopped_addons_token_is_refused_by_a_running_gateway() {
    if !setup() {
        return;
    }
    let env = Env::new("revoked", "hassio_api: true\n");
    ok(&env.run(&["--allow-unconfined"], "exec sleep 600"));
    let token = env.token().unwrap();
    let (mut gateway, listen) = env.serve();
    let ask = || {
        http(
            &listen,
            &format!(
                "GET /addons/self/info HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: {token}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let before = ask();
    assert!(env.sub("stop").status.success());
    let after = ask();
    let _ = gateway.kill();
    let _ = gateway.wait();
    assert!(
        before.starts_with("HTTP/1.1 502"),
        "allowed while running (upstream down): {before}"
    );
    assert!(
        after.starts_with("HTTP/1.1 401") || after.starts_with("HTTP/1.1 403"),
        "{after}"
    );
    assert!(env.token().is_none());
    assert!(env.sub("rm").status.success());
}

#[test]
fn a_loose_state_directory_is_narrowed_and_a_foreign_one_refused() {
    use std::os::unix::fs::PermissionsExt;
    if !setup() {
        return;
    }
    let env = Env::new("statedir", "");
    let state = env.state();
    std::fs::create_dir_all(state.join("addons")).unwrap();
    for dir in [state.clone(), state.join("addons")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = env
        .cmd(&["ps", "--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for dir in [state.clone(), state.join("addons")] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
    nix::unistd::chown(&state, Some(nobody), None).unwrap();
    let out = env.run(&["--allow-unconfined"], "exec sleep 600");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("belongs to uid"), "{}", stderr(&out));
    assert!(env.inspect().is_none());
}

// ---- what is bound, and what is loaded ----

#[test]
fn a_map_source_replaced_by_a_link_is_refused_by_name() {
    if !setup() {
        return;
    }
    let env = Env::new("linked", "map: [\"share:rw\", \"media\"]\n");
    let host_dir = env.dir.path().join("host-secret");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("secret"), "s").unwrap();
    let data = env.data_root();
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(&host_dir, data.join("share")).unwrap();
    let out = env.run(&["--allow-unconfined"], "exec sleep 600");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{} is a symbolic link",
            data.join("share").display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(env.inspect().is_none() && env.token().is_none());
    // Passing through a link is refused the same way, and nothing is created through it.
    std::fs::remove_file(data.join("share")).unwrap();
    std::fs::create_dir(data.join("share")).unwrap();
    std::os::unix::fs::symlink(&host_dir, data.join("media")).unwrap();
    let out = env.run(&["--allow-unconfined"], "exec sleep 600");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{} is a symbolic link",
            data.join("media").display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(env.inspect().is_none());
}

#[test]
fn an_authors_profile_with_a_second_profile_is_refused_before_loading() {
    if !setup() || common::parser().is_none() {
        return;
    }
    let env = Env::new("twoprofiles", "");
    std::fs::write(
        env.addon().join("apparmor.txt"),
        "#include <tunables/global>\nprofile twoprofiles flags=(attach_disconnected) {\n  file,\n}\n  profile docker-default flags=(unconfined) {\n  file,\n}\n",
    )
    .unwrap();
    let enabled = env.dir.path().join("enabled");
    std::fs::write(&enabled, "Y\n").unwrap();
    let out = env
        .run_cmd(
            common::TEST_IMAGE,
            &["--policy", "supervisor"],
            &["/bin/sleep", "600"],
        )
        .env("ADDON_SANDBOX_APPARMOR_ENABLED", &enabled)
        .env("ADDON_SANDBOX_TEST_ENGINE_APPARMOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("docker-default, local_twoprofiles"),
        "{}",
        stderr(&out)
    );
    assert!(env.inspect().is_none() && env.token().is_none());
    assert!(!env.state().join("apparmor/local_twoprofiles").exists());
}

#[test]
fn an_engine_without_recursive_read_only_says_so_at_run() {
    if !setup() {
        return;
    }
    let api = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    let api = String::from_utf8_lossy(&api.stdout).trim().to_owned();
    let (major, minor) = api.split_once('.').unwrap();
    let old_engine = (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap()) < (1, 44);
    let env = Env::new("rorec", "map: [share]\n");
    let report = ok(&env.run(&["--allow-unconfined"], "sleep 30"));
    let said = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("read-only only at their top"));
    assert_eq!(said, old_engine, "engine API {api}: {report}");
    assert!(env.sub("rm").status.success());
}

/// Items 3-5 of "Give a started add-on what the Supervisor gives it", on the real engine: an
/// audio add-on starts with the pulse client file and the asound file written before create
/// (the pulse file names the configured audio server); a declared device absent on this host
/// is skipped with a warning and the add-on starts; a writable map at `/usr/local` is mounted
/// there and writable (its non-execution is the profile's, proven by the parser in
/// tests/profile_rules.rs).
#[test]
fn audio_absent_devices_and_usr_local_maps_start_as_the_supervisor_would() {
    if !setup() {
        return;
    }
    let env = Env::new(
        "audiodev",
        "audio: true\nudev: true\ndevices: [/dev/ttyUSB97]\nmap:\n  - type: share\n    read_only: false\n    path: /usr/local/\n",
    );
    let script = r#"p=/data/proof.tmp
cat /etc/pulse/client.conf > $p
echo ASOUND >> $p
cat /etc/asound.conf >> $p
if touch /usr/local/written 2>/tmp/err; then echo usrlocal=written >> $p; else echo "usrlocal=$(cat /tmp/err)" >> $p; fi
if [ -e /dev/ttyUSB97 ]; then echo device=present >> $p; else echo device=absent >> $p; fi
echo END >> $p
mv $p /data/proof
sleep 300"#;
    let report = ok(&env.run(
        &["--allow-unconfined", "--audio-server", "/run/audio/native"],
        script,
    ));
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("device /dev/ttyUSB97 does not exist on this host: skipped"),
        "{warnings}"
    );
    let p = env.proof();
    assert!(
        p.contains("default-server = unix:/run/audio/native\n"),
        "{p}"
    );
    assert!(p.contains("autospawn = no\n"), "{p}");
    assert!(p.contains("pcm.!default {\n    type pulse\n}"), "{p}");
    assert!(p.contains("usrlocal=written"), "{p}");
    assert!(p.contains("device=absent"), "{p}");
    assert!(
        env.data_root().join("share/written").exists(),
        "the /usr/local map is the share folder"
    );
    let running = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", &env.container()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&running.stdout).trim(), "true");
    let pulse = env
        .data_root()
        .join(format!("tmp/{}_pulse", env.full_slug()));
    assert!(
        std::fs::read_to_string(pulse)
            .unwrap()
            .contains("default-server")
    );
}

/// An add-on whose `arch` does not list the host's architecture is not available: `run` exits
/// 1 with the reason and creates nothing (no data root, no state, no container); `check` still
/// calls the config valid; `--arch` chooses the architecture.
#[test]
fn an_addon_for_another_architecture_is_not_run() {
    let env = Env::new("otherarch", "");
    let config = env.addon().join("config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("arch: [amd64, aarch64]", "arch: [armv7]"),
    )
    .unwrap();
    let out = env
        .run_cmd(common::TEST_IMAGE, &["--arch", "amd64"], &["true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not available on amd64: its `arch` lists armv7"),
        "{}",
        stderr(&out)
    );
    assert!(
        !env.data_root().exists() && !env.state().exists(),
        "something was created"
    );
    let inspect = Command::new("docker")
        .args(["inspect", &env.container()])
        .output();
    assert!(inspect.is_err() || !inspect.unwrap().status.success());
    let check = env
        .cmd(&["check", env.addon().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let plan = env
        .cmd(&["plan", env.addon().to_str().unwrap(), "--arch", "armv7"])
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", stderr(&plan));
}

/// The bashio probe image (tests/workloads/bashio-probe) on Home Assistant's Debian base image
/// from scripts/build-base-image; None, with the reason, when the base image is not here and
/// REQUIRE_WORKLOADS is not 1.
fn bashio_image() -> Option<&'static str> {
    // Built FROM the base image (tests/workloads/bashio-probe/Dockerfile).
    common::base_image("bookworm")?;
    const IMAGE: &str = "addon-sandbox-test/bashio-probe:1";
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/workloads/bashio-probe");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE, dir])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(IMAGE)
}

/// Start `serve` standalone on its own test network; returns it and the gateway's address.
fn serve_standalone(env: &Env, log: &std::path::Path) -> (std::process::Child, String) {
    let mut gateway = env
        .cmd(&["serve", "--listen", "127.0.0.1:0", "--log", "all"])
        .args([
            "--network-name",
            "addon-sandbox-test",
            "--subnet",
            "172.30.244.0/23",
        ])
        .arg("--state-dir")
        .arg(env.state())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let line = common::first_line(&mut gateway);
    let said: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "serve said {line:?}: {}",
            std::fs::read_to_string(log).unwrap()
        )
    });
    assert_eq!(said["supervisor"], "172.30.244.1:80", "{said}");
    (gateway, said["listen"].as_str().unwrap().to_owned())
}

/// What the probe wrote to its /data, waited for.
fn probe_answer(env: &Env) -> Value {
    let file = env
        .data_root()
        .join("apps/data")
        .join(env.full_slug())
        .join("bashio-probe.json");
    let start = Instant::now();
    while !file.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read(&file).unwrap_or_else(|_| {
        let logs = Command::new("docker")
            .args(["logs", &env.container()])
            .output()
            .unwrap();
        panic!(
            "no answer from the probe: {}",
            String::from_utf8_lossy(&logs.stderr)
        )
    });
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn bashio_reads_config_info_and_services_from_a_standalone_serve() {
    if !setup() {
        return;
    }
    let Some(image) = bashio_image() else {
        return;
    };
    // A mosquitto-like add-on (provides mqtt) and one that never asked for the service; both
    // share one state directory, so one gateway serves them.
    let config =
        "options: {greeting: hello, provide: true}\nschema: {greeting: str, provide: bool}\n";
    let broker = Env::new(
        "bashio_broker",
        &format!("{config}services: ['mqtt:provide']\n"),
    );
    let other = Env::new("bashio_other", &config.replace("true", "false"));
    let shared_state = broker.state();
    let log = broker.dir.path().join("serve.log");
    let (mut gateway, _listen) = serve_standalone(&broker, &log);
    for (env, options) in [
        (&broker, r#"{"greeting":"hello","provide":true}"#),
        (&other, r#"{"greeting":"hi","provide":false}"#),
    ] {
        // `run` validates the options and writes them to the add-on's data folder.
        let out = env
            .cmd(&["run", "--json", "--allow-unconfined", "--image", image])
            .args(["--options", options])
            .arg(env.addon())
            .arg("--data-root")
            .arg(env.data_root())
            .arg("--state-dir")
            .arg(&shared_state)
            .output()
            .unwrap();
        ok(&out);
    }
    let broker_said = probe_answer(&broker);
    let other_said = probe_answer(&other);
    let _ = gateway.kill();
    let _ = gateway.wait();
    let _ = Command::new("docker")
        .args(["network", "rm", "addon-sandbox-test"])
        .output();
    let log = std::fs::read_to_string(&log).unwrap();

    assert_eq!(broker_said["greeting"], "hello", "{broker_said} {log}");
    assert_eq!(broker_said["name"], "T", "{broker_said}");
    assert!(
        broker_said["ip"].as_str().unwrap().starts_with("172.30.24"),
        "on the gateway's network: {broker_said}"
    );
    assert_eq!(broker_said["version"], "1.0", "{broker_said}");
    assert_eq!(broker_said["mqtt_host"], "core-mosquitto", "{broker_said}");
    assert_eq!(broker_said["services_rc"], 0, "{broker_said}");
    // The other add-on reads its own options and info, but not the broker's credentials.
    assert_eq!(other_said["greeting"], "hi", "{other_said}");
    assert_eq!(other_said["info_rc"], 0, "{other_said}");
    assert_ne!(other_said["services_rc"], 0, "{other_said}");
    assert_eq!(other_said["mqtt_host"], "", "{other_said}");
    // The request log shows each call, the refusal with its status.
    for (who, what) in [
        (&broker, "/addons/self/options/config"),
        (&broker, "/addons/self/info"),
        (&broker, "/services/mqtt"),
    ] {
        let caller = format!("addon:{}", who.full_slug());
        assert!(
            log.lines()
                .any(|l| l.contains(&caller) && l.contains(what) && l.contains("200")),
            "{what} of {caller} not in the log:\n{log}"
        );
    }
    let other_caller = format!("addon:{}", other.full_slug());
    assert!(
        log.lines().any(|l| l.contains(&other_caller)
            && l.contains("/services/mqtt")
            && l.contains("403")),
        "the refusal is not in the log:\n{log}"
    );
}

/// Removes a Docker network a test made, whatever the test's outcome.
struct NetworkDropper(&'static str);

impl Drop for NetworkDropper {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", self.0])
            .output();
    }
}

fn network_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["network", "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// `serve` standalone on `state` with `network` flags; its exit status and standard error if it
/// ends within 30 seconds (None: it kept serving, and is killed).
fn serve_that_should_end(state: &std::path::Path, network: &[&str]) -> Option<(i32, String)> {
    let mut serve = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(network)
        .arg("--state-dir")
        .arg(state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(status) = serve.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut err).unwrap();
            return Some((status.code().unwrap_or(-1), err));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = serve.kill();
    let _ = serve.wait();
    None
}

#[test]
fn serve_refuses_a_subnet_overlapping_another_network_and_makes_nothing() {
    if !setup() {
        return;
    }
    let existing = "addon-sandbox-overlap-probe";
    let wanted = "addon-sandbox-overlap-new";
    let _cleanup = (NetworkDropper(existing), NetworkDropper(wanted));
    let _ = Command::new("docker")
        .args(["network", "rm", existing])
        .output();
    let made = Command::new("docker")
        .args(["network", "create", "--subnet", "172.30.250.0/24", existing])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let env = Env::new("overlap", "");

    // Another network inside the wanted subnet.
    let (code, err) = serve_that_should_end(
        &env.state(),
        &["--network-name", wanted, "--subnet", "172.30.250.0/23"],
    )
    .expect("serve refuses an overlapping subnet and ends");
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "subnet 172.30.250.0/23 overlaps network {existing} (172.30.250.0/24): choose another with --subnet"
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!network_exists(wanted), "a refused serve made its network");
    assert!(!env.state().join("gateway.json").exists());

    // A network of the wanted name on another subnet is not taken over either.
    let (code, err) = serve_that_should_end(
        &env.state(),
        &["--network-name", existing, "--subnet", "172.30.252.0/23"],
    )
    .expect("serve refuses a network of its name on another subnet");
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "a network named {existing} exists but is not a bridge on 172.30.252.0/23 (it has 172.30.250.0/24)"
        )),
        "{err}"
    );
    assert!(!env.state().join("gateway.json").exists());
}

#[test]
fn run_warns_when_no_gateway_serves_its_state_directory_and_not_when_one_does() {
    if !setup() {
        return;
    }
    const NO_GATEWAY: &str = "no gateway is serving this state directory's add-ons";
    let network = "addon-sandbox-gwwarn";
    let _cleanup = NetworkDropper(network);
    let env = Env::new("gwwarn", "hassio_api: true\n");
    let warned = |out: &Output| String::from_utf8_lossy(&out.stderr).contains(NO_GATEWAY);

    // No serve at all, then a serve of another state directory: warned both times.
    let out = env.run(&["--allow-unconfined"], "exec sleep 600");
    let report = ok(&out);
    assert!(warned(&out), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        report["warnings"].to_string().contains(NO_GATEWAY),
        "the report carries it too: {report}"
    );
    assert!(env.sub("rm").status.success());
    let elsewhere = tempfile::tempdir().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--network-name",
            network,
        ])
        .args(["--subnet", "172.30.248.0/23", "--state-dir"])
        .arg(elsewhere.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let line = common::first_line(&mut serve);
    let out = env.run(&["--allow-unconfined"], "exec sleep 600");
    ok(&out);
    assert!(warned(&out), "another directory's gateway: {line}");
    assert!(env.sub("rm").status.success());
    let _ = serve.kill();
    let _ = serve.wait();

    // A serve of this state directory: no warning, and the add-on is on its network.
    let log = env.dir.path().join("serve.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--network-name",
            network,
        ])
        .args(["--subnet", "172.30.248.0/23", "--state-dir"])
        .arg(env.state())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let line = common::first_line(&mut serve);
    let out = env.run(&["--allow-unconfined"], "exec sleep 600");
    let inspect = env.inspect();
    let _ = serve.kill();
    let _ = serve.wait();
    ok(&out);
    assert!(
        !warned(&out),
        "{line} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect = inspect.unwrap();
    assert!(
        inspect["NetworkSettings"]["Networks"][network].is_object(),
        "{}",
        inspect["NetworkSettings"]["Networks"]
    );
    let hosts = inspect["HostConfig"]["ExtraHosts"].to_string();
    assert!(
        hosts.contains("supervisor:172.30.248.1") && hosts.contains("hassio:172.30.248.1"),
        "{hosts}"
    );
    // A gateway killed outright leaves its gateway.json: its pid is gone, so the next run is
    // warned again rather than joined to a network nobody serves.
    assert!(env.state().join("gateway.json").exists());
    assert!(env.sub("rm").status.success());
    let out = env.run(&["--allow-unconfined"], "exec sleep 600");
    ok(&out);
    assert!(warned(&out), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(env.sub("rm").status.success());
}
