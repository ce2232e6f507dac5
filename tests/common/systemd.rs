//! systemd 252 as PID 1 of a new PID + mount + cgroup namespace (PEOPLE-FACE.md §5), for
//! tests of berth under systemd on a machine where systemd is installed but not running.
//!
//! The experiment gets a private cgroup2 subtree under the host's unified hierarchy; in
//! its mount namespace only /proc, /run, /sys/fs/cgroup (the cgroup v1 mounts are
//! unmounted, so that berth sees a pure v2 host), /var/lib/systemd and /dev/console are
//! replaced: the test's dirs (outside /run) and the berth binary stay visible. Units come
//! from a temp dir alone (SYSTEMD_UNIT_PATH). It is ended by SIGKILL of its PID 1 from the
//! host, never by `systemctl poweroff`, which from the wrong pid namespace reboots the machine.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::common::{run_with_timeout, Out};

static N: AtomicUsize = AtomicUsize::new(0);

pub struct Systemd {
    pub dir: PathBuf,
    pub units: PathBuf,
    cg: PathBuf,
    unshare: Child,
    /// systemd's pid on the host.
    pub pid: i32,
}

const INNER: &str = r#"#!/bin/sh
set -e
mount --make-rprivate /
mount -t proc proc /proc
mount -t tmpfs tmpfs /run
umount -R /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /var/lib/systemd
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
mount --bind /dev/null /dev/console
exec env -i container=berth-test SYSTEMD_UNIT_PATH="$1" PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --unit=test.target
"#;

impl Systemd {
    pub fn start(name: &str) -> Systemd {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let tag = format!("berth-sd-{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let _ = std::fs::remove_dir_all(&dir);
        let units = dir.join("units");
        std::fs::create_dir_all(&units).unwrap();
        // The targets units' default dependencies name, empty (units with
        // DefaultDependencies=yes, as generated ones, do not load without them).
        for t in [
            "test.target",
            "sysinit.target",
            "basic.target",
            "shutdown.target",
            "network-online.target",
            "multi-user.target",
            "default.target",
        ] {
            std::fs::write(units.join(t), "[Unit]\nDescription=test\n").unwrap();
        }
        let inner = dir.join("inner.sh");
        std::fs::write(&inner, INNER).unwrap();
        std::fs::set_permissions(&inner, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let cg = Path::new("/sys/fs/cgroup/unified").join(&tag);
        std::fs::create_dir_all(&cg).unwrap();
        // The shell moves itself into the subtree, then becomes unshare, whose child
        // (PID 1 of the new pid namespace) becomes systemd.
        let unshare = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec unshare --pid --fork --mount --uts --ipc --cgroup {} {}",
                cg.display(),
                inner.display(),
                units.display()
            ))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("outer.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("outer.err")).unwrap())
            .spawn()
            .expect("unshare");
        let mut s = Systemd {
            dir,
            units,
            cg,
            pid: 0,
            unshare,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let upid = s.unshare.id();
        loop {
            let children = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                .unwrap_or_default();
            if let Some(p) = children.split_whitespace().next() {
                let p: i32 = p.parse().unwrap();
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    s.pid = p;
                    let o = s.ctl(&["is-system-running", "--wait"]);
                    if o.stdout.trim() == "running" {
                        return s;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not come up: {}",
                std::fs::read_to_string(s.dir.join("outer.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts systemd-journald inside (units copied from the host's), so that units'
    /// output lands in the namespace's own journal (`journalctl` through [`Self::exec`]).
    pub fn journal(&self) {
        for u in [
            "systemd-journald.service",
            "systemd-journald.socket",
            "systemd-journald-dev-log.socket",
        ] {
            std::fs::copy(Path::new("/lib/systemd/system").join(u), self.units.join(u)).unwrap();
        }
        self.ctl(&["daemon-reload"]).ok();
        self.ctl(&["start", "systemd-journald.service"]).ok();
    }

    /// `systemctl ARGS` inside.
    pub fn ctl(&self, args: &[&str]) -> Out {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid.to_string())
            .arg("-a")
            .arg("systemctl")
            .args(args);
        run_with_timeout(&mut c, Duration::from_secs(120))
    }

    /// A command run inside the namespaces.
    pub fn exec(&self, args: &[&str]) -> Out {
        let mut c = Command::new("nsenter");
        c.arg("-t").arg(self.pid.to_string()).arg("-a").args(args);
        run_with_timeout(&mut c, Duration::from_secs(120))
    }

    pub fn write_unit(&self, name: &str, text: &str) {
        std::fs::write(self.units.join(name), text).unwrap();
        self.ctl(&["daemon-reload"]).ok();
    }

    pub fn prop(&self, unit: &str, p: &str) -> String {
        self.ctl(&["show", "-P", p, unit]).stdout.trim().to_string()
    }

    /// Waits (generously) until `unit`'s property `p` reads `want`.
    pub fn wait_prop(&self, unit: &str, p: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let v = self.prop(unit, p);
            if v == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{unit}: {p}={v}, wanted {want}; status:\n{}",
                self.ctl(&["status", "--no-pager", unit]).stdout
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SIGKILL of a pid namespace's init kills the whole namespace.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.cg.exists() && Instant::now() < deadline {
            super::common::remove_cgroup_tree(&self.cg);
            if self.cg.exists() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
