//! Transitions that go through a container's monitor: start (detached or attached), stop
//! (the stop sequence runs in the monitor), wait.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{exit_error, runtime as rt, short, Container, Live, Store};
use crate::front::monitor::{self, client, proto::Request};

/// The container's stop signal: `--stop-signal` / the image's, else SIGTERM.
pub(crate) fn stop_signal(c: &Container) -> i32 {
    let s = &c.rec.config.stop_signal;
    if s.is_empty() {
        libc::SIGTERM
    } else {
        rt::parse_signal(s).unwrap_or(libc::SIGTERM)
    }
}

/// The container's stop timeout: `--stop-timeout`, else 10 s.
pub(crate) fn stop_timeout(c: &Container) -> i64 {
    c.rec.config.stop_timeout.unwrap_or(10)
}

/// Runs the stop sequence in the monitor and waits until the container is down and its
/// end recorded. A container that is not running is left as it is.
pub(crate) fn stop(store: &Store, c: &Container, sig: i32, timeout: i64) -> Result<()> {
    let id = &c.rec.id;
    // Before the request: once it is answered the monitor may have removed its record
    // while its process still runs.
    let monitor_before = store.monitor(id);
    if !store.derive(c).is_active() {
        monitor::wait_gone_since(store, id, monitor_before);
        return Ok(());
    }
    if store.derive(c) == Live::Starting {
        // Its monitor holds the lock until the container runs, and takes requests after.
        drop(store.lock(id)?);
    }
    if store.derive(c) == Live::Paused {
        // A frozen process cannot take its signal.
        let _ = rt::resume(&store.rt, id);
    }
    // Docker's stop reads kill (the stop signal), die, stop.
    crate::front::events::container(store, &c.rec, "kill", &[("signal", sig.to_string())]);
    match monitor::request(
        store,
        id,
        &Request::Stop {
            signal: sig,
            timeout,
        },
    ) {
        Some(s) => monitor::proto::wait_closed(s),
        None => {
            // No monitor answers: the next reconcile finalizes it.
        }
    }
    monitor::wait_gone_since(store, id, monitor_before);
    if let Ok(c) = store.load(id) {
        store.reconcile_if_needed(c);
    }
    crate::front::events::container(store, &c.rec, "stop", &[]);
    Ok(())
}

/// Starts a created or exited container with a detached monitor.
pub(crate) fn start(store: &Store, id: &str, log_level: &str) -> Result<()> {
    monitor::spawn(store, id, log_level, None)
}

/// Starts with a detached monitor that waits for us to attach before the container runs,
/// then stays attached: the container's status (or 0 when the user detached).
pub(crate) fn start_attached(store: &Store, id: &str, o: &client::Options) -> Result<i32> {
    let sock = store.ctl_socket(id);
    let mut conn = None;
    {
        // The monitor starts the container once this connection has asked to attach, so
        // nothing it prints is missed; the stream is read after the handshake.
        let mut attach = || -> Result<()> {
            conn = Some(client::connect(&sock, o)?);
            Ok(())
        };
        monitor::spawn(store, id, super::log_level(), Some(&mut attach))?;
    }
    let Some(conn) = conn else {
        bail!("the monitor of {} never asked for an attach", short(id));
    };
    finish_attach(store, id, client::run_attached(conn, o)?)
}

/// Attaches to a running container.
pub(crate) fn attach(store: &Store, c: &Container, o: &client::Options) -> Result<i32> {
    let id = &c.rec.id;
    if !store.derive(c).is_active() {
        bail!("you cannot attach to a stopped container, start it first");
    }
    let conn = client::connect(&store.ctl_socket(id), o)?;
    finish_attach(store, id, client::run_attached(conn, o)?)
}

fn finish_attach(store: &Store, id: &str, end: client::End) -> Result<i32> {
    match end {
        client::End::Exited(code) => Ok(code),
        client::End::Detached => Ok(0),
        client::End::Lost => {
            monitor::wait_gone(store, id);
            match store.load(id) {
                Ok(c) => {
                    let c = store.reconcile_if_needed(c);
                    Ok(c.map_or_else(
                        || store.kept_exit_code(id).unwrap_or(0),
                        |c| c.state.exit_code,
                    ))
                }
                // Its own --rm took it: the code it ended with.
                Err(_) => Ok(store.kept_exit_code(id).unwrap_or(0)),
            }
        }
    }
}

