//! Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`), applied by the
//! monitor in place: when the container's init ends and the policy says so, the monitor
//! records the end (exit.json, state `restarting`, the `die` event), waits Docker's backoff
//! while still serving its clients (a stop during the wait ends it all), tears the old
//! runtime container down and creates and starts a new one in the same overlay, with the
//! same log and control socket. Nothing outside the monitor is involved: no daemon, no
//! systemd timer, no exit command.
//!
//! Docker's restart manager (moby `restartmanager`): the delay starts at 100 ms and doubles
//! up to one minute; a run of 10 s or more resets it. `on-failure:N` restarts at most N
//! times (0: no limit), only after a non-zero exit. A stop or kill by the user ends it
//! whatever the policy (the monitor learns it from its stop request, or from the marker
//! `kill` leaves in the run dir), and `ManuallyStopped` remembers it until the next start.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use nix::sys::wait::WaitStatus;

use super::Monitor;
use crate::cli::front::RunArgs;
use crate::front::containers::runtime as rt;
use crate::front::containers::{
    now, Container, ExitRecord, Live, Record, RestartPolicy, Status, Store, ZERO_TIME,
};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
const RESET_AFTER: Duration = Duration::from_secs(10);
/// Left in the run dir by `kill`: the next end is the user's doing.
const USER_STOP: &str = "user-stop";

/// `--restart` as Docker's CLI and daemon check it.
pub(crate) fn parse(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some(("", _)) => {
            bail!("--restart {s}: invalid restart policy format: no policy provided before colon")
        }
        Some((n, c)) => {
            let c: i64 = c.parse().map_err(|_| {
                anyhow!("--restart {s}: invalid restart policy format: maximum retry count must be an integer")
            })?;
            (n, Some(c))
        }
        None => (s, None),
    };
    let name = if name.is_empty() { "no" } else { name };
    match (name, count) {
        ("no" | "always" | "unless-stopped", Some(_)) => bail!(
            "--restart {s}: invalid restart policy: maximum retry count can only be used with 'on-failure'"
        ),
        ("no" | "always" | "unless-stopped" | "on-failure", None) => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: 0,
        }),
        ("on-failure", Some(c)) if c < 0 => bail!(
            "--restart {s}: invalid restart policy: maximum retry count cannot be negative"
        ),
        ("on-failure", Some(c)) => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: c,
        }),
        _ => bail!(
            "--restart {s}: invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ),
    }
}

/// `run/create --restart` (none: `no`).
pub(crate) fn from_flags(a: &RunArgs) -> Result<RestartPolicy> {
    let p = parse(a.restart.as_deref().unwrap_or("no"))?;
    if a.rm && p.name != "no" {
        bail!(
            "--restart {}: conflicting options: cannot specify both --restart and --rm",
            p.name
        );
    }
    Ok(p)
}

/// Docker's decision (moby restartmanager.ShouldRestart) after an exit with `code`, the
/// container having been restarted `count` times already.
fn should_restart(p: &RestartPolicy, code: i32, count: i64, manually_stopped: bool) -> bool {
    if manually_stopped {
        return false;
    }
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => (p.maximum_retry_count == 0 || count < p.maximum_retry_count) && code != 0,
        _ => false,
    }
}

/// The monitor's memory of the policy between runs.
pub(crate) struct Restarts {
    /// When the backoff ends (None: not waiting).
    pub(super) at: Option<Instant>,
    /// The old runtime container is gone already (finish must not destroy it again).
    pub(super) torn_down: bool,
    /// The end was recorded and reported already (finish must not report it again).
    reported: bool,
    delay: Duration,
    started: Instant,
}

impl Restarts {
    pub(crate) fn new() -> Restarts {
        Restarts {
            at: None,
            torn_down: false,
            reported: false,
            delay: Duration::ZERO,
            started: Instant::now(),
        }
    }

    /// The next delay after a run that lasted `ran`.
    fn next_delay(&mut self, ran: Duration) -> Duration {
        if ran >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            FIRST_DELAY
        } else {
            (self.delay * 2).min(MAX_DELAY)
        };
        self.delay
    }
}

