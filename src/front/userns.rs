//! Rootless berth's user namespace: what `podman unshare` is.
//!
//! A rootless command that writes the image store (`pull`, `load`, `import`, `rmi`,
//! `image prune`, `run`/`create IMAGE`) and the monitor of an image container move
//! themselves, in-process, into a fresh user namespace (and a mount namespace of its own)
//! mapping 0 to the user and 1.. to the user's whole /etc/subuid and /etc/subgid ranges
//! (through newuidmap/newgidmap). The maps are computed from those files each time, so
//! every command sees the same ids and files keep their owners from one command to the
//! next: a layer file of uid 1000 is uid SUBUID+999 on disk, and root in the namespace
//! can chown, write `user.overlay.*` xattrs and mount the overlay (`userxattr`).
//!
//! Nothing is left running between commands (no pause process): each command makes its
//! own namespace, which goes away with its last process. A container created inside one
//! gets a user namespace of its own nested in it with the identity map (the spec records
//! the maps in host ids; [`to_this_namespace`] translates them), so the user, from the
//! initial namespace, still owns it: `exec`, `kill` and the like join it as they join a
//! `--rootfs` container's.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

/// One line of a map: ids `inside..inside+size` are `outside..` one namespace up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) inside: u32,
    pub(crate) outside: u32,
    pub(crate) size: u32,
}

/// Not root of the initial user namespace: berth's own user namespace applies.
pub(crate) fn rootless() -> bool {
    !nix::unistd::geteuid().is_root() || crate::state::in_user_namespace()
}

/// The effective uid one namespace up (the user's own uid inside berth's namespace):
/// what paths like `/run/containers/UID` are named after.
pub(crate) fn host_euid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|m| outside_of(&parse_map(&m), euid))
        .unwrap_or(euid)
}

fn outside_of(map: &[Range], id: u32) -> Option<u32> {
    map.iter().find_map(|r| {
        let off = id.checked_sub(r.inside)?;
        (off < r.size).then(|| r.outside + off)
    })
}

/// The lines of /proc/PID/uid_map or gid_map.
fn parse_map(text: &str) -> Vec<Range> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            (f.len() == 3).then(|| Range {
                inside: f[0],
                outside: f[1],
                size: f[2],
            })
        })
        .collect()
}

/// The ranges /etc/subuid or /etc/subgid give the user (by name or by number).
fn sub_ranges(text: &str, name: &str, id: u32) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() != 3 || (f[0] != name && f[0] != id.to_string()) {
                return None;
            }
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        })
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// Container root is `own`; 1.. are the ranges, one after the other.
fn layout(own: u32, ranges: &[(u32, u32)]) -> Vec<Range> {
    let mut out = vec![Range {
        inside: 0,
        outside: own,
        size: 1,
    }];
    let mut next = 1u32;
    for &(start, size) in ranges {
        out.push(Range {
            inside: next,
            outside: start,
            size,
        });
        next = next.saturating_add(size);
    }
    out
}

/// The user's maps in host ids: (uids, gids), each own id first, then its subordinate
/// ranges (none when the files give none).
fn user_maps() -> (Vec<Range>, Vec<Range>, String) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let read = |f: &str| fs::read_to_string(f).unwrap_or_default();
    (
        layout(uid, &sub_ranges(&read("/etc/subuid"), &name, uid)),
        layout(gid, &sub_ranges(&read("/etc/subgid"), &name, gid)),
        name,
    )
}

fn to_json(map: &[Range]) -> Value {
    Value::Array(
        map.iter()
            .map(|r| json!({"containerID": r.inside, "hostID": r.outside, "size": r.size}))
            .collect(),
    )
}

/// The uid/gid maps of a rootless container's spec, in host ids: root is the user, the
/// rest the user's subordinate ranges. Inside berth's namespace that is the namespace's
/// own map (its root is the user too).
pub(crate) fn spec_maps() -> Result<(Value, Value)> {
    if crate::state::in_user_namespace() {
        let read = |f: &str| {
            fs::read_to_string(f).map_err(|e| anyhow!("{f}: {}", crate::error::errno_text(&e)))
        };
        return Ok((
            to_json(&parse_map(&read("/proc/self/uid_map")?)),
            to_json(&parse_map(&read("/proc/self/gid_map")?)),
        ));
    }
    let (u, g, _) = user_maps();
    Ok((to_json(&u), to_json(&g)))
}

