//! The kernel image: Debian's cloud kernel, downloaded once into a cache directory, after
//! checking that the tools a boot needs are installed.

use std::path::PathBuf;
use std::process::Command;

use super::VmError;

fn skip(why: String) -> Result<PathBuf, VmError> {
    Err(VmError(why))
}

/// `$ADDON_SANDBOX_VM_CACHE`, else `$XDG_CACHE_HOME/addon-sandbox/apparmor-vm`, else
/// `~/.cache/addon-sandbox/apparmor-vm`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ADDON_SANDBOX_VM_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("addon-sandbox/apparmor-vm")
}

/// The kernel image, downloaded once into [`cache_dir`] (Debian's `linux-image-cloud-amd64`,
/// AppArmor built in and on). An error saying why when qemu, gcc, cpio or the kernel package
/// cannot be had.
pub fn kernel() -> Result<PathBuf, VmError> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)".into());
    }
    for tool in ["cpio", "gcc"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return skip(format!("{tool} is not installed"));
        }
    }
    let dir = cache_dir();
    let kernel = dir.join("vmlinuz");
    if kernel.is_file() {
        return Ok(kernel);
    }
    std::fs::create_dir_all(&dir).map_err(|e| VmError(format!("{}: {e}", dir.display())))?;
    let deps = Command::new("apt-cache")
        .args(["depends", "linux-image-cloud-amd64"])
        .output();
    let Some(pkg) = deps.ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|p| p.starts_with("linux-image-") && p.contains("cloud"))
                .map(str::to_owned)
        })
    }) else {
        return skip("apt-cache knows no linux-image-cloud-amd64 (apt-get update?)".into());
    };
    let dl = Command::new("apt-get")
        .args(["download", &pkg])
        .current_dir(&dir)
        .output();
    if !dl.is_ok_and(|o| o.status.success()) {
        return skip(format!("apt-get download {pkg} failed"));
    }
    let deb = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("downloaded .deb");
    let x = dir.join("x");
    let ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&x)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return skip(format!("dpkg-deb -x {} failed", deb.display()));
    }
    let vmlinuz = std::fs::read_dir(x.join("boot"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vmlinuz-")
        })
        .expect("vmlinuz in the package");
    std::fs::copy(&vmlinuz, &kernel).unwrap();
    let _ = std::fs::remove_dir_all(&x);
    let _ = std::fs::remove_file(&deb);
    Ok(kernel)
}
