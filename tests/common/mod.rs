//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod kube_node;
pub mod proof;

use std::path::PathBuf;

/// The corpus of real add-ons (`../shared/corpus` beside the checkout, or
/// `$ADDON_SANDBOX_CORPUS`). None, with a printed reason, when it is absent and not required;
/// a panic when `REQUIRE_CORPUS=1`.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ADDON_SANDBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("expected").is_dir() {
        return Some(dir);
    }
    unavailable("REQUIRE_CORPUS", &format!("no corpus at {}", dir.display()))
}

/// A part a test needs is missing: with `<require>=1` (CI) that is a failure, otherwise the
/// test skips with the printed reason.
fn unavailable<T>(require: &str, why: &str) -> Option<T> {
    if std::env::var(require).as_deref() == Ok("1") {
        panic!("{require}=1 but {why}");
    }
    eprintln!("skipped: {why} (set {require}=1 to fail instead)");
    None
}

/// Every expected record of the corpus, in file order.
pub fn expected_records(corpus: &std::path::Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join("expected"))
        .expect("read expected/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut records = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read expected file");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            records.push(serde_json::from_str(line).expect("expected line is JSON"));
        }
    }
    records
}

/// A temporary add-on folder holding `config.yaml` with the given text.
pub fn addon_dir(config_yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.yaml"), config_yaml).expect("write config");
    dir
}

/// The smallest valid config, plus extra lines.
pub fn minimal(extra: &str) -> String {
    format!(
        "name: Test\nversion: \"1.0.0\"\nslug: test\ndescription: A test add-on\narch: [amd64, aarch64]\n{extra}"
    )
}

/// The real `apparmor_parser` with the pinned ABI. None, with a printed reason, when it is
/// missing and not required; a panic when `REQUIRE_APPARMOR=1`.
pub fn parser() -> Option<addon_sandbox::apparmor::Parser> {
    match addon_sandbox::apparmor::Parser::find() {
        Ok(p) => Some(p),
        Err(err) => unavailable("REQUIRE_APPARMOR", &err.to_string()),
    }
}

/// Every add-on folder of the corpus, loaded, in path order.
pub fn corpus_addons(corpus: &std::path::Path) -> Vec<addon_sandbox::addon::Addon> {
    let mut dirs = Vec::new();
    for part in ["official", "community"] {
        dirs.extend(addon_sandbox::addon::discover(&corpus.join(part)));
    }
    dirs.sort();
    dirs.iter().map(|d| addon_sandbox::addon::load(d)).collect()
}

/// The repository's own example add-ons.
pub fn example_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Whether a Docker engine answers. False, with a printed reason, when none does and it is not
/// required; a panic when `REQUIRE_DOCKER=1`.
pub fn docker_available() -> bool {
    let ok = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        unavailable::<()>("REQUIRE_DOCKER", "no Docker engine answers");
    }
    ok
}

/// The native backend needs root (namespaces, mounts) and, on a host without AppArmor, Landlock.
#[allow(dead_code)]
pub fn native_available() -> bool {
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root {
        unavailable::<()>("REQUIRE_NATIVE", "the native backend needs root");
        return false;
    }
    if addon_sandbox::native::landlock_abi() == 0 {
        unavailable::<()>("REQUIRE_NATIVE", "the kernel has no Landlock");
        return false;
    }
    true
}

/// The applets the test scripts use, as symlinks to busybox.
pub const APPLETS: [&str; 14] = [
    "sh", "sleep", "cat", "echo", "grep", "readlink", "ls", "mv", "cp", "chmod", "touch", "mkdir",
    "true", "hostname",
];

/// A root filesystem directory for the native backend: Debian's static busybox and its applets.
#[allow(dead_code)]
pub fn busybox_rootfs(dir: &std::path::Path) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("busybox-static is installed (Debian package busybox-static)");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
}

/// The test image's root filesystem as a tar: Debian's static busybox, its applets as links,
/// and the empty folders a container needs.
pub fn busybox_image_tar() -> Vec<u8> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("busybox-static is installed (Debian package busybox-static)");
    let mut builder = tar::Builder::new(Vec::new());
    let add_dir = |b: &mut tar::Builder<Vec<u8>>, path: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    };
    for d in ["bin", "data", "tmp", "etc", "run", "proc", "sys", "dev"] {
        add_dir(&mut builder, d);
    }
    let bytes = std::fs::read(busybox).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bytes.len() as u64);
    builder
        .append_data(&mut h, "bin/busybox", bytes.as_slice())
        .unwrap();
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        builder
            .append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// The test image: Debian's static busybox in an otherwise empty root filesystem, imported
/// into the local engine (no registry). Built once per engine.
pub const TEST_IMAGE: &str = "addon-sandbox-test/busybox:1";