/// Drops devpts's `gid=5` from `mounts` when the container's gid map (spec JSON) does not
/// reach gid 5 (a user without subordinate ranges): the kernel refuses an unmapped gid.
pub(crate) fn fit_devpts(mounts: &mut [Value], gid_map: &Value) {
    let reaches = gid_map.as_array().is_some_and(|m| {
        m.iter().any(|r| {
            let (c, n) = (r["containerID"].as_u64(), r["size"].as_u64());
            c.zip(n).is_some_and(|(c, n)| c <= 5 && 5 < c + n)
        })
    });
    if reaches {
        return;
    }
    for m in mounts.iter_mut().filter(|m| m["type"] == "devpts") {
        if let Some(o) = m["options"].as_array_mut() {
            o.retain(|x| x != "gid=5");
        }
    }
}

/// Moves this process into berth's user namespace (see the module doc), unless it is
/// root where it is already (real root, or inside berth's or someone else's namespace).
/// The process must be single-threaded: call it before anything starts threads.
pub(crate) fn enter() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let (uids, gids, name) = user_maps();
    for (maps, file) in [(&uids, "/etc/subuid"), (&gids, "/etc/subgid")] {
        if maps.len() < 2 {
            bail!("no subordinate ids for user {name} in {file}: rootless images need a range there (usermod --add-subuids and --add-subgids)");
        }
    }
    crate::sys::userns::unshare_user_and_mount(|pid| {
        // Both helpers at once: each is an exec of a setuid program.
        let u = spawn_map_writer(pid, "newuidmap", &uids);
        let g = spawn_map_writer(pid, "newgidmap", &gids);
        let (u, g) = (u.and_then(finish_map_writer), g.and_then(finish_map_writer));
        u.and(g)
    })
    .map_err(|e| anyhow!("entering the user namespace: {e}"))?;
    if !nix::unistd::geteuid().is_root() {
        bail!("entering the user namespace: the uid map did not take");
    }
    crate::timeline::mark("userns");
    Ok(())
}

/// [`enter`], then executes berth again with the same arguments and environment, for a
/// command that creates a container in-process (foreground `run`): a process keeps the
/// user namespace it was executed in for its memory, and the runtime's children (not
/// dumpable) have /proc files that only root of that namespace may open. Returns only
/// on failure; a no-op when already root here.
pub(crate) fn enter_and_reexec() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    enter()?;
    reexec()
}

/// Executes berth again with the same arguments and environment (in the user namespace
/// this process has just entered). Returns only on failure.
pub(crate) fn reexec() -> Result<()> {
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "berth".into());
    let mut cmd = std::process::Command::new("/proc/self/exe");
    std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
    let e = std::os::unix::process::CommandExt::exec(cmd.args(args));
    bail!(
        "executing berth in its user namespace: {}",
        crate::error::errno_text(&e)
    )
}

/// Enters berth's user namespace if the container `id` needs it for its monitor (an
/// image container, rootless), so that the monitor started next is executed in it.
pub(crate) fn enter_for_container(store: &crate::front::containers::Store, id: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    match store.load(id) {
        // pasta must open the container's namespaces, whose init is not dumpable until it
        // executes: only root of the namespace the runtime runs in may.
        // On a user network: the namespace that owns the network namespace they share.
        Ok(c) if crate::front::network::on_shared_netns(&c.rec) => {
            crate::front::network::enter_shared_netns(store, &c.rec.host_config.network_mode)
        }
        Ok(c) if !c.rec.image_id.is_empty() || crate::front::network::uses_pasta(&c.rec) => enter(),
        _ => Ok(()),
    }
}

/// Starts newuidmap/newgidmap for `pid` (in the helper, outside the namespace).
fn spawn_map_writer(
    pid: i32,
    tool: &'static str,
    map: &[Range],
) -> std::result::Result<(&'static str, std::process::Child), String> {
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string());
    for r in map {
        cmd.args([r.inside, r.outside, r.size].map(|x| x.to_string()));
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map(|c| (tool, c))
        .map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                " (install the uidmap package)"
            } else {
                ""
            };
            format!("{tool}: {}{hint}", crate::error::errno_text(&e))
        })
}

