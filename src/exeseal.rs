//! CVE-2019-5736: a container process that can open /proc/<pid>/exe of a berth process
//! inside its namespaces could overwrite the host's berth binary. berth's children mark
//! themselves non-dumpable first thing, which keeps container processes without
//! CAP_SYS_PTRACE away; commands whose process becomes visible inside an EXISTING pid
//! namespace (exec, and create joining a pid namespace) additionally run from a sealed
//! in-memory copy of the binary, so there is nothing on the host to write through.
//! Commands that never enter a container (state, kill, delete, list…) never pay for it.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;

use anyhow::{anyhow, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// True when we already run from a sealed copy.
pub(crate) fn is_sealed() -> bool {
    File::open("/proc/self/exe")
        .ok()
        .and_then(|f| fcntl(f.as_fd(), FcntlArg::F_GET_SEALS).ok())
        .is_some_and(|s| SealFlag::from_bits_truncate(s).contains(SEALS))
}

/// Re-executes berth from a sealed memfd copy of itself, with the same arguments and
/// environment. Returns only on failure.
pub(crate) fn reexec_sealed() -> Result<std::convert::Infallible> {
    let mut src = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let fd = memfd_create(
        c"berth",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| anyhow!("memfd_create: {}", crate::error::errno_desc(e)))?;
    let mut dst = File::from(fd);
    std::io::copy(&mut src, &mut dst).context("copying berth into a sealed memfd")?;
    fcntl(dst.as_fd(), FcntlArg::F_ADD_SEALS(SEALS))
        .map_err(|e| anyhow!("sealing memfd: {}", crate::error::errno_desc(e)))?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.into_encoded_bytes();
            b.push(b'=');
            b.extend(v.into_encoded_bytes());
            CString::new(b).unwrap_or_default()
        })
        .collect();
    let e = nix::unistd::fexecve(dst.as_fd(), &args, &env).unwrap_err();
    Err(anyhow!(
        "re-executing from a sealed copy: {}",
        crate::error::errno_desc(e)
    ))
}

/// Makes sure this process runs from a sealed binary before it enters a container.
pub(crate) fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    reexec_sealed().map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_binary_is_not_sealed() {
        assert!(!super::is_sealed());
    }
}