pub fn ensure_test_image() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let exists = std::process::Command::new("docker")
            .args(["image", "inspect", TEST_IMAGE])
            .output()
            .is_ok_and(|o| o.status.success());
        if exists {
            return;
        }
        let tar = busybox_image_tar();
        let mut child = std::process::Command::new("docker")
            .args(["import", "-", TEST_IMAGE])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("docker import");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tar).unwrap();
        assert!(child.wait().unwrap().success(), "docker import failed");
    });
}

/// The AppArmor VM's kernel. None, with a printed reason, when qemu, gcc, cpio or the kernel
/// package cannot be had and it is not required; a panic when `REQUIRE_APPARMOR_VM=1`.
pub fn vm_kernel() -> Option<std::path::PathBuf> {
    match addon_sandbox::vm::kernel() {
        Ok(k) => Some(k),
        Err(err) => unavailable("REQUIRE_APPARMOR_VM", &err.to_string()),
    }
}

/// Home Assistant's Debian base image `addon-sandbox/base-debian:<suite>`, rebuilt from source by
/// `scripts/build-base-image` (cached by its inputs: seconds when nothing changed). With
/// `REQUIRE_WORKLOADS=1` it is built when missing and a failed build is a panic; without it an
/// image already built is used, and a missing one skips the test with the printed reason.
pub fn base_image(suite: &str) -> Option<String> {
    let image = format!("addon-sandbox/base-debian:{suite}");
    let required = std::env::var("REQUIRE_WORKLOADS").as_deref() == Ok("1");
    if required {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/build-base-image");
        let out = std::process::Command::new(script)
            .arg(suite)
            .output()
            .expect("run scripts/build-base-image");
        assert!(
            out.status.success(),
            "scripts/build-base-image {suite} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Some(image);
    }
    let built = std::process::Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if built {
        return Some(image);
    }
    unavailable(
        "REQUIRE_WORKLOADS",
        &format!("{image} is not built (scripts/build-base-image {suite})"),
    )
}

/// The first line a spawned command prints (`serve`'s `{"listen": ...}`), read from its piped
/// standard output, which is taken from the child.
pub fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("a piped standard output")),
        &mut line,
    )
    .expect("read the first line");
    line
}

/// `/usr/bin/python3` (Debian's, else `python3` on the path) with the `jsonschema` package
/// (`python3-jsonschema`). None, with a printed reason, when there is none and it is not
/// required; a panic when `REQUIRE_JSONSCHEMA=1`.
pub fn python_jsonschema() -> Option<PathBuf> {
    for python in ["/usr/bin/python3", "python3"] {
        let ok = std::process::Command::new(python)
            .args(["-c", "import jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(PathBuf::from(python));
        }
    }
    unavailable(
        "REQUIRE_JSONSCHEMA",
        "no python3 with jsonschema (apt-get install python3-jsonschema)",
    )
}

/// Copy a folder and everything below it (regular files and folders only).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let kind = entry.file_type().expect("file type");
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Home Assistant's official add-ons as sources, with their `rootfs/` scripts
/// (`../shared/workloads/official` beside the checkout). None, with a printed reason, when
/// absent and not required; a panic when `REQUIRE_WORKLOADS=1`.
pub fn official_sources() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/workloads/official");
    if dir.is_dir() {
        return Some(dir);
    }
    unavailable(
        "REQUIRE_WORKLOADS",
        &format!("no official add-on sources at {}", dir.display()),
    )
}

/// The Docker engine VM's root (`scripts/build-vm-root`: Debian with docker.io and the cloud
/// kernel on an ext4 disk, cached by its recipe). With `REQUIRE_APPARMOR_VM=1` it is built when
/// missing and a failed build is a panic; without it a root already built is used, and a
/// missing one (or a missing qemu) skips the test with the printed reason.
pub fn vm_engine_root() -> Option<addon_sandbox::vm::EngineRoot> {
    let qemu = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !qemu {
        return unavailable(
            "REQUIRE_APPARMOR_VM",
            "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)",
        );
    }
    let required = std::env::var("REQUIRE_APPARMOR_VM").as_deref() == Ok("1");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/build-vm-root");
    let mut cmd = std::process::Command::new(script);
    if !required {
        cmd.arg("--cached");
    }
    let out = cmd.output().expect("run scripts/build-vm-root");
    if !out.status.success() {
        return unavailable(
            "REQUIRE_APPARMOR_VM",
            &format!(
                "scripts/build-vm-root failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    match addon_sandbox::vm::EngineRoot::at(&dir) {
        Ok(root) => Some(root),
        Err(err) => unavailable("REQUIRE_APPARMOR_VM", &err.to_string()),
    }
}
