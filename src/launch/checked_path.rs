//! Host paths opened without following symbolic links. An add-on with write access to a folder
//! under the data root can put a link where another mount's source is expected; a launcher that
//! followed it would bind whatever the link names. Every component below the starting folder is
//! opened with `O_NOFOLLOW` relative to its parent's descriptor and checked to be no link, so a
//! path is either what it says or refused by name; the descriptor returned is the object that
//! was checked (the native backend binds through it; see [`fd_path`]).
//!
//! The starting folder itself (the data root, or `/`) is the operator's and is opened normally.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, mkdirat};

#[derive(Debug, thiserror::Error)]
pub enum CheckedPathError {
    #[error(
        "{0} is a symbolic link: refusing to follow it (a link below the data root may have been planted by an add-on; remove it)"
    )]
    Symlink(PathBuf),
    #[error("{path} is not below {root}")]
    NotBeneath { path: PathBuf, root: PathBuf },
    #[error("{0} is not a directory")]
    NotDirectory(PathBuf),
    #[error("{0} is not a regular file: refusing to write to it")]
    NotRegular(PathBuf),
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{path}: {errno}")]
    Io { path: PathBuf, errno: Errno },
}

/// The descriptor of `path` (below `root`, or relative to it), reached without following any
/// link below `root`; an `O_PATH` descriptor, good for `fstat`, `*at` calls and binding.
pub fn open_beneath(root: &Path, path: &Path) -> Result<OwnedFd, CheckedPathError> {
    walk(root, path, None)
}

/// Like [`open_beneath`] for a directory, creating each missing component with `mode`.
pub fn create_dir_beneath(
    root: &Path,
    path: &Path,
    mode: u32,
) -> Result<OwnedFd, CheckedPathError> {
    let fd = walk(root, path, Some(Mode::from_bits_truncate(mode)))?;
    Ok(fd)
}

/// Write `contents` to the regular file `path` below `root`, creating it (`mode`) and its
/// missing parent folders (0750), without following a link anywhere below `root`: a link, a
/// folder or any other non-regular file where the file should be is refused by name.
pub fn write_file_beneath(
    root: &Path,
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), CheckedPathError> {
    use std::io::Write;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(CheckedPathError::NotBeneath {
            path: path.to_owned(),
            root: root.to_owned(),
        });
    };
    let dir = create_dir_beneath(root, parent, 0o750)?;
    let io = |errno| match errno {
        Errno::ELOOP => CheckedPathError::Symlink(path.to_owned()),
        errno => CheckedPathError::Io {
            path: path.to_owned(),
            errno,
        },
    };
    // O_NONBLOCK: a FIFO planted where the file goes must not hang the launch.
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(mode)).map_err(io)?;
    if !is_kind(&stat(&fd).map_err(io)?, SFlag::S_IFREG) {
        return Err(CheckedPathError::NotRegular(path.to_owned()));
    }
    let mut file = std::fs::File::from(fd);
    file.set_len(0)
        .and_then(|()| file.write_all(contents))
        .map_err(|e| {
            io(Errno::from_raw(
                e.raw_os_error().unwrap_or(Errno::EIO as i32),
            ))
        })
}

/// `/proc/self/fd/<n>`: a path that names exactly the object behind `fd` (a "magic link": the
/// kernel resolves it to the open file, not by name), for a bind mount from this process.
pub fn fd_path(fd: &impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// The file type and identity of an open descriptor.
pub fn stat(fd: &impl AsFd) -> Result<FileStat, Errno> {
    fstat(fd.as_fd())
}

fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

fn walk(root: &Path, path: &Path, create: Option<Mode>) -> Result<OwnedFd, CheckedPathError> {
    let rel = if path.is_absolute() {
        path.strip_prefix(root)
            .map_err(|_| CheckedPathError::NotBeneath {
                path: path.to_owned(),
                root: root.to_owned(),
            })?
    } else {
        path
    };
    let io = |p: &Path| {
        let p = p.to_owned();
        move |errno| match errno {
            Errno::ENOENT => CheckedPathError::Missing(p),
            errno => CheckedPathError::Io { path: p, errno },
        }
    };
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let mut fd = open(root, flags | OFlag::O_DIRECTORY, Mode::empty()).map_err(io(root))?;
    let mut here = root.to_path_buf();
    let components: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Ok(n)),
            Component::CurDir => None,
            _ => Some(Err(())),
        })
        .collect::<Result<_, _>>()
        .map_err(|()| CheckedPathError::NotBeneath {
            path: path.to_owned(),
            root: root.to_owned(),
        })?;
    for (i, name) in components.iter().enumerate() {
        here.push(name);
        let last = i + 1 == components.len();
        if let Some(mode) = create
            && let Err(e) = mkdirat(fd.as_fd(), *name, mode)
            && e != Errno::EEXIST
        {
            return Err(io(&here)(e));
        }
        let next = openat(fd.as_fd(), *name, flags | OFlag::O_NOFOLLOW, Mode::empty())
            .map_err(io(&here))?;
        let st = stat(&next).map_err(io(&here))?;
        if is_kind(&st, SFlag::S_IFLNK) {
            return Err(CheckedPathError::Symlink(here));
        }
        if (!last || create.is_some()) && !is_kind(&st, SFlag::S_IFDIR) {
            return Err(CheckedPathError::NotDirectory(here));
        }
        fd = next;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_below_the_root_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let made = create_dir_beneath(root, &root.join("a/b/c"), 0o700).unwrap();
        assert!(is_kind(&stat(&made).unwrap(), SFlag::S_IFDIR));
        std::os::unix::fs::symlink("/etc", root.join("a/link")).unwrap();
        for path in [root.join("a/link"), root.join("a/link/x")] {
            let err = create_dir_beneath(root, &path, 0o700).unwrap_err();
            assert!(
                matches!(&err, CheckedPathError::Symlink(p) if p == &root.join("a/link")),
                "{err}"
            );
            assert!(open_beneath(root, &path).is_err());
        }
        assert!(!Path::new("/etc/x").exists(), "created through the link");
        write_file_beneath(root, &root.join("a/new/f"), b"one", 0o644).unwrap();
        write_file_beneath(root, &root.join("a/new/f"), b"x", 0o644).unwrap();
        assert_eq!(std::fs::read(root.join("a/new/f")).unwrap(), b"x");
        std::os::unix::fs::symlink("/etc/passwd", root.join("a/new/g")).unwrap();
        let err = write_file_beneath(root, &root.join("a/new/g"), b"x", 0o644).unwrap_err();
        assert!(matches!(err, CheckedPathError::Symlink(_)), "{err}");
        let err = write_file_beneath(root, &root.join("a/link/f"), b"x", 0o644).unwrap_err();
        assert!(matches!(err, CheckedPathError::Symlink(_)), "{err}");
        let err = write_file_beneath(root, &root.join("a/new"), b"x", 0o644).unwrap_err();
        assert!(!matches!(err, CheckedPathError::Symlink(_)), "{err}");
        let outside = open_beneath(root, Path::new("/etc")).unwrap_err();
        assert!(matches!(outside, CheckedPathError::NotBeneath { .. }));
        let dotdot = open_beneath(root, &root.join("a/../../etc")).unwrap_err();
        assert!(matches!(dotdot, CheckedPathError::NotBeneath { .. }));
    }
}
