//! The initramfs tree: busybox, `apparmor_parser` with its libraries and the tunables and ABI
//! files it reads, profiles compiled on the host, and the static probe program.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{VmError, fail};

/// The static probe program: one access attempt, printing `OK` or `ERR <errno>`.
const PROBE_C: &str = include_str!("../vm_probe.c");

/// The initramfs tree every boot shares: busybox, `apparmor_parser` with its libraries, and
/// the tunables and ABI files it reads.
pub(super) fn base_root(work: &Path) -> Result<PathBuf, VmError> {
    let root = work.join("root");
    for d in [
        "bin",
        "sbin",
        "proc",
        "sys",
        "dev",
        "profiles",
        "etc/apparmor.d",
        "tmp",
        "run",
    ] {
        std::fs::create_dir_all(root.join(d)).map_err(fail)?;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            VmError("busybox is not installed (Debian package busybox-static)".into())
        })?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(fail)?;
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).map_err(fail)?;
    let parser = crate::apparmor::parser::find_program("apparmor_parser")
        .ok_or_else(|| VmError("apparmor_parser not found".into()))?;
    copy_with_libs(&parser, &root, "/sbin/apparmor_parser")?;
    for d in ["tunables", "abi"] {
        copy_tree(
            &Path::new("/etc/apparmor.d").join(d),
            &root.join("etc/apparmor.d").join(d),
        )?;
    }
    Ok(root)
}

/// Compile a profile on the host against the pinned ABI (compiling under TCG emulation is
/// slow) into `<root>/profiles-bin/<name>`, which the VM's init loads with `apparmor_parser -B`.
pub(super) fn compile_into(
    root: &Path,
    parser: &crate::apparmor::Parser,
    name: &str,
    text: &str,
) -> Result<(), VmError> {
    let compiled = parser
        .check(text)
        .map_err(|e| VmError(format!("{name} does not compile: {e}")))?;
    std::fs::create_dir_all(root.join("profiles-bin")).map_err(fail)?;
    std::fs::write(root.join("profiles-bin").join(name), compiled.binary).map_err(fail)
}

/// The static probe program, built for `dest`.
pub(super) fn build_probe(work: &Path, dest: &Path) -> Result<(), VmError> {
    let probe_src = work.join("probe.c");
    std::fs::write(&probe_src, PROBE_C).map_err(fail)?;
    let built = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(dest)
        .arg(&probe_src)
        .status()
        .map_err(fail)?;
    if !built.success() {
        return Err(VmError(
            "gcc -static failed (is libc6-dev installed?)".into(),
        ));
    }
    Ok(())
}

pub(super) fn copy_with_libs(binary: &Path, root: &Path, dest: &str) -> Result<(), VmError> {
    let target = root.join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap_or(root)).map_err(fail)?;
    std::fs::copy(binary, &target).map_err(fail)?;
    let ldd = Command::new("ldd").arg(binary).output().map_err(fail)?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = line
            .split("=>")
            .nth(1)
            .unwrap_or(line)
            .split_whitespace()
            .next()
            .unwrap_or("");
        if lib.starts_with('/') {
            let t = root.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(t.parent().unwrap_or(root)).map_err(fail)?;
            std::fs::copy(lib, &t).map_err(fail)?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), VmError> {
    std::fs::create_dir_all(to).map_err(fail)?;
    for e in std::fs::read_dir(from).map_err(fail)?.flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &t)?;
        } else if p.is_file() {
            std::fs::copy(&p, &t).map_err(fail)?;
        }
    }
    Ok(())
}
