//! Finding the program to exec, with runc's phrases: podman maps "executable file not found
//! in $PATH" and "no such file or directory" to 127 and "permission denied" to 126.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn check(p: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(p)
        .map_err(|e| format!("stat {}: {}", p.display(), crate::error::errno_text(&e)))?;
    // execve answers EACCES for a directory; runc says so too.
    if meta.is_dir() {
        return Err("permission denied".into());
    }
    access(p, AccessFlags::X_OK).map_err(|_| "permission denied".to_string())
}

/// Resolves args[0] in the container (after pivot_root and the uid switch, so that the
/// checks are the ones execve will make).
pub(crate) fn lookup(arg0: &str, env: &[String]) -> Result<CString, String> {
    let path = if arg0.contains('/') {
        check(Path::new(arg0)).map_err(|e| format!("exec: {arg0:?}: {e}"))?;
        PathBuf::from(arg0)
    } else {
        let search = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let mut denied = None;
        let found = search
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .find(|p| match check(p) {
                Ok(()) => true,
                Err(e) => {
                    if e == "permission denied" && denied.is_none() {
                        denied = Some(p.clone());
                    }
                    false
                }
            });
        match (found, denied) {
            (Some(p), _) => p,
            (None, Some(p)) => {
                return Err(format!(
                    "exec: {:?}: permission denied",
                    p.display().to_string()
                ))
            }
            (None, None) => {
                return Err(format!(
                    "exec: {arg0:?}: executable file not found in $PATH"
                ))
            }
        }
    };
    CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("exec: {arg0:?}: invalid path"))
}
