//! Entry points for the fuzz targets in fuzz/ (`make fuzz`): each takes arbitrary bytes,
//! must never panic, and asserts the invariant its parser promises. Not an API: the
//! library is unpublished and these exist only for cargo fuzz.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

/// config.json bytes: parse and validate must return a spec or an error naming a field,
/// and the JSON-path finder must cope with any text and offset.
pub fn config(data: &[u8]) {
    let _ = crate::spec::parse(data, Path::new("config.json"));
    if let Ok(text) = std::str::from_utf8(data) {
        let off = data.first().map_or(0, |b| usize::from(*b) * 7);
        let _ = crate::spec::jsonpath::path_at(text, off);
    }
}

/// `linux.seccomp` JSON: whatever compiles is a program the kernel's checker would take
/// (bounded, in-range jumps, ends in ret) and runs to a return for any syscall.
pub fn seccomp(data: &[u8]) {
    let Ok(s) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    let Ok(f) = crate::seccomp::compile(&s) else {
        return;
    };
    use crate::seccomp::interp;
    interp::check(&f.program);
    for arch in [0xc000_003e_u32, 0x4000_0003, 0x1234] {
        for nr in [0u32, 1, 59, 231, 435, 1000, 0x4000_0000, u32::MAX] {
            let args = [0, 1, u64::MAX, 0x8000_0000, 42, 7];
            interp::run(&f.program, &interp::Data { nr, arch, args });
        }
    }
}

/// Packets as the init could send them over the sync socket (first byte: packet length):
/// the decoder returns a message or an error, never panics or reads past a packet.
pub fn channel(data: &[u8]) {
    use crate::process::channel::Channel;
    let Ok((a, b)) = Channel::pair() else {
        return;
    };
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (packet, tail) = tail.split_at(n);
        if nix::sys::socket::send(a.raw(), packet, nix::sys::socket::MsgFlags::MSG_DONTWAIT)
            .is_err()
        {
            break;
        }
        rest = tail;
    }
    drop(a);
    // Each successful recv consumes at least one packet; the closed end ends the loop.
    while b.recv().is_ok() {}
}

/// A path from a bundle, resolved in a fixed rootfs full of escaping symlinks: whatever
/// it opens must lie inside that rootfs.
pub fn resolve(data: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    if data.contains(&0) {
        return;
    }
    let root = fuzz_root();
    let path = Path::new(std::ffi::OsStr::from_bytes(data));
    let clean = crate::rootfs::resolve::clean(path);
    assert!(
        clean.is_relative()
            && !clean
                .components()
                .any(|c| c == std::path::Component::ParentDir),
        "clean({path:?}) = {clean:?}"
    );
    let Ok(dir) = nix::fcntl::open(
        root,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    ) else {
        return;
    };
    if let Ok(fd) =
        crate::rootfs::resolve::open_in_root(dir.as_fd(), path, nix::fcntl::OFlag::O_PATH)
    {
        let at = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert!(
            at.starts_with(root),
            "{path:?} resolved to {at:?}, outside {root:?}"
        );
    }
}

/// A rootfs with symlinks that try every way out, made once per fuzzing process.
fn fuzz_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("berth-fuzz-root-{}", std::process::id()));
        let r = base.join("rootfs");
        let _ = std::fs::create_dir_all(r.join("a/b/c"));
        let _ = std::fs::create_dir_all(r.join("etc"));
        for (link, target) in [
            ("abs", "/"),
            ("up", "../../../.."),
            ("a/b/up", "../../../../../etc"),
            ("etc/passwd", "/etc/passwd"),
            ("loop", "loop"),
            ("a/b/c/proc", "/proc/self/root"),
            ("dotdot", ".."),
        ] {
            let _ = std::os::unix::fs::symlink(target, r.join(link));
        }
        r
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The committed seeds go through every entry point (what `make fuzz` starts from),
    /// so CI runs the targets' invariants even without a fuzzing session.
    #[test]
    fn seeds_pass_their_targets() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        let mut n = 0;
        for (target, f) in [
            ("config", super::config as fn(&[u8])),
            ("seccomp", super::seccomp),
            ("channel", super::channel),
            ("resolve", super::resolve),
        ] {
            for e in std::fs::read_dir(seeds.join(target)).unwrap() {
                f(&std::fs::read(e.unwrap().path()).unwrap());
                n += 1;
            }
        }
        assert!(n >= 6);
        let _ = std::fs::remove_dir_all(super::fuzz_root().parent().unwrap());
    }

    #[test]
    fn a_seed_config_parses_and_the_seccomp_seed_compiles() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        let spec = std::fs::read(seeds.join("config/spec.json")).unwrap();
        crate::spec::parse(&spec, Path::new("config.json")).unwrap();
        let p = std::fs::read(seeds.join("seccomp/default.json")).unwrap();
        let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_slice(&p).unwrap();
        assert!(crate::seccomp::compile(&s).unwrap().program.len() > 100);
    }
}
