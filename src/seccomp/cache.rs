//! Compiled filters kept in a directory (the people face's runroot), so that a container
//! start or an exec with a profile seen before loads its program instead of compiling
//! it again (Docker's default profile: several hundred rules).
//!
//! A file is named by, and holds, the SHA-256 of what the program was compiled from: the
//! profile (as its canonical JSON) and the identity of the running berth binary (device,
//! inode, size, times: another build may compile differently). A changed profile, or
//! another binary, is another key: never a stale program. A file is used only when it is
//! a regular file of this user, readable and writable by this user alone, and whole (its
//! trailing checksum matches); anything else is ignored and compiled anew, then replaced.
//! Files are written to a temporary name and renamed (no fsync: a file torn by a crash
//! fails its checksum).

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use super::{Filter, SeccompError};

static DIR: OnceLock<PathBuf> = OnceLock::new();

const MAGIC: &[u8; 8] = b"berthsc1";
/// Far over any program the kernel takes (4096 instructions of 8 bytes).
const MAX_FILE: u64 = 1 << 20;
/// Past this many files (profiles, or binaries since upgraded), a new one clears the rest.
const KEEP: usize = 64;

/// Where compiled filters are kept from now on in this process. The first call wins.
pub(crate) fn set_dir(dir: PathBuf) {
    let _ = DIR.set(dir);
}

/// `compile`, through the cache when this process has one.
pub(crate) fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    match DIR.get() {
        Some(dir) => compile_in(dir, s),
        None => super::compile(s),
    }
}

/// `compile` through the cache in `dir`.
pub(crate) fn compile_in(dir: &Path, s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let Some(key) = key(s) else {
        return super::compile(s);
    };
    let path = dir.join(hex(&key));
    if let Some(f) = read(&path, &key) {
        return Ok(f);
    }
    let f = super::compile(s)?;
    write(dir, &path, &key, &f);
    Ok(f)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The profile and the binary that compiles it; None when either cannot be named.
fn key(s: &LinuxSeccomp) -> Option<[u8; 32]> {
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let profile = crate::sys::json::to_vec(s).ok()?;
    let mut h = Sha256::new();
    h.update(MAGIC);
    for n in [
        exe.dev(),
        exe.ino(),
        exe.size(),
        exe.mtime() as u64,
        exe.mtime_nsec() as u64,
        exe.ctime() as u64,
        exe.ctime_nsec() as u64,
    ] {
        h.update(n.to_le_bytes());
    }
    h.update(std::env::consts::ARCH.as_bytes());
    h.update((profile.len() as u64).to_le_bytes());
    h.update(&profile);
    Some(h.finalize().into())
}

fn read(path: &Path, key: &[u8; 32]) -> Option<Filter> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file()
        || m.uid() != nix::unistd::geteuid().as_raw()
        || m.mode() & 0o077 != 0
        || m.len() > MAX_FILE
    {
        return None;
    }
    let mut data = Vec::with_capacity(m.len() as usize);
    f.take(MAX_FILE).read_to_end(&mut data).ok()?;
    decode(&data, key)
}

/// magic, key, flags (u32), has_notify (u8), skipped and skipped_arches (u32 count, then
/// u32 length + UTF-8 each), the program (u32 count, then code u16, jt u8, jf u8, k u32
/// each), then the SHA-256 of all that. Little-endian.
fn encode(key: &[u8; 32], f: &Filter) -> Vec<u8> {
    let mut d = Vec::with_capacity(64 + f.program.len() * 8);
    d.extend_from_slice(MAGIC);
    d.extend_from_slice(key);
    d.extend_from_slice(&f.flags.to_le_bytes());
    d.push(u8::from(f.has_notify));
    for list in [&f.skipped, &f.skipped_arches] {
        d.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for s in list {
            d.extend_from_slice(&(s.len() as u32).to_le_bytes());
            d.extend_from_slice(s.as_bytes());
        }
    }
    d.extend_from_slice(&(f.program.len() as u32).to_le_bytes());
    for i in &f.program {
        d.extend_from_slice(&i.code.to_le_bytes());
        d.push(i.jt);
        d.push(i.jf);
        d.extend_from_slice(&i.k.to_le_bytes());
    }
    let sum = Sha256::digest(&d);
    d.extend_from_slice(&sum);
    d
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.u32()? as usize;
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let len = self.u32()? as usize;
            v.push(String::from_utf8(self.take(len)?.to_vec()).ok()?);
        }
        Some(v)
    }
}

