//! The systemd cgroup driver: the container's cgroup is a transient scope that systemd
//! makes (`StartTransientUnit` with `Delegate=yes`), then berth writes the limits into it
//! as it does for its own directories (runc's way: systemd's properties for what maps,
//! the cgroup files for everything).
//!
//! systemd moves an existing pid into a new scope, but berth makes and limits a container's
//! cgroups before its init exists: a placeholder child (which only waits to be killed) is
//! the scope's first member, the init is cloned straight into the scope, and the
//! placeholder is killed once the init is in.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dbus::{Call, Conn, DbusError, Value};
use super::manager::{CgroupError, Hierarchy, Layout};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// Per call; starting or stopping a scope is quick, a busy manager is not.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// What the state keeps to stop the scope at delete.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// `PREFIX-NAME.scope`.
    pub(crate) unit: String,
    /// The slice it lives in (`system.slice`).
    pub(crate) slice: String,
    /// In the user's manager (rootless), not the system's.
    #[serde(default)]
    pub(crate) user: bool,
}

fn bad(raw: &str, msg: &str) -> CgroupError {
    CgroupError::BadPath {
        path: raw.to_string(),
        msg: msg.to_string(),
    }
}

/// runc's `slice:prefix:name` cgroupsPath (none: the default slice, `runc`, the id). An
/// empty slice is `system.slice` (`user.slice` for a user manager); an empty prefix leaves
/// `NAME.scope`.
pub(crate) fn parse(raw: Option<&str>, id: &str, user: bool) -> Result<Scope, CgroupError> {
    let default_slice = if user { "user.slice" } else { "system.slice" };
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Scope {
            unit: format!("runc-{id}.scope"),
            slice: default_slice.into(),
            user,
        });
    };
    let parts: Vec<&str> = raw.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad(
            raw,
            "the systemd cgroup driver wants \"slice:prefix:name\"",
        ));
    };
    let slice = if slice.is_empty() {
        default_slice.to_string()
    } else {
        slice_path(slice).map_err(|m| bad(raw, &m))?;
        slice.to_string()
    };
    let name = if name.is_empty() { id } else { name };
    if name.ends_with(".slice") {
        return Err(bad(raw, "a slice as the container's unit is not supported"));
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if !unit_name_ok(&unit) {
        return Err(bad(raw, &format!("{unit:?} is not a valid unit name")));
    }
    Ok(Scope { unit, slice, user })
}

/// systemd's unit name rules: at most 255 bytes of `[A-Za-z0-9:_.\-\\@]`.
fn unit_name_ok(u: &str) -> bool {
    u.len() <= 255
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.-\\@".contains(&b))
}

/// Where a slice lives below systemd's root: `a-b.slice` is `a.slice/a-b.slice`
/// (runc's ExpandSlice).
pub(crate) fn slice_path(slice: &str) -> Result<PathBuf, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("{slice:?} is not a slice name (NAME.slice)"));
    };
    if slice == "-.slice" {
        return Ok(PathBuf::new());
    }
    if !unit_name_ok(slice)
        || stem.is_empty()
        || stem.contains("--")
        || stem.starts_with('-')
        || stem.ends_with('-')
    {
        return Err(format!("{slice:?} is not a valid slice name"));
    }
    let mut out = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push(format!("{prefix}.slice"));
    }
    Ok(out)
}

/// systemd's properties for the limits that map onto them (v2 names on a unified host, v1
/// ones otherwise), plus what makes the unit: systemd writes these too, and keeps them on
/// a reload that would otherwise reset the files berth writes.
pub(crate) fn properties(
    s: &Scope,
    pid: i32,
    r: &oci_spec::runtime::LinuxResources,
    v2: bool,
) -> Vec<Value> {
    let p = |k: &str, v: Value| Value::Struct(vec![Value::s(k), Value::v(v)]);
    let mut out = vec![
        p(
            "Description",
            Value::s(&format!("berth container {}", s.unit)),
        ),
        p("Slice", Value::s(&s.slice)),
        p("Delegate", Value::Bool(true)),
        p(
            "PIDs",
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ),
        p("DefaultDependencies", Value::Bool(false)),
        p("MemoryAccounting", Value::Bool(true)),
        p("CPUAccounting", Value::Bool(true)),
        p("TasksAccounting", Value::Bool(true)),
    ];
    out.extend(limit_properties(r, v2));
    out
}

