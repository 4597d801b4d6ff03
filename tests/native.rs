//! The native backend's walls, proved from inside a sandbox of the busybox rootfs: the seccomp
//! filter (Docker's default profile for the plan's capabilities, no executable memfd), Docker's
//! masked `/proc` paths, setup that never writes outside the rootfs, no inherited descriptor,
//! and read-only maps that stay read-only below their top. Needs root (REQUIRE_NATIVE=1 to fail
//! instead of skipping); run under the shared lock.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One add-on, its data root, state directory and rootfs in a temporary directory; removed
/// (`rm`) when dropped.
struct Sandbox {
    dir: tempfile::TempDir,
    slug: String,
}

impl Sandbox {
    fn new(slug: &str, extra: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("addon")).unwrap();
        std::fs::write(
            dir.path().join("addon/config.yaml"),
            format!("name: T\nversion: \"1\"\nslug: {slug}\ndescription: d\narch: [amd64, aarch64]\n{extra}"),
        )
        .unwrap();
        let rootfs = dir.path().join("rootfs");
        common::busybox_rootfs(&rootfs);
        for applet in ["wc", "tr", "cut"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::copy(probe(), rootfs.join("bin/probe")).unwrap();
        Sandbox {
            dir,
            slug: slug.to_owned(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `addon-sandbox` with the state directory, as `verb [args]`.
    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
        c.args(args).arg("--state-dir").arg(self.path("state"));
        c
    }

    /// `run --backend native` of `script`; `wrap` may start it another way (through a shell
    /// that opens a descriptor first, say).
    fn run(&self, script: &str, wrap: &[&str]) -> Output {
        let (addon, data, rootfs) = (self.path("addon"), self.path("data"), self.path("rootfs"));
        let mut c = if wrap.is_empty() {
            Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        } else {
            let mut c = Command::new(wrap[0]);
            c.args(&wrap[1..]).arg(env!("CARGO_BIN_EXE_addon-sandbox"));
            c
        };
        c.args(["run", "--backend", "native", "--json"])
            .arg(addon)
            .arg("--rootfs")
            .arg(rootfs)
            .arg("--data-root")
            .arg(data)
            .arg("--state-dir")
            .arg(self.path("state"))
            .args(["--command", "/bin/sh", "-c", script]);
        c.output().unwrap()
    }

    /// `run` that must succeed, then the lines the script left in `/data/out` (ending `END`).
    fn answers(&self, script: &str, wrap: &[&str]) -> String {
        let out = self.run(
            &format!("{{ {script}; }} > /data/out.tmp 2>&1; echo END >> /data/out.tmp; mv /data/out.tmp /data/out; exec sleep 600"),
            wrap,
        );
        assert!(
            out.status.success(),
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let file = self
            .path("data/apps/data")
            .join(format!("local_{}", self.slug))
            .join("out");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && text.ends_with("END\n")
            {
                return text;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no answers");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let slug = format!("local_{}", self.slug);
        let _ = self.cli(&["rm", &slug]).output();
    }
}

/// The value of `key=` in the answers.
fn answer<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

/// tests/fixtures/native_probe.c, built static once per run.
fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("addon-sandbox-probe-{}", std::process::id()));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/native_probe.c");
        let built = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(source)
            .output()
            .expect("gcc runs");
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        out
    })
}

#[test]
fn seccomp_denies_what_docker_denies_and_executable_memfds() {
    if !common::native_available() {
        return;
    }
    let sandbox = Sandbox::new("seccomp", "");
    let text = sandbox.answers(
        "/bin/probe /bin/busybox; \
         echo \"seccomp=$(grep '^Seccomp:' /proc/self/status | tr -d '\\t ' | cut -d: -f2)\"; \
         echo \"keys=$(cat /proc/keys 2>&1 | wc -c)\"; \
         echo \"kallsyms=$(cat /proc/kallsyms 2>&1 | wc -c)\"; \
         if echo hi > /data/plain; then echo data_write=ok; fi",
        &[],
    );
    for denied in [
        "keyctl",
        "add_key",
        "unshare_user",
        "unshare_user_net",
        "unshare_net",
        "io_uring_setup",
        "vsock",
        "personality_exec",
    ] {
        assert_eq!(answer(&text, denied), "ERR 1", "{denied} (EPERM):\n{text}");
    }
    // clone3 is ENOSYS, as Docker has it, so that C libraries fall back to clone.
    assert_eq!(answer(&text, "clone3"), "ERR 38", "{text}");
    // A memfd that can never be executable is fine; one that could be is refused, and so is
    // executing a descriptor (the memfd never comes to exist, so its exec fails on the fd).
    assert_eq!(answer(&text, "memfd_noexec"), "OK", "{text}");
    assert_eq!(answer(&text, "memfd_fexecve"), "ERR 1", "{text}");
    assert_eq!(answer(&text, "memfd_exec_path"), "ERR 1", "{text}");
    assert_eq!(answer(&text, "probe"), "done");
    assert_eq!(answer(&text, "seccomp"), "2", "{text}");
    assert_eq!(answer(&text, "keys"), "0", "/proc/keys is masked: {text}");
    assert_eq!(
        answer(&text, "kallsyms"),
        "0",
        "/proc/kallsyms is masked: {text}"
    );
    assert_eq!(
        answer(&text, "data_write"),
        "ok",
        "an ordinary workload runs: {text}"
    );
}