/// Blocks until the container is not running; its exit code. A container created but never
/// started is waited for until it has run and stopped: it has not had its chance to run
/// yet (as Podman; Docker 20.10 answers at once, moby#49627 would make it wait). A
/// container removed meanwhile (its own `--rm`, an `rm -f`) answers with the code it
/// ended with.
pub(crate) fn wait(store: &Store, q: &str) -> Result<i32> {
    let c = store.get(q)?;
    let id = c.rec.id.clone();
    if store.derive(&c).is_active()
        && !matches!(c.rec.host_config.restart_policy.name.as_str(), "" | "no")
    {
        // Its monitor lives on across restarts: Docker's wait ends at the next exit.
        return Ok(crate::front::monitor::restart::wait_next_exit(store, &c));
    }
    let gone = || match store.kept_exit_code(&id) {
        Some(code) => Ok(code),
        None => Err(exit_error(1, format!("No such container: {q}"))),
    };
    loop {
        monitor::wait_gone(store, &id);
        let Ok(c) = store.load(&id) else {
            return gone();
        };
        let Some(c) = store.reconcile_if_needed(c) else {
            return gone();
        };
        let live = store.derive(&c);
        // A start that failed leaves its error (and code): that is an end too.
        let never_ran =
            live == Live::Created && c.state.started_at.is_empty() && c.state.error.is_empty();
        if !live.is_active() && !never_ran {
            return Ok(c.state.exit_code);
        }
        // Started again by someone else, or not started yet: keep waiting (bounded poll
        // step; a start shows as a live monitor, which wait_gone then blocks on).
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            if never_ran && store.monitor_alive(&id) {
                break;
            }
            if !never_ran && !store.monitor_alive(&id) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Removes one container (stopping it first with `force`). With `force` a start racing
/// the removal loses: the container is stopped again until it stays down, as Docker's
/// `rm -f` always wins.
pub(crate) fn remove(store: &Store, q: &str, force: bool, time: Option<i64>) -> Result<()> {
    let c = store.get(q)?;
    let id = c.rec.id.clone();
    // A monitor that has recorded the end (or removed the container for --rm) can still
    // be finishing: a removal returns only once it is gone (a refused one leaves the
    // container running, its monitor with it).
    let monitor_before = store.monitor(&id);
    remove_loaded(store, q, c, force, time)?;
    monitor::wait_gone_since(store, &id, monitor_before);
    Ok(())
}

fn remove_loaded(
    store: &Store,
    q: &str,
    c: Container,
    force: bool,
    time: Option<i64>,
) -> Result<()> {
    let id = c.rec.id.clone();
    let mut c = Some(c);
    for attempt in 0.. {
        let c = match c.take() {
            Some(c) => c,
            None => match store.load(&id) {
                Ok(c) => c,
                // Its own --rm took it meanwhile.
                Err(_) => return Ok(()),
            },
        };
        let live = store.derive(&c);
        if live.is_active() {
            if !force {
                bail!(
                    "cannot remove container {q}: container is {}: stop the container before removing or force remove",
                    live.word()
                );
            }
            // rm -t N: a graceful stop first (Podman); plain -f kills.
            let (sig, t) = match time {
                Some(t) => (stop_signal(&c), t),
                None => (libc::SIGKILL, 0),
            };
            stop(store, &c, sig, t)?;
        }
        let Ok(lock) = store.lock(&id) else {
            return Ok(());
        };
        let c = match store.load(&id) {
            Ok(c) => c,
            Err(_) => return Ok(()),
        };
        if store.derive(&c).is_active() {
            if force && attempt < 10 {
                continue;
            }
            bail!("cannot remove container {q}: it was started again meanwhile");
        }
        store.reconcile(&c, &lock)?;
        store.remove_files(&c.rec)?;
        crate::front::events::container(store, &c.rec, "destroy", &[]);
        return Ok(());
    }
    unreachable!("the loop returns")
}
