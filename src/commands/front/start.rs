//! `start`: starts created or stopped containers, each with a monitor of its own; `-a`
//! stays attached to its output (and `-i` its input) and exits with its status.

use std::os::fd::AsFd;

use anyhow::{bail, Result};

use crate::cli::front::StartArgs;
use crate::front::containers::{lifecycle, log_level, Live, Store};
use crate::front::monitor::client;
use crate::front::Globals;

pub(crate) fn start(g: &Globals, a: &StartArgs) -> Result<i32> {
    let store = Store::new(g);
    let filter = crate::front::systemd::boot::StartFilter::parse(&a.filter)?;
    if !a.filter.is_empty() && !a.all {
        bail!("--filter: only with --all");
    }
    let targets = if a.all {
        let mut t = Vec::new();
        for c in store.list() {
            if !store.derive(&c).is_active() && filter.matches(&c) {
                t.push(c.rec.id.clone());
            }
        }
        t
    } else {
        if a.containers.is_empty() {
            bail!("requires at least 1 container name or id");
        }
        a.containers.clone()
    };
    if a.attach || a.interactive {
        if targets.len() != 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let c = store.get(&targets[0])?;
        let live = store.derive(&c);
        let keys = client::parse_detach_keys(a.detach_keys.as_deref())?;
        let stdin_tty = nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false);
        let o = client::Options {
            stdin: a.interactive && c.rec.config.open_stdin,
            stdout: true,
            stderr: true,
            tty: c.rec.config.tty,
            detach_keys: keys,
            sig_proxy: a.sig_proxy.unwrap_or(true),
        };
        if c.rec.config.tty && o.stdin && !stdin_tty {
            bail!("the input device is not a TTY");
        }
        if live.is_active() {
            // Docker attaches to a running container here.
            return lifecycle::attach(&store, &c, &o);
        }
        return lifecycle::start_attached(&store, &c.rec.id, &o);
    }
    super::each(&targets, false, |q| {
        let c = store.get(q)?;
        match store.derive(&c) {
            Live::Running | Live::Starting | Live::Paused | Live::Restarting => Ok(()),
            _ => lifecycle::start(&store, &c.rec.id, log_level()),
        }
    })
}
