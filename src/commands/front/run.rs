//! `run`: create, then start in one of three ways: detached (`-d`: a monitor of its own,
//! the id printed), attached to a terminal (`-it` at a terminal: a monitor of its own and
//! this command attached to it, so Ctrl-P Ctrl-Q can leave it running), or in the
//! foreground (this process is the monitor: what a systemd unit's ExecStart wants).

use std::os::fd::AsFd;

use anyhow::{bail, Result};

use crate::cli::front::RunArgs;
use crate::front::containers::{create, lifecycle, Store};
use crate::front::monitor::{self, client, Foreground};
use crate::front::Globals;

pub(crate) fn run(g: &Globals, a: &RunArgs) -> Result<i32> {
    let store = Store::new(g);
    let stdin_tty = nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false);
    if a.tty && a.interactive && !a.detach && !stdin_tty {
        bail!("cannot attach stdin to a TTY-enabled container because stdin is not a terminal");
    }
    let detach_keys = client::parse_detach_keys(a.detach_keys.as_deref())?;
    let streams = super::attach_streams(&a.attach, a.interactive)?;
    let rec = create::create(&store, a, g.rootless)?;
    let id = rec.id.clone();
    crate::testpoint::hit("people:created");
    let cleanup_on_error = |e: anyhow::Error| -> anyhow::Error {
        if a.rm {
            if let Ok(c) = store.load(&id) {
                let _ = store.remove_files(&c.rec);
            }
        }
        e
    };
    if a.detach {
        monitor::spawn(&store, &id, crate::front::containers::log_level(), None)
            .map_err(cleanup_on_error)?;
        println!("{id}");
        return Ok(0);
    }
    if stdin_tty && (a.tty || a.interactive) {
        let opts = client::Options {
            stdin: streams[0],
            stdout: streams[1],
            stderr: streams[2],
            tty: a.tty,
            detach_keys,
            sig_proxy: a.sig_proxy,
        };
        return lifecycle::start_attached(&store, &id, &opts).map_err(cleanup_on_error);
    }
    monitor::run_foreground(
        &store,
        &id,
        Foreground {
            stdin: streams[0],
            stdout: streams[1],
            stderr: streams[2],
            sig_proxy: a.sig_proxy,
        },
    )
    .map_err(cleanup_on_error)
}