#[test]
fn setup_resolves_mount_points_inside_the_rootfs() {
    if !common::native_available() {
        return;
    }
    // Host directories the rootfs's links name; the rootfs has the same paths inside it.
    let outside = tempfile::tempdir_in("/var/tmp").unwrap();
    let sandbox = Sandbox::new("links", "map: [share, \"media:rw\"]\n");
    let rootfs = sandbox.path("rootfs");
    for name in ["share", "media", "dev"] {
        let host = outside.path().join(name);
        let inside = rootfs.join(host.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        std::os::unix::fs::symlink(&host, rootfs.join(name)).unwrap();
    }
    let text = sandbox.answers(
        "if echo hi > /media/from-inside; then echo media=written; fi; \
         echo \"null=$(cat /dev/null | wc -c)\"",
        &[],
    );
    assert_eq!(answer(&text, "media"), "written", "{text}");
    assert_eq!(answer(&text, "null"), "0", "{text}");
    assert_eq!(
        std::fs::read_to_string(sandbox.path("data/media/from-inside")).unwrap(),
        "hi\n"
    );
    let touched: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(touched.is_empty(), "created on the host: {touched:?}");
}

#[test]
fn no_descriptor_of_the_launcher_reaches_the_sandbox() {
    if !common::native_available() {
        return;
    }
    let sandbox = Sandbox::new("fds", "");
    // The launcher starts with descriptor 7 open (not close-on-exec), as an unwary caller's.
    let text = sandbox.answers(
        "/bin/probe fds",
        &["/bin/sh", "-c", "exec 7</etc/hostname; exec \"$@\"", "sh"],
    );
    assert_eq!(answer(&text, "fds"), "0 1 2", "{text}");
}

/// A tmpfs mounted in the host's namespace, unmounted when dropped.
struct HostMount(PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_map_is_read_only_below_its_top() {
    if !common::native_available() {
        return;
    }
    let sandbox = Sandbox::new("nas", "map: [share]\n");
    let nas = sandbox.path("data/share/nas");
    std::fs::create_dir_all(&nas).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&nas)
        .status()
        .unwrap();
    assert!(mounted.success());
    let _nas = HostMount(nas.clone());
    let text = sandbox.answers(
        "if touch /share/top 2>/tmp/e; then echo top=written; else echo \"top=$(cat /tmp/e)\"; fi; \
         if touch /share/nas/below 2>/tmp/e; then echo below=written; else echo \"below=$(cat /tmp/e)\"; fi",
        &[],
    );
    assert!(
        answer(&text, "top").contains("Read-only file system"),
        "{text}"
    );
    assert!(
        answer(&text, "below").contains("Read-only file system"),
        "{text}"
    );
    assert!(!nas.join("below").exists());
}

/// The launcher checks every source below the data root without following links; a link
/// planted in the moment between that check and the setup's bind is refused as well, because the
/// setup walks the path again the same way and binds the descriptor it got.
#[test]
fn a_source_swapped_for_a_link_after_the_launchers_check_is_not_followed() {
    use addon_sandbox::{native, policy};
    if !common::native_available() {
        return;
    }
    let sandbox = Sandbox::new("swap", "map: [share:rw]\n");
    let data_root = sandbox.path("data");
    let options = policy::PlanOptions {
        data_root: data_root.to_string_lossy().into_owned(),
        ..policy::PlanOptions::default()
    };
    let addon = addon_sandbox::addon::load(&sandbox.path("addon"));
    let plan = policy::decide(addon.config.as_ref().unwrap(), false, &options).unwrap();
    let sources = addon_sandbox::launch::check_sources(&plan, &data_root).expect("checked");
    let mut spec = native::spec(
        &plan,
        &sandbox.path("rootfs"),
        vec!["/bin/sh".into(), "-c".into(), "sleep 60".into()],
        "token",
        "UTC",
        native::Confinement::None,
        sandbox.path("native.log"),
    )
    .unwrap();
    spec.bind_checked(&sources);
    // Now the add-on (writing in `share`'s parent, say) swaps the checked folder for a link.
    let share = data_root.join("share");
    let elsewhere = sandbox.path("host-secrets");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir(&share).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &share).unwrap();
    // The setup as the launcher starts it from a threaded caller: this binary's
    // `__native-init`, the spec on its standard input, its report on standard output.
    let mut init = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .arg("__native-init")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut init.stdin.take().unwrap(),
        &serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let report = init.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(report.contains("symbolic link"), "{report}");
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "nothing reached the link's target"
    );
}
