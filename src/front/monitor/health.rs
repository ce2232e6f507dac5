//! Healthchecks without systemd: the image's `HEALTHCHECK` or `--health-*`, run by the
//! container's monitor on its own timer (the deadline of its poll loop), each probe an exec
//! into the container through the runtime library, detached, as the monitor's own child:
//! its status comes with the monitor's SIGCHLD, its output through a pipe, and at its
//! timeout it is killed. Whatever the probe left running in the container (its session:
//! exec makes every probe a session leader) is killed with it.
//!
//! Results go to `State.Health` in state.json under the container's lock (Docker's rules:
//! exit 0 healthy and the streak reset; otherwise the streak grows, unless the container is
//! still starting within its start period, and `Retries` failures in a row make it
//! unhealthy; the last 5 probes kept in `Log`), with a `health_status` event at each change.
//! `healthcheck run` runs one probe from the command itself, with the same rules.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::wait::WaitStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Monitor;
use crate::cli::front::RunArgs;
use crate::front::containers::runtime as rt;
use crate::front::containers::{Container, Live, Record, Store};
use crate::front::units;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Docker's MinimumDuration for the intervals and the timeout.
const MIN_DURATION: i64 = 1_000_000;
/// Docker keeps this many probes in `Log`, and this much of each one's output.
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

pub(crate) const STARTING: &str = "starting";
pub(crate) const HEALTHY: &str = "healthy";
pub(crate) const UNHEALTHY: &str = "unhealthy";

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Docker's `Config.Healthcheck` (durations in nanoseconds; 0: the default).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct HealthConfig {
    pub(crate) test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) timeout: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) start_period: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) start_interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) retries: i64,
}

/// Docker's `State.Health`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Health {
    pub(crate) status: String,
    pub(crate) failing_streak: i64,
    pub(crate) log: Vec<LogEntry>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct LogEntry {
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) exit_code: i32,
    pub(crate) output: String,
}

fn duration_flag(flag: &str, s: &str, min: i64) -> Result<i64> {
    let d = units::parse_go_duration(s).map_err(|e| anyhow!("{flag} {s}: {e}"))?;
    if d < 0 {
        bail!("{flag} {s}: cannot be negative");
    }
    if d < min {
        bail!("{flag} {s}: must be at least 1ms");
    }
    Ok(d)
}