/// `kill` (and anything else that ends a container without its monitor's stop sequence)
/// says it was the user: the policy does not bring it back.
pub(crate) fn mark_user_stop(store: &Store, id: &str) {
    let d = store.run_dir(id);
    // Only into a live run dir: a monitor that just finished must not find a stale one.
    if d.is_dir() {
        let _ = std::fs::write(d.join(USER_STOP), b"");
    }
}

pub(crate) fn user_stopped(store: &Store, id: &str) -> bool {
    store.run_dir(id).join(USER_STOP).exists()
}

/// The `oom` and `die` events of an end.
pub(crate) fn report_end(store: &Store, rec: &Record, exit: &ExitRecord) {
    if exit.oom {
        crate::front::events::container(store, rec, "oom", &[]);
    }
    crate::front::events::container(store, rec, "die", &[("exitCode", exit.code.to_string())]);
}

/// `kill`: the user's signal; with a restart policy, the loop ends (while the container
/// waits out its backoff there is no process to signal: its monitor is told instead).
pub(crate) fn kill(store: &Store, c: &Container, sig: i32) -> Result<()> {
    let id = &c.rec.id;
    mark_user_stop(store, id);
    if store.derive(c) == Live::Restarting {
        let req = super::proto::Request::Stop {
            signal: libc::SIGKILL,
            timeout: 0,
        };
        if let Some(s) = super::request(store, id, &req) {
            super::proto::wait_closed(s);
        }
        return Ok(());
    }
    rt::kill(&store.rt, id, sig, false)
}

/// `update --restart POLICY` of one container: recorded, and a running container's monitor
/// reads it at the container's next end. Kept apart so that `update`'s other flags can call
/// it beside their own.
pub(crate) fn update(store: &Store, q: &str, policy: &RestartPolicy) -> Result<()> {
    let id = store.resolve(q)?;
    let _lock = store.lock(&id)?;
    let mut c = store.load(&id)?;
    if c.rec.host_config.auto_remove && policy.name != "no" {
        bail!("cannot update container {q}: restart policy cannot be updated because AutoRemove is enabled for the container");
    }
    c.rec.host_config.restart_policy = policy.clone();
    store.save_record(&c.rec)
}