fn decode(data: &[u8], key: &[u8; 32]) -> Option<Filter> {
    let body_len = data.len().checked_sub(32)?;
    let (body, sum) = data.split_at(body_len);
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC || r.take(32)? != key {
        return None;
    }
    let flags = r.u32()?;
    let has_notify = match r.take(1)?[0] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let skipped = r.strings()?;
    let skipped_arches = r.strings()?;
    let n = r.u32()? as usize;
    if n == 0 || n > super::compile::MAX_INSNS {
        return None;
    }
    let mut program = Vec::with_capacity(n);
    for _ in 0..n {
        let b = r.take(8)?;
        program.push(libc::sock_filter {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        });
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Filter {
        program,
        flags,
        has_notify,
        skipped,
        skipped_arches,
    })
}

/// Best effort: a cache that cannot be written only costs the next start a compile.
fn write(dir: &Path, path: &Path, key: &[u8; 32], f: &Filter) {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => prune(dir),
        Err(_) => return,
    }
    let tmp = dir.join(format!(".{}.{}.tmp", hex(&key[..8]), std::process::id()));
    let r = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(&encode(key, f))?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    if names.len() < KEEP {
        return;
    }
    for p in names {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    const DENY_MKDIR: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    const DENY_RMDIR: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"names":["rmdir"],"action":"SCMP_ACT_ERRNO"}]}"#;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-sccache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect()
    }

    fn same(a: &Filter, b: &Filter) -> bool {
        a.flags == b.flags
            && a.has_notify == b.has_notify
            && a.skipped == b.skipped
            && a.skipped_arches == b.skipped_arches
            && a.program.len() == b.program.len()
            && a.program
                .iter()
                .zip(&b.program)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
    }

    #[test]
    fn a_cached_program_is_the_compiled_one_and_written_owner_only() {
        let dir = tempdir("hit");
        let p = profile(DENY_MKDIR);
        let first = compile_in(&dir, &p).unwrap();
        let written = files(&dir);
        assert_eq!(written.len(), 1, "{written:?}");
        let m = std::fs::metadata(&written[0]).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().mode() & 0o777,
            0o700,
            "the directory is private"
        );
        let again = compile_in(&dir, &p).unwrap();
        assert!(same(&first, &again));
        assert!(same(&first, &super::super::compile(&p).unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_profile_never_gets_the_old_program() {
        let dir = tempdir("changed");
        let a = compile_in(&dir, &profile(DENY_MKDIR)).unwrap();
        let b = compile_in(&dir, &profile(DENY_RMDIR)).unwrap();
        assert!(!same(&a, &b));
        assert!(same(
            &b,
            &super::super::compile(&profile(DENY_RMDIR)).unwrap()
        ));
        assert_eq!(files(&dir).len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What the cache holds is used only when whole, the user's own and private: a flipped
    /// byte, a truncated file, a group-writable file or a symlink are compiled anew (and a
    /// broken file replaced).
    #[test]
    fn a_corrupt_or_foreign_file_is_ignored() {
        let dir = tempdir("corrupt");
        let p = profile(DENY_MKDIR);
        let good = compile_in(&dir, &p).unwrap();
        let path = files(&dir).remove(0);
        let bytes = std::fs::read(&path).unwrap();
        let key: [u8; 32] = bytes[8..40].try_into().unwrap();
        assert!(decode(&bytes, &key).is_some());

        // A program whose allow became a kill (same length): the checksum catches it.
        let mut flipped = bytes.clone();
        let at = bytes.len() - 32 - 4;
        flipped[at] ^= 0xff;
        assert!(decode(&flipped, &key).is_none());
        std::fs::write(&path, &flipped).unwrap();
        assert!(read(&path, &key).is_none());
        let again = compile_in(&dir, &p).unwrap();
        assert!(same(&good, &again));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the broken file is replaced"
        );

        assert!(decode(&bytes[..bytes.len() - 1], &key).is_none());
        assert!(decode(&[], &key).is_none());
        let mut other_key = key;
        other_key[0] ^= 1;
        assert!(decode(&bytes, &other_key).is_none());

        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o620))
            .unwrap();
        assert!(read(&path, &key).is_none(), "group-writable: not trusted");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        assert!(read(&path, &key).is_some());

        let target = dir.join("elsewhere");
        std::fs::rename(&path, &target).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(read(&path, &key).is_none(), "a symlink: not followed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_of_another_user_is_ignored() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempdir("owner");
        let p = profile(DENY_MKDIR);
        compile_in(&dir, &p).unwrap();
        let path = files(&dir).remove(0);
        let key: [u8; 32] = std::fs::read(&path).unwrap()[8..40].try_into().unwrap();
        nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert!(read(&path, &key).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