/// The container's healthcheck: the image's, with `--health-*` over it; `--no-healthcheck`
/// records `["NONE"]` (as Docker does); None when there is none.
pub(crate) fn from_flags(a: &RunArgs, image: Option<&Value>) -> Result<Option<HealthConfig>> {
    let any_flag = a.health_cmd.is_some()
        || a.health_interval.is_some()
        || a.health_timeout.is_some()
        || a.health_retries.is_some()
        || a.health_start_period.is_some()
        || a.health_start_interval.is_some();
    if a.no_healthcheck {
        if any_flag {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    let mut h: HealthConfig = image
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if let Some(cmd) = &a.health_cmd {
        if cmd.trim().is_empty() {
            bail!("--health-cmd: the command is empty");
        }
        h.test = vec!["CMD-SHELL".into(), cmd.clone()];
    }
    if let Some(s) = &a.health_interval {
        h.interval = duration_flag("--health-interval", s, MIN_DURATION)?;
    }
    if let Some(s) = &a.health_timeout {
        h.timeout = duration_flag("--health-timeout", s, MIN_DURATION)?;
    }
    if let Some(s) = &a.health_start_interval {
        h.start_interval = duration_flag("--health-start-interval", s, MIN_DURATION)?;
    }
    if let Some(s) = &a.health_start_period {
        h.start_period = duration_flag("--health-start-period", s, 0)?;
    }
    if let Some(r) = a.health_retries {
        if r < 0 {
            bail!("--health-retries {r}: cannot be negative");
        }
        h.retries = r;
    }
    if h.test.is_empty() {
        return Ok(None);
    }
    if !matches!(h.test[0].as_str(), "NONE" | "CMD" | "CMD-SHELL") {
        bail!(
            "healthcheck test {:?}: the first word must be NONE, CMD or CMD-SHELL",
            h.test[0]
        );
    }
    Ok(Some(h))
}

/// Whether `h` runs probes (not absent, not `NONE`).
pub(crate) fn active(h: Option<&HealthConfig>) -> bool {
    test_args(h).is_some()
}

/// What a probe runs, if the container has an active healthcheck.
fn probe_args(rec: &Record) -> Option<Vec<String>> {
    test_args(rec.config.healthcheck.as_ref())
}

fn test_args(h: Option<&HealthConfig>) -> Option<Vec<String>> {
    let h = h?;
    let (kind, rest) = h.test.split_first()?;
    match kind.as_str() {
        "CMD" if !rest.is_empty() => Some(rest.to_vec()),
        "CMD-SHELL" if !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// `State.Health` at a start: `starting`, when there is a healthcheck.
pub(crate) fn initial(rec: &Record) -> Option<Health> {
    probe_args(rec).map(|_| Health {
        status: STARTING.into(),
        ..Default::default()
    })
}

fn nanos(v: i64, default: Duration) -> Duration {
    if v > 0 {
        Duration::from_nanos(v as u64)
    } else {
        default
    }
}

/// A probe under way: our child, its output in a pipe.
pub(crate) struct Probe {
    pid: i32,
    out: std::fs::File,
    /// The pipe's write ends are all closed (the probe and whatever it left are done
    /// with it): nothing more to wait for on it.
    eof: bool,
    output: Vec<u8>,
    start: SystemTime,
    deadline: Instant,
    timeout: Duration,
}

impl Probe {
    fn start(rec: &Record, prep: &rt::PreparedProbe, null: &std::fs::File) -> Result<Probe> {
        let h = rec.config.healthcheck.clone().unwrap_or_default();
        let timeout = nanos(h.timeout, DEFAULT_TIMEOUT);
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| anyhow!("pipe: {}", e.desc()))?;
        let start = SystemTime::now();
        let pid = rt::start_probe(prep, null.as_fd(), w.as_fd())?;
        drop(w);
        let _ = nix::fcntl::fcntl(
            &r,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Ok(Probe {
            pid,
            out: std::fs::File::from(r),
            eof: false,
            output: Vec::new(),
            start,
            deadline: Instant::now() + timeout,
            timeout,
        })
    }

    fn read_output(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.out.read(&mut buf) {
            if n == 0 {
                self.eof = true;
                break;
            }
            // Kept whole up to Docker's limit; the rest is read and dropped.
            let room = MAX_OUTPUT.saturating_sub(self.output.len());
            self.output.extend_from_slice(&buf[..n.min(room)]);
        }
    }

    /// The probe's leftovers (its session in the container), then the probe.
    fn kill(&self, prep: &rt::PreparedProbe) {
        kill_session(prep, self.pid);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    fn entry(mut self, code: i32, timed_out: bool) -> LogEntry {
        self.read_output();
        let output = if timed_out {
            format!(
                "Health check exceeded timeout ({})",
                units::format_go_duration(self.timeout.as_nanos() as i64)
            )
        } else {
            String::from_utf8_lossy(&self.output).into_owned()
        };
        LogEntry {
            start: rt::rfc3339(self.start),
            end: rt::rfc3339(SystemTime::now()),
            exit_code: code,
            output,
        }
    }
}

/// Kills what runs in the container in the session `sid` (a probe's), besides `sid`.
fn kill_session(prep: &rt::PreparedProbe, sid: i32) {
    for p in prep.pids() {
        // The init is in a session of its own.
        if p == sid || p == prep.init_pid() {
            continue;
        }
        let stat = rt::read_small(format!("/proc/{p}/stat")).unwrap_or_default();
        // Fields after the command (which may hold spaces): state ppid pgrp session.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let session = after
            .split_whitespace()
            .nth(3)
            .and_then(|s| s.parse::<i32>().ok());
        if session == Some(sid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn exit_code(st: WaitStatus) -> i32 {
    match st {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        _ => -1,
    }
}

/// What the monitor knows of the running init without reading state.json: its host pid
/// and whether it is still within the healthcheck's start period.
pub(crate) struct Known<'a> {
    pid: i32,
    in_start_period: bool,
    /// The monitor's copy of the live record as it last wrote it: used instead of reading
    /// the file back while the file is still that one (no `healthcheck run` wrote since).
    copy: &'a mut Option<LiveCopy>,
}

/// What the monitor last wrote to the live record, and which file that made.
pub(crate) struct LiveCopy {
    pid: i32,
    health: Health,
    file: crate::front::containers::FileIdent,
}

/// Applies a probe's result to `State.Health` under the container's lock; the status after.
/// With `known` (the monitor's probes), state.json is read only when the status changes.
pub(crate) fn record(
    store: &Store,
    rec: &Record,
    e: LogEntry,
    mut known: Option<Known>,
) -> Result<String> {
    let h = rec.config.healthcheck.clone().unwrap_or_default();
    let retries = if h.retries > 0 {
        h.retries
    } else {
        DEFAULT_RETRIES
    };
    let (before, after) = {
        let _lock = store.lock(&rec.id)?;
        let (mut st, pid, in_start_period) = match &known {
            Some(k) => (None, k.pid, k.in_start_period),
            None => {
                let st = store.load_state(&rec.id)?;
                let started =
                    units::parse_rfc3339(&st.started_at).unwrap_or(SystemTime::UNIX_EPOCH);
                let in_start_period = SystemTime::now()
                    .duration_since(started)
                    .unwrap_or_default()
                    < Duration::from_nanos(h.start_period.max(0) as u64);
                let pid = st.pid;
                (Some(st), pid, in_start_period)
            }
        };
        let mine = known.as_mut().and_then(|k| {
            let c = k.copy.take()?;
            (c.pid == pid && store.live_health_ident(&rec.id) == Some(c.file)).then_some(c.health)
        });
        let mut live = match mine.or_else(|| store.live_health(&rec.id, pid)) {
            Some(h) => Some(h),
            None => {
                // No probe of this init recorded yet: state.json's is the one to go on.
                if st.is_none() {
                    st = Some(store.load_state(&rec.id)?);
                }
                st.as_ref().and_then(|s| s.health.clone())
            }
        };
        let health = live.get_or_insert_with(|| Health {
            status: STARTING.into(),
            ..Default::default()
        });
        let before = health.status.clone();
        if e.exit_code == 0 {
            health.failing_streak = 0;
            health.status = HEALTHY.into();
        } else if !(health.status == STARTING && in_start_period) {
            health.failing_streak += 1;
            if health.failing_streak >= retries {
                health.status = UNHEALTHY.into();
            }
        }
        health.log.push(e);
        if health.log.len() > MAX_LOG {
            let n = health.log.len() - MAX_LOG;
            health.log.drain(..n);
        }
        let after = health.status.clone();
        let file = store.save_live_health(&rec.id, pid, health)?;
        if let Some(k) = known.as_mut() {
            *k.copy = Some(LiveCopy {
                pid,
                health: health.clone(),
                file,
            });
        }
        // A change of status is kept in state.json too, as every transition is.
        if before != after {
            let mut st = match st {
                Some(st) => st,
                None => store.load_state(&rec.id)?,
            };
            st.health = live;
            store.save_state(&rec.id, &st)?;
        }
        (before, after)
    };
    if before != after {
        crate::front::events::container(store, rec, &format!("health_status: {after}"), &[]);
    }
    Ok(after)
}

/// The monitor's timer and probe.
pub(crate) struct Checker {
    args: Vec<String>,
    next: Instant,
    started: Instant,
    probe: Option<Probe>,
    /// The probe's exec, made ready for the current init (a restart makes another).
    prep: Option<rt::PreparedProbe>,
    /// The probes' stdin.
    null: Option<std::fs::File>,
    /// The live record as the last probe left it (see [`Known`]).
    live: Option<LiveCopy>,
}

impl Checker {
    pub(crate) fn new(rec: &Record) -> Option<Checker> {
        let args = probe_args(rec)?;
        let mut c = Checker {
            args,
            next: Instant::now(),
            started: Instant::now(),
            probe: None,
            prep: None,
            null: None,
            live: None,
        };
        c.next = Instant::now() + c.interval(rec, STARTING);
        Some(c)
    }

    /// Starts a probe in the init `init` of container `id`, the exec made ready first
    /// when this init has none yet.
    fn start(&mut self, store: &Store, rec: &Record, init: i32) -> Result<Probe> {
        if self.prep.as_ref().is_none_or(|p| p.init_pid() != init) {
            self.prep = None;
            self.prep = Some(rt::prepare_probe(&store.rt, &rec.id, &self.args)?);
        }
        if self.null.is_none() {
            self.null = Some(std::fs::File::open("/dev/null").context("open /dev/null")?);
        }
        let (Some(prep), Some(null)) = (&self.prep, &self.null) else {
            unreachable!("both made above");
        };
        Probe::start(rec, prep, null)
    }

    fn in_start_period(&self, rec: &Record) -> bool {
        let period = rec
            .config
            .healthcheck
            .as_ref()
            .map_or(0, |h| h.start_period);
        self.started.elapsed() < nanos(period, Duration::ZERO)
    }

    /// Docker's getInterval: the start interval while starting within the start period.
    fn interval(&self, rec: &Record, status: &str) -> Duration {
        let h = rec.config.healthcheck.clone().unwrap_or_default();
        if self.in_start_period(rec) && status == STARTING {
            nanos(h.start_interval, DEFAULT_START_INTERVAL)
        } else {
            nanos(h.interval, DEFAULT_INTERVAL)
        }
    }
}

impl Monitor<'_> {
    /// When the health timer wants the loop to wake: the running probe's output comes
    /// through the poll set ([`Monitor::health_output`]), its end with SIGCHLD.
    pub(super) fn health_wake(&self) -> Option<Instant> {
        let h = self.health.as_ref()?;
        Some(match &h.probe {
            Some(p) => p.deadline,
            None => h.next,
        })
    }

    /// The running probe's output pipe, while it may still bring something.
    pub(super) fn health_output(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        let p = self.health.as_ref()?.probe.as_ref()?;
        (!p.eof).then(|| p.out.as_fd())
    }

    /// The running probe's output is readable (or closed): kept up to Docker's limit, so
    /// that a probe writing more than a pipe holds is not blocked.
    pub(super) fn health_drain(&mut self) {
        if let Some(p) = self.health.as_mut().and_then(|h| h.probe.as_mut()) {
            p.read_output();
        }
    }

    /// Due work: a probe past its timeout killed, or the next probe started.
    pub(super) fn health_tick(&mut self) {
        let now = Instant::now();
        // A container on its way down is not probed (its exec would fail for that reason).
        let stopping = self.user_stop;
        let Some(h) = self.health.as_mut() else {
            return;
        };
        if let Some(p) = h.probe.as_mut() {
            if now < p.deadline {
                return;
            }
            let p = h.probe.take().expect("a probe");
            if let Some(prep) = &h.prep {
                p.kill(prep);
            }
            // Reaped with the next SIGCHLD (no longer ours to match).
            let e = p.entry(-1, true);
            self.health_done(e);
            return;
        }
        if now < h.next || stopping {
            return;
        }
        let init = self.created.pid;
        let paused = match h.prep.as_ref().filter(|p| p.init_pid() == init) {
            Some(p) => p.paused(),
            None => rt::status(&self.store.rt, &self.c.rec.id).as_deref() == Some("paused"),
        };
        if paused {
            h.next = now + h.interval(&self.c.rec, "");
            return;
        }
        match h.start(self.store, &self.c.rec, init) {
            Ok(p) => h.probe = Some(p),
            Err(e) => {
                let t = rt::rfc3339(SystemTime::now());
                self.health_done(LogEntry {
                    start: t.clone(),
                    end: t,
                    exit_code: -1,
                    output: format!("{e:#}"),
                });
            }
        }
    }

    /// A child the monitor reaped that is not the init: the probe, perhaps.
    pub(super) fn health_reaped(&mut self, st: WaitStatus) {
        let Some(h) = self.health.as_mut() else {
            return;
        };
        let Some(pid) = st.pid() else { return };
        if h.probe.as_ref().is_none_or(|p| p.pid != pid.as_raw()) {
            return;
        }
        let p = h.probe.take().expect("a probe");
        if let Some(prep) = &h.prep {
            kill_session(prep, p.pid);
        }
        let e = p.entry(exit_code(st), false);
        self.health_done(e);
    }

    fn health_done(&mut self, e: LogEntry) {
        let pid = self.created.pid;
        let known = self.health.as_mut().map(|h| Known {
            pid,
            in_start_period: h.in_start_period(&self.c.rec),
            copy: &mut h.live,
        });
        let status = record(self.store, &self.c.rec, e, known).unwrap_or_else(|_| STARTING.into());
        self.notify.health(&status);
        if let Some(h) = self.health.as_mut() {
            h.next = Instant::now() + h.interval(&self.c.rec, &status);
        }
    }
}

/// `healthcheck run`: one probe now, from this command (its child), recorded as the
/// monitor's are. The status after it.
pub(crate) fn run_once(store: &Store, c: &Container) -> Result<String> {
    let Some(args) = probe_args(&c.rec) else {
        bail!("container {} has no defined healthcheck", c.rec.name);
    };
    if store.derive(c) != Live::Running {
        bail!("container {} is not running", c.rec.name);
    }
    let prep = rt::prepare_probe(&store.rt, &c.rec.id, &args)?;
    let null = std::fs::File::open("/dev/null").context("open /dev/null")?;
    let mut p = Probe::start(&c.rec, &prep, &null)?;
    let pid = nix::unistd::Pid::from_raw(p.pid);
    let e = loop {
        p.read_output();
        match nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(st) => {
                kill_session(&prep, p.pid);
                break p.entry(exit_code(st), false);
            }
            Err(e) => bail!("waiting for the healthcheck: {}", e.desc()),
        }
        if Instant::now() >= p.deadline {
            p.kill(&prep);
            let _ = nix::sys::wait::waitpid(pid, None);
            break p.entry(-1, true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    record(store, &c.rec, e, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(s: &str) -> RunArgs {
        let mut v = vec!["berth", "run"];
        v.extend(s.split(' ').filter(|x| !x.is_empty()));
        v.push("img");
        match crate::cli::front::FrontCli::try_parse_from(v)
            .unwrap()
            .command
            .unwrap()
        {
            crate::cli::front::Command::Run(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_over_the_image() {
        let image = serde_json::json!({"Test": ["CMD", "true"], "Interval": 5_000_000_000i64, "Retries": 7});
        let h = from_flags(&args(""), Some(&image)).unwrap().unwrap();
        assert_eq!(h.test, ["CMD", "true"]);
        assert_eq!((h.interval, h.retries), (5_000_000_000, 7));
        let h = from_flags(
            &args("--health-cmd=exit\t1 --health-interval=2s"),
            Some(&image),
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "exit\t1"]);
        assert_eq!((h.interval, h.retries), (2_000_000_000, 7));
        assert_eq!(
            from_flags(&args("--health-interval=2s"), None).unwrap(),
            None
        );
        let none = from_flags(&args("--no-healthcheck"), Some(&image))
            .unwrap()
            .unwrap();
        assert_eq!(none.test, ["NONE"]);
        for bad in [
            "--health-cmd=true --health-interval=0",
            "--health-cmd=true --health-timeout=-1s",
            "--health-cmd=true --health-interval=soon",
            "--health-cmd=true --health-retries=-2",
            "--no-healthcheck --health-cmd=true",
        ] {
            assert!(from_flags(&args(bad), None).is_err(), "{bad}");
        }
    }
}