fn finish_map_writer(
    (tool, child): (&'static str, std::process::Child),
) -> std::result::Result<(), String> {
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {}", crate::error::errno_text(&e)))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// `map` (container -> host ids) expressed in the ids of the namespace whose own map
/// (inside -> host) is `ns`: what a nested namespace's map must say, split where `ns`'s
/// lines end. Err names the first host id `ns` does not reach.
fn translate(map: &[Range], ns: &[Range]) -> std::result::Result<Vec<Range>, u32> {
    let mut out: Vec<Range> = Vec::new();
    for r in map {
        let (mut inside, mut host, mut left) = (r.inside, r.outside, r.size);
        while left > 0 {
            let Some(line) = ns
                .iter()
                .find(|l| host >= l.outside && host - l.outside < l.size)
            else {
                return Err(host);
            };
            let take = left.min(line.size - (host - line.outside));
            let piece = Range {
                inside,
                outside: line.inside + (host - line.outside),
                size: take,
            };
            // Never merged with the previous piece: the kernel wants each line of a
            // nested map inside one line of its parent's.
            out.push(piece);
            inside += take;
            host += take;
            left -= take;
        }
    }
    Ok(out)
}

/// The spec as the runtime must see it from here: inside a user namespace, the
/// container's maps (recorded in host ids) become ids of this namespace, so the
/// container's namespace nests in ours with the same host ids.
pub(crate) fn to_this_namespace(
    mut spec: oci_spec::runtime::Spec,
) -> Result<oci_spec::runtime::Spec> {
    use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
    let Some(linux) = spec.linux() else {
        return Ok(spec);
    };
    if !crate::state::in_user_namespace()
        || (linux.uid_mappings().is_none() && linux.gid_mappings().is_none())
    {
        return Ok(spec);
    }
    let mut linux = linux.clone();
    let conv = |m: &Option<Vec<LinuxIdMapping>>,
                file: &str,
                field: &str|
     -> Result<Option<Vec<LinuxIdMapping>>> {
        let Some(m) = m else { return Ok(None) };
        let ns = parse_map(
            &fs::read_to_string(file)
                .map_err(|e| anyhow!("{file}: {}", crate::error::errno_text(&e)))?,
        );
        let want: Vec<Range> = m
            .iter()
            .map(|x| Range {
                inside: x.container_id(),
                outside: x.host_id(),
                size: x.size(),
            })
            .collect();
        let got = translate(&want, &ns).map_err(|id| {
            anyhow!("{field}: host id {id} is not mapped in berth's user namespace")
        })?;
        got.iter()
            .map(|r| {
                LinuxIdMappingBuilder::default()
                    .container_id(r.inside)
                    .host_id(r.outside)
                    .size(r.size)
                    .build()
                    .map_err(|e| anyhow!("{field}: {e}"))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    };
    let u = conv(
        linux.uid_mappings(),
        "/proc/self/uid_map",
        "linux.uidMappings",
    )?;
    let g = conv(
        linux.gid_mappings(),
        "/proc/self/gid_map",
        "linux.gidMappings",
    )?;
    linux.set_uid_mappings(u);
    linux.set_gid_mappings(g);
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// Removes a tree that may hold files owned by the user's subordinate ids (an image
/// container's upper directory): tried as is, then, refused, from a child that enters
/// berth's user namespace (where root owns them all), as `podman unshare rm -rf` would.
pub(crate) fn remove_dir_all(p: &Path) -> io::Result<()> {
    let plain = fs::remove_dir_all(p);
    match &plain {
        Err(e)
            if e.kind() == io::ErrorKind::PermissionDenied
                && !nix::unistd::geteuid().is_root()
                && single_threaded() =>
        {
            remove_in_userns(p)
        }
        _ => plain,
    }
}

fn single_threaded() -> bool {
    fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

/// Waits, briefly, until this process's joined threads have left the kernel's thread
/// group; whether it is single-threaded.
pub(crate) fn until_single_threaded() -> bool {
    for _ in 0..200 {
        if single_threaded() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    single_threaded()
}

fn remove_in_userns(p: &Path) -> io::Result<()> {
    use nix::sys::wait::WaitStatus;
    // Forking is safe: this process is single-threaded (checked by the caller).
    match crate::sys::clone3(0, None).map_err(io::Error::from)? {
        crate::sys::Forked::Child => {
            let code = match enter() {
                Err(_) => 255,
                Ok(()) => match fs::remove_dir_all(p) {
                    Ok(()) => 0,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                    Err(e) => e
                        .raw_os_error()
                        .filter(|&n| n > 0 && n < 255)
                        .unwrap_or(254),
                },
            };
            crate::sys::exit_now(code)
        }
        crate::sys::Forked::Parent { pid, .. } => {
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)? {
                WaitStatus::Exited(_, 0) => Ok(()),
                WaitStatus::Exited(_, 255) => Err(io::Error::other(
                    "permission denied, and berth's user namespace could not be entered to remove it",
                )),
                WaitStatus::Exited(_, n) if n < 254 => Err(io::Error::from_raw_os_error(n)),
                _ => Err(io::Error::other("removing it in berth's user namespace failed")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(inside: u32, outside: u32, size: u32) -> Range {
        Range {
            inside,
            outside,
            size,
        }
    }

    #[test]
    fn subordinate_ranges_by_name_or_number() {
        let text =
            "alice:100000:65536\n1001:300000:10\nbob:200000:65536\nalice:500000:0\nbad line\n";
        assert_eq!(sub_ranges(text, "alice", 1000), [(100000, 65536)]);
        assert_eq!(sub_ranges(text, "carol", 1001), [(300000, 10)]);
        assert!(sub_ranges(text, "dave", 1002).is_empty());
    }

    #[test]
    fn the_user_is_root_and_the_ranges_follow() {
        assert_eq!(
            layout(1000, &[(100000, 65536), (300000, 10)]),
            [r(0, 1000, 1), r(1, 100000, 65536), r(65537, 300000, 10)]
        );
        assert_eq!(layout(1000, &[]), [r(0, 1000, 1)]);
    }

    #[test]
    fn devpts_keeps_gid_5_only_where_it_is_mapped() {
        let mounts = || {
            vec![
                json!({"destination": "/dev/pts", "type": "devpts", "options": ["nosuid", "gid=5"]}),
                json!({"destination": "/x", "type": "bind", "options": ["gid=5"]}),
            ]
        };
        let mut m = mounts();
        fit_devpts(&mut m, &to_json(&layout(1000, &[(100000, 65536)])));
        assert_eq!(m, mounts());
        fit_devpts(&mut m, &to_json(&layout(1000, &[])));
        assert_eq!(m[0]["options"], json!(["nosuid"]));
        assert_eq!(m[1], mounts()[1]);
    }

    #[test]
    fn proc_maps_parse() {
        let m = parse_map("         0       1000          1\n         1     100000      65536\n");
        assert_eq!(m, [r(0, 1000, 1), r(1, 100000, 65536)]);
        assert_eq!(outside_of(&m, 0), Some(1000));
        assert_eq!(outside_of(&m, 65536), Some(165535));
        assert_eq!(outside_of(&m, 65537), None);
    }

    #[test]
    fn host_maps_become_the_identity_inside_the_namespace_they_made() {
        let ns = [r(0, 1000, 1), r(1, 100000, 65536)];
        // What the spec records (host ids) nests as the identity, line for line.
        assert_eq!(translate(&ns, &ns), Ok(vec![r(0, 0, 1), r(1, 1, 65536)]));
        // A part of it.
        assert_eq!(
            translate(&[r(0, 1000, 1), r(1, 100010, 5)], &ns),
            Ok(vec![r(0, 0, 1), r(1, 11, 5)])
        );
        // Host ids contiguous across two lines of the namespace's map are split at the
        // seam (the kernel takes no line of a nested map across its parent's lines).
        let ns2 = [r(0, 1000, 1), r(1, 100000, 10), r(20, 100010, 10)];
        assert_eq!(
            translate(&[r(0, 100005, 10)], &ns2),
            Ok(vec![r(0, 6, 5), r(5, 20, 5)])
        );
        // A host id the namespace does not map is named.
        assert_eq!(translate(&[r(0, 0, 1)], &ns), Err(0));
        assert_eq!(translate(&[r(0, 100000, 65537)], &ns), Err(165536));
    }
}