/// The limits of `r` that systemd has properties for.
fn limit_properties(r: &oci_spec::runtime::LinuxResources, v2: bool) -> Vec<Value> {
    let p = |k: &str, v: Value| Value::Struct(vec![Value::s(k), Value::v(v)]);
    let mut out = Vec::new();
    if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()) {
        let key = if v2 { "MemoryMax" } else { "MemoryLimit" };
        match limit {
            l if l > 0 => out.push(p(key, Value::U64(l as u64))),
            -1 => out.push(p(key, Value::U64(u64::MAX))),
            _ => {}
        }
    }
    if let Some(limit) = r.pids().as_ref().map(|p| p.limit()) {
        match limit {
            l if l > 0 => out.push(p("TasksMax", Value::U64(l as u64))),
            -1 => out.push(p("TasksMax", Value::U64(u64::MAX))),
            _ => {}
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            if v2 {
                // runc's conversion of shares [2, 262144] to weight [1, 10000].
                let s = shares.clamp(2, 262_144);
                out.push(p("CPUWeight", Value::U64(1 + ((s - 2) * 9999) / 262_142)));
            } else {
                out.push(p("CPUShares", Value::U64(shares)));
            }
        }
        if let (Some(q), Some(per)) = (cpu.quota().filter(|q| *q > 0), cpu.period()) {
            if per > 0 {
                // systemd takes a per-second quota in 10 ms steps: round up, as runc;
                // berth writes the exact quota into cpu.max / cpu.cfs_quota_us after.
                let per_sec = (q as u64 * 1_000_000).div_ceil(per).div_ceil(10_000) * 10_000;
                out.push(p("CPUQuotaPerSecUSec", Value::U64(per_sec)));
            }
        }
    }
    out
}

/// `update`: the new limits become the scope's properties too (runc's way), so that a
/// reload of systemd does not put the old ones back.
pub(crate) fn set_limits(
    s: &Scope,
    r: &oci_spec::runtime::LinuxResources,
    v2: bool,
) -> Result<(), CgroupError> {
    let props = limit_properties(r, v2);
    if props.is_empty() {
        return Ok(());
    }
    let mut c = connect(s.user)?;
    manager(
        &mut c,
        "SetUnitProperties",
        vec![
            Value::s(&s.unit),
            Value::Bool(true),
            Value::Array("(sv)".into(), props),
        ],
    )
    .map(|_| ())
    .map_err(|e| reply("updating", &s.unit, e))
}

/// The sockets to try, in order, with whether each is a bus daemon (which wants Hello) or
/// systemd itself. As root: systemd's private socket first, as systemctl does (it works
/// without a dbus-daemon), then the system bus. Rootless: the user's session bus, then
/// the user manager's private socket.
fn addresses(user: bool) -> Vec<(PathBuf, bool)> {
    let from_env = |var: &str| -> Option<PathBuf> {
        std::env::var(var).ok().and_then(|a| {
            a.split(';')
                .find_map(|a| a.strip_prefix("unix:"))
                .and_then(|kv| kv.split(',').find_map(|kv| kv.strip_prefix("path=")))
                .map(PathBuf::from)
        })
    };
    let mut out = Vec::new();
    if user {
        if let Some(p) = from_env("DBUS_SESSION_BUS_ADDRESS") {
            out.push((p, true));
        }
        if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
            let dir = PathBuf::from(dir);
            out.push((dir.join("bus"), true));
            out.push((dir.join("systemd/private"), false));
        }
    } else {
        out.push((PathBuf::from("/run/systemd/private"), false));
        out.push((
            from_env("DBUS_SYSTEM_BUS_ADDRESS")
                .unwrap_or_else(|| PathBuf::from("/run/dbus/system_bus_socket")),
            true,
        ));
    }
    out.dedup();
    out
}

fn unavailable(user: bool, why: String) -> CgroupError {
    let whose = if user { "the user's" } else { "the system's" };
    CgroupError::DriverUnavailable(format!("cannot reach {whose} systemd: {why}"))
}

