//! File-system guards of the daemon and the CLI: the state directory and
//! the control socket's directory must be private, files are created under
//! a restrictive umask, and the peer on the control socket must be who it
//! should be.
//!
//! Invariants:
//! - `qu serve` never runs on a state directory open to group or others
//!   (it holds the private key; `raft/` holds alert secrets).
//! - Everything the daemon creates (sled's files in `raft/`, sockets,
//!   temporary files) is created under umask 077; an existing `raft/` is
//!   tightened to 0700 with files 0600 at startup.
//! - The control socket's directory is checked without following links
//!   (`lstat`): a real directory, owned by the daemon's user, mode 0700.
//! - The daemon serves only CLI peers running as its own user or root; the
//!   CLI talks only to a daemon running as itself, as root, or as the owner
//!   of the socket's private directory (a packaged daemon's own user).

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file-system guard refused.
#[derive(Debug, thiserror::Error)]
pub enum InsecureError {
    #[error("the state directory {} is mode {mode:04o}, open to other users; it holds this node's private key and alert secrets. Fix: chmod 700 {}", .dir.display(), .dir.display())]
    OpenStateDir { dir: PathBuf, mode: u32 },
    #[error("the control socket's directory {} is a symbolic link; refusing to use it (remove it, or point --socket / QUPTIME_SOCKET elsewhere)", .dir.display())]
    SocketDirIsLink { dir: PathBuf },
    #[error("the control socket's directory {} is not a directory", .dir.display())]
    SocketDirNotDir { dir: PathBuf },
    #[error("the control socket's directory {} belongs to uid {owner}, not to this daemon's uid {me}; refusing to use it (remove it, or point --socket / QUPTIME_SOCKET elsewhere)", .dir.display())]
    SocketDirOwner { dir: PathBuf, owner: u32, me: u32 },
    #[error("the control socket's directory {} is mode {mode:04o}, open to other users. Fix: chmod 700 {}", .dir.display(), .dir.display())]
    SocketDirOpen { dir: PathBuf, mode: u32 },
    #[error("cannot inspect {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InsecureError + '_ {
    move |source| InsecureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Sets the process umask to 077: nothing the daemon creates is readable
/// by others, whatever the caller's umask was.
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Refuses a state directory open to group or others.
pub fn check_state_dir(dir: &Path) -> Result<(), InsecureError> {
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(InsecureError::OpenStateDir {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Makes `raft/` 0700 and the files in it (and one level of directories
/// below) 0600 / 0700, for stores created before the umask was set.
pub fn tighten_raft_dir(dir: &Path) -> Result<(), InsecureError> {
    fn walk(dir: &Path, depth: u8) -> io::Result<()> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            if meta.is_dir() && depth > 0 {
                walk(&entry.path(), depth - 1)?;
            } else if meta.is_file() && meta.mode() & 0o077 != 0 {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
            }
        }
        Ok(())
    }
    if !dir.exists() {
        return Ok(());
    }
    walk(dir, 2).map_err(io_err(dir))
}

/// Checks (with `lstat`) that the control socket's directory is a real
/// directory owned by this user and closed to others.
pub fn check_socket_dir(dir: &Path) -> Result<(), InsecureError> {
    let meta = std::fs::symlink_metadata(dir).map_err(io_err(dir))?;
    let dir_buf = || dir.to_path_buf();
    if meta.file_type().is_symlink() {
        return Err(InsecureError::SocketDirIsLink { dir: dir_buf() });
    }
    if !meta.is_dir() {
        return Err(InsecureError::SocketDirNotDir { dir: dir_buf() });
    }
    let me = euid();
    if meta.uid() != me {
        return Err(InsecureError::SocketDirOwner {
            dir: dir_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(InsecureError::SocketDirOpen {
            dir: dir_buf(),
            mode,
        });
    }
    Ok(())
}

/// Whether the daemon serves a CLI peer running as `peer_uid`.
pub fn daemon_accepts(peer_uid: u32, daemon_uid: u32) -> bool {
    peer_uid == daemon_uid || peer_uid == 0
}

/// Whether the CLI (as `me`) may talk to a daemon running as `daemon_uid`
/// behind `socket`: itself, root, or the owner of the socket's directory
/// when that directory is a real, private one.
pub fn cli_accepts(daemon_uid: u32, me: u32, socket: &Path) -> bool {
    if daemon_uid == me || daemon_uid == 0 {
        return true;
    }
    let Some(dir) = socket.parent() else {
        return false;
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) => {
            m.is_dir()
                && !m.file_type().is_symlink()
                && m.uid() == daemon_uid
                && m.mode() & 0o077 == 0
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn an_open_state_directory_is_refused_with_the_fix() {
        let d = tempfile::tempdir().unwrap();
        chmod(d.path(), 0o700);
        check_state_dir(d.path()).unwrap();
        chmod(d.path(), 0o755);
        let e = check_state_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("0755") && e.contains("chmod 700"), "{e}");
    }

    #[test]
    fn the_socket_directory_must_be_a_private_real_directory() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("run");
        std::fs::create_dir(&real).unwrap();
        chmod(&real, 0o700);
        check_socket_dir(&real).unwrap();
        chmod(&real, 0o750);
        assert!(matches!(
            check_socket_dir(&real),
            Err(InsecureError::SocketDirOpen { .. })
        ));
        chmod(&real, 0o700);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            check_socket_dir(&link),
            Err(InsecureError::SocketDirIsLink { .. })
        ));
    }

    #[test]
    fn peers_on_the_control_socket() {
        assert!(daemon_accepts(1000, 1000));
        assert!(daemon_accepts(0, 1000));
        assert!(!daemon_accepts(1001, 1000));
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("s.sock");
        let me = euid();
        assert!(cli_accepts(me, me, &sock));
        assert!(cli_accepts(0, me, &sock));
        // Another user behind a socket in our directory: refused.
        assert!(!cli_accepts(me.wrapping_add(4242), me, &sock));
    }

    #[test]
    fn an_old_raft_directory_is_tightened() {
        let d = tempfile::tempdir().unwrap();
        let raft = d.path().join("raft");
        std::fs::create_dir_all(raft.join("blobs")).unwrap();
        std::fs::write(raft.join("db"), b"x").unwrap();
        chmod(&raft, 0o755);
        chmod(&raft.join("db"), 0o644);
        tighten_raft_dir(&raft).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&raft), 0o700);
        assert_eq!(mode(&raft.join("db")), 0o600);
        assert_eq!(mode(&raft.join("blobs")), 0o700);
    }
}