/// `wait` of a container under a restart policy: blocks until its current run ends (it
/// restarts, or stays down); that run's exit code.
pub(crate) fn wait_next_exit(store: &Store, c: &Container) -> i32 {
    let id = &c.rec.id;
    let (count, status) = (c.state.restart_count, c.state.status);
    loop {
        let Ok(now) = store.load(id) else {
            return c.state.exit_code;
        };
        let Some(now) = store.reconcile_if_needed(now) else {
            return c.state.exit_code;
        };
        let ended = now.state.restart_count != count
            || (status != Status::Restarting && now.state.status == Status::Restarting)
            || !store.derive(&now).is_active();
        if ended {
            return now.state.exit_code;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Monitor<'_> {
    /// After the init's end: true once the container runs again under its restart policy;
    /// false when it stays down (the caller finishes).
    pub(super) fn restart_in_place(&mut self, status: WaitStatus) -> Result<bool> {
        let store = self.store;
        let id = self.c.rec.id.clone();
        let (code, signal) = match status {
            WaitStatus::Exited(_, c) => (c, None),
            WaitStatus::Signaled(_, s, _) => (128 + s as i32, Some(s as i32)),
            _ => (255, None),
        };
        // `update --restart` may have changed it since the start.
        if let Ok(c) = store.load(&id) {
            self.c.rec.host_config.restart_policy = c.rec.host_config.restart_policy;
        }
        let stopped = self.user_stop || user_stopped(store, &id);
        let count = self.c.state.restart_count;
        if !should_restart(&self.c.rec.host_config.restart_policy, code, count, stopped) {
            return Ok(false);
        }
        let delay = self.restarts.next_delay(self.restarts.started.elapsed());
        let exit = ExitRecord {
            code,
            signal,
            oom: rt::oom_kills(&self.created) > 0,
            finished_at: now(),
        };
        let _ = store.write_exit(&id, &exit);
        report_end(store, &self.c.rec, &exit);
        self.restarts.reported = true;
        self.drain();
        self.health = None;
        self.save(|st| {
            st.status = Status::Restarting;
            st.pid = 0;
            st.exit_code = exit.code;
            st.oom_killed = exit.oom;
            st.finished_at = exit.finished_at.clone();
        })?;

        // The backoff, serving clients: a stop request ends the wait and the loop.
        let deadline = Instant::now() + delay;
        self.restarts.at = Some(deadline);
        let old = self.created.pid;
        while !self.user_stop && Instant::now() < deadline {
            self.step(old)?;
        }
        self.restarts.at = None;
        if self.user_stop || user_stopped(store, &id) {
            return Ok(false);
        }

        self.restarts.torn_down = true;
        let made = rt::destroy(&self.created).and_then(|_| {
            // A new network namespace comes with the new init: the old endpoint goes first
            // (its address and published ports are taken again).
            crate::front::network::detach(store, &id)?;
            drop(self.net.take());
            super::create_container(store, &self.c, &self.notify)
        });
        let (created, io, _, net) = match made {
            Ok(m) => m,
            Err(e) => {
                self.save(|st| st.error = format!("restarting: {e:#}"))?;
                return Ok(false);
            }
        };
        self.created = created;
        self.io = io;
        self.net = net;
        self.restarts.torn_down = false;
        if let Err(e) = rt::start(&self.created) {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.created.pid), None);
            self.save(|st| st.error = format!("restarting: {e:#}"))?;
            return Ok(false);
        }
        self.restarts.reported = false;
        self.restarts.started = Instant::now();
        self.stop_deadline = None;
        self.killed = false;
        let _ = std::fs::remove_file(store.run_dir(&id).join("exit.json"));
        let pid = self.created.pid;
        let health = super::health::initial(&self.c.rec);
        self.save(|st| {
            st.status = Status::Running;
            st.pid = pid;
            st.started_at = now();
            st.finished_at = ZERO_TIME.into();
            st.restart_count += 1;
            st.error.clear();
            st.health = health.clone();
        })?;
        self.health = super::health::Checker::new(&self.c.rec);
        crate::front::events::container(store, &self.c.rec, "start", &[]);
        Ok(true)
    }

    /// Changes the recorded state under the container's lock (other commands write it too).
    fn save(&mut self, f: impl FnOnce(&mut crate::front::containers::State)) -> Result<()> {
        let id = self.c.rec.id.clone();
        let _lock = self.store.lock(&id)?;
        let mut st = self
            .store
            .load(&id)
            .map(|c| c.state)
            .unwrap_or_else(|_| self.c.state.clone());
        f(&mut st);
        self.store.save_state(&id, &st)?;
        self.c.state = st;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_docker_checks_them() {
        assert_eq!(parse("no").unwrap().name, "no");
        assert_eq!(parse("always").unwrap().name, "always");
        assert_eq!(parse("unless-stopped").unwrap().name, "unless-stopped");
        let p = parse("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        assert_eq!(parse("on-failure").unwrap().maximum_retry_count, 0);
        for bad in [
            "sometimes",
            "on-failure:-1",
            "on-failure:x",
            ":3",
            "always:2",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("--restart {bad}: invalid restart policy")),
                "{e}"
            );
        }
    }

    #[test]
    fn decisions_and_backoff() {
        let p = |s| parse(s).unwrap();
        assert!(!should_restart(&p("no"), 1, 0, false));
        assert!(should_restart(&p("always"), 0, 9, false));
        assert!(!should_restart(&p("always"), 0, 0, true));
        assert!(!should_restart(&p("unless-stopped"), 1, 0, true));
        assert!(should_restart(&p("on-failure:3"), 1, 2, false));
        assert!(!should_restart(&p("on-failure:3"), 1, 3, false));
        assert!(!should_restart(&p("on-failure:3"), 0, 0, false));
        assert!(should_restart(&p("on-failure"), 2, 1000, false));
        let mut r = Restarts::new();
        let quick = Duration::from_secs(1);
        let got: Vec<u128> = (0..12).map(|_| r.next_delay(quick).as_millis()).collect();
        assert_eq!(
            got,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
        );
        assert_eq!(r.next_delay(Duration::from_secs(10)).as_millis(), 100);
    }
}