/// Whether a systemd manager is there to talk to (checked before anything is made): as
/// root, systemd is the init (`/run/systemd/system`, sd_booted's test); rootless, a bus
/// socket of the user's exists.
pub(crate) fn check(user: bool) -> Result<(), CgroupError> {
    if !user && !Path::new("/run/systemd/system").is_dir() {
        return Err(CgroupError::DriverUnavailable(
            "systemd is not running (no /run/systemd/system)".into(),
        ));
    }
    let addrs = addresses(user);
    if !addrs.iter().any(|(p, _)| p.exists()) {
        let tried: Vec<String> = addrs.iter().map(|(p, _)| p.display().to_string()).collect();
        return Err(unavailable(
            user,
            if tried.is_empty() {
                "XDG_RUNTIME_DIR is not set".into()
            } else {
                format!("no socket at {}", tried.join(" or "))
            },
        ));
    }
    Ok(())
}

fn reply(what: &str, unit: &str, e: DbusError) -> CgroupError {
    CgroupError::Scope(format!("systemd: {what} {unit}: {e}"))
}

/// A connection to the manager, subscribed to its job signals.
fn connect(user: bool) -> Result<Conn, CgroupError> {
    let mut errors = Vec::new();
    for (path, bus) in addresses(user) {
        match subscribed(&path, bus) {
            Ok(c) => return Ok(c),
            // A bus without systemd on it (not yet, or not at all): the next address.
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    if errors.is_empty() {
        errors.push("no bus address (XDG_RUNTIME_DIR is not set)".into());
    }
    Err(unavailable(user, errors.join("; ")))
}

fn subscribed(path: &Path, bus: bool) -> Result<Conn, DbusError> {
    let mut c = Conn::open(path, bus, CALL_TIMEOUT)?;
    if bus {
        c.call(&Call {
            destination: Some("org.freedesktop.DBus"),
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
            args: vec![Value::s(
                "type='signal',sender='org.freedesktop.systemd1',\
                 interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
            )],
        })?;
    }
    // The manager sends job signals to subscribed clients only.
    manager(&mut c, "Subscribe", vec![])?;
    Ok(c)
}

fn manager(c: &mut Conn, member: &str, args: Vec<Value>) -> Result<Vec<Value>, DbusError> {
    c.call(&Call {
        destination: Some(DEST),
        path: PATH,
        interface: MANAGER,
        member,
        args,
    })
}

/// Calls a method that queues a job and waits for the job's end; Ok(result) ("done",
/// "failed", "canceled", ...).
fn run_job(c: &mut Conn, member: &str, args: Vec<Value>) -> Result<String, DbusError> {
    let body = manager(c, member, args)?;
    let job = body
        .first()
        .and_then(Value::as_str)
        .ok_or(DbusError::Malformed("job path"))?
        .to_string();
    let m = c.wait_signal(JOB_TIMEOUT, |m| {
        m.member.as_deref() == Some("JobRemoved")
            && m.body.get(1).and_then(Value::as_str) == Some(job.as_str())
    })?;
    Ok(m.body
        .get(3)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

fn is(e: &DbusError, name: &str) -> bool {
    matches!(e, DbusError::Reply { name: n, .. } if n == name)
}

/// Starts the scope with `pid` in it and waits until systemd has made it.
pub(crate) fn start(s: &Scope, props: Vec<Value>) -> Result<(), CgroupError> {
    let mut c = connect(s.user)?;
    let args = || {
        vec![
            Value::s(&s.unit),
            Value::s("fail"),
            Value::Array("(sv)".into(), props.clone()),
            Value::Array("(sa(sv))".into(), vec![]),
        ]
    };
    let mut r = run_job(&mut c, "StartTransientUnit", args());
    if r.as_ref()
        .is_err_and(|e| is(e, "org.freedesktop.systemd1.UnitExists"))
    {
        // A failed scope of an earlier container of that name stays loaded until reset.
        let _ = manager(&mut c, "ResetFailedUnit", vec![Value::s(&s.unit)]);
        r = run_job(&mut c, "StartTransientUnit", args());
    }
    match r {
        Ok(res) if res == "done" => Ok(()),
        Ok(res) => Err(CgroupError::Scope(format!(
            "systemd: starting {}: the job ended {res:?}",
            s.unit
        ))),
        Err(e) if is(&e, "org.freedesktop.systemd1.UnitExists") => Err(CgroupError::Scope(
            format!("systemd unit {} already exists", s.unit),
        )),
        Err(e) => Err(reply("starting", &s.unit, e)),
    }
}

/// Stops the scope (its processes are killed, its cgroup removed) and forgets it; a scope
/// systemd already let go of (it stops by itself once empty) is not an error.
pub(crate) fn stop(s: &Scope) -> Result<(), CgroupError> {
    let mut c = connect(s.user)?;
    match run_job(
        &mut c,
        "StopUnit",
        vec![Value::s(&s.unit), Value::s("replace")],
    ) {
        Ok(_) => {}
        Err(e) if is(&e, "org.freedesktop.systemd1.NoSuchUnit") => return Ok(()),
        Err(e) => return Err(reply("stopping", &s.unit, e)),
    }
    let _ = manager(&mut c, "ResetFailedUnit", vec![Value::s(&s.unit)]);
    Ok(())
}

/// The pid systemd puts in the scope until the init is in (see the module's note); killed
/// when dropped.
pub(crate) struct Placeholder {
    pub(crate) pid: i32,
    pidfd: OwnedFd,
}

impl Placeholder {
    pub(crate) fn spawn() -> Result<Placeholder, CgroupError> {
        let (pid, pidfd) = crate::sys::spawn_placeholder().map_err(|e| {
            CgroupError::Scope(format!(
                "systemd scope: fork: {}",
                crate::error::errno_desc(e)
            ))
        })?;
        Ok(Placeholder { pid, pidfd })
    }
}

impl Drop for Placeholder {
    fn drop(&mut self) {
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

/// The scope's directory in each hierarchy, from where systemd put `pid`
/// (`/proc/PID/cgroup`). A v1 hierarchy systemd does not manage (the pid is not in the
/// scope there) gets the same place below its own root, which berth makes.
pub(crate) fn dirs(
    layout: &Layout,
    s: &Scope,
    proc_cgroup: &str,
) -> Result<Vec<(Hierarchy, PathBuf)>, CgroupError> {
    let of = |key: &str| -> Option<&str> {
        proc_cgroup.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            (ctrls == key).then_some(path)
        })
    };
    let in_scope = |p: &str| Path::new(p).file_name().is_some_and(|n| *n == *s.unit);
    let under = |mount: &Path, p: &str| -> Result<PathBuf, CgroupError> {
        if p.split('/').any(|c| c == "..") {
            return Err(CgroupError::Scope(format!(
                "the scope {} is outside our cgroup namespace",
                s.unit
            )));
        }
        Ok(mount.join(p.trim_start_matches('/')))
    };
    let mut out = Vec::new();
    for (mp, ctrls, _) in &layout.v1 {
        let dir = match of(&ctrls.join(",")) {
            Some(p) if in_scope(p) => under(mp, p)?,
            _ => {
                let slice = slice_path(&s.slice).map_err(CgroupError::Invalid)?;
                mp.join(slice).join(&s.unit)
            }
        };
        out.push((
            Hierarchy::V1 {
                mountpoint: mp.clone(),
                controllers: ctrls.clone(),
            },
            dir,
        ));
    }
    if let Some((mp, _)) = &layout.unified {
        match of("") {
            Some(p) if in_scope(p) => out.push((Hierarchy::Unified, under(mp, p)?)),
            // Hybrid: systemd may keep its own v1 name=systemd tree and leave the cgroup2
            // mount alone.
            _ if !layout.v1.is_empty() => {}
            _ => {
                return Err(CgroupError::Scope(format!(
                    "systemd did not put the scope {} in the cgroup2 hierarchy",
                    s.unit
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_path_is_slice_prefix_name() {
        let s = parse(Some("system.slice:berth:c1"), "id", false).unwrap();
        assert_eq!(s.unit, "berth-c1.scope");
        assert_eq!(s.slice, "system.slice");
        let s = parse(None, "id", false).unwrap();
        assert_eq!(
            (s.unit.as_str(), s.slice.as_str()),
            ("runc-id.scope", "system.slice")
        );
        let s = parse(Some("::"), "id", true).unwrap();
        assert_eq!(
            (s.unit.as_str(), s.slice.as_str()),
            ("id.scope", "user.slice")
        );
        let s = parse(Some("machine-a.slice:p:"), "id", false).unwrap();
        assert_eq!(s.unit, "p-id.scope");
        for bad in [
            "/berth/c1",
            "a:b",
            "a:b:c:d",
            "nope:p:n",
            "a--b.slice:p:n",
            "x.slice:p:n.slice",
            "x.slice:p:n/../m",
        ] {
            let e = parse(Some(bad), "id", false).unwrap_err().to_string();
            assert!(e.starts_with(&format!("cgroupsPath {bad:?}")), "{e}");
        }
    }

    #[test]
    fn slices_expand_to_their_ancestors() {
        assert_eq!(
            slice_path("system.slice").unwrap(),
            Path::new("system.slice")
        );
        assert_eq!(
            slice_path("a-b-c.slice").unwrap(),
            Path::new("a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(slice_path("-.slice").unwrap(), Path::new(""));
        assert!(slice_path("a-.slice").is_err());
        assert!(slice_path("a/b.slice").is_err());
        assert!(slice_path("a.scope").is_err());
    }

    fn prop<'a>(props: &'a [Value], k: &str) -> Option<&'a Value> {
        props.iter().find_map(|p| match p {
            Value::Struct(f) if f[0] == Value::s(k) => match &f[1] {
                Value::Variant(v) => Some(&**v),
                _ => None,
            },
            _ => None,
        })
    }

    #[test]
    fn limits_map_onto_systemd_properties() {
        let s = parse(Some("system.slice:berth:c"), "c", false).unwrap();
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 33554432},
            "pids": {"limit": 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000}
        }))
        .unwrap();
        let v2 = properties(&s, 42, &r, true);
        assert_eq!(prop(&v2, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(
            prop(&v2, "PIDs"),
            Some(&Value::Array("u".into(), vec![Value::U32(42)]))
        );
        assert_eq!(prop(&v2, "Slice"), Some(&Value::s("system.slice")));
        assert_eq!(prop(&v2, "MemoryMax"), Some(&Value::U64(33554432)));
        assert_eq!(prop(&v2, "TasksMax"), Some(&Value::U64(20)));
        assert_eq!(prop(&v2, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(prop(&v2, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(prop(&v2, "MemoryLimit"), None);
        let v1 = properties(&s, 42, &r, false);
        assert_eq!(prop(&v1, "MemoryLimit"), Some(&Value::U64(33554432)));
        assert_eq!(prop(&v1, "CPUShares"), Some(&Value::U64(1024)));
        let none = properties(&s, 1, &Default::default(), true);
        assert_eq!(prop(&none, "MemoryMax"), None);
        assert_eq!(prop(&none, "TasksMax"), None);
    }

    #[test]
    fn the_scope_dirs_come_from_where_systemd_put_the_pid() {
        let s = parse(Some("system.slice:berth:c"), "c", false).unwrap();
        let v2 = Layout::parse(
            "31 30 0:27 / /sys/fs/cgroup rw shared:10 - cgroup2 cgroup2 rw\n",
            "0::/\n",
        );
        let d = dirs(&v2, &s, "0::/system.slice/berth-c.scope\n").unwrap();
        assert_eq!(
            d,
            [(
                Hierarchy::Unified,
                PathBuf::from("/sys/fs/cgroup/system.slice/berth-c.scope")
            )]
        );
        assert!(dirs(&v2, &s, "0::/system.slice/other.scope\n").is_err());
        assert!(dirs(&v2, &s, "0::/../../berth-c.scope\n").is_err());
        let hybrid = Layout::parse(
            "31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw\n\
             36 30 0:32 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory\n\
             37 30 0:33 / /sys/fs/cgroup/net_cls rw shared:17 - cgroup cgroup rw,net_cls\n",
            "",
        );
        let d = dirs(
            &hybrid,
            &s,
            "5:memory:/system.slice/berth-c.scope\n4:net_cls:/\n0::/system.slice/berth-c.scope\n",
        )
        .unwrap();
        let paths: Vec<_> = d.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("/sys/fs/cgroup/memory/system.slice/berth-c.scope"),
                PathBuf::from("/sys/fs/cgroup/net_cls/system.slice/berth-c.scope"),
                PathBuf::from("/sys/fs/cgroup/unified/system.slice/berth-c.scope"),
            ]
        );
    }
}
