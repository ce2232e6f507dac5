//! `attach`: the running container's stdio through its monitor; the detach keys leave it
//! running.

use std::os::fd::AsFd;

use anyhow::{bail, Result};

use crate::cli::front::AttachArgs;
use crate::front::containers::{lifecycle, Store};
use crate::front::monitor::client;
use crate::front::Globals;

pub(crate) fn attach(g: &Globals, a: &AttachArgs) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get(&a.container)?;
    let keys = client::parse_detach_keys(a.detach_keys.as_deref())?;
    let stdin = !a.no_stdin && c.rec.config.open_stdin;
    let stdin_tty = nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false);
    if c.rec.config.tty && stdin && !stdin_tty {
        bail!("the input device is not a TTY");
    }
    let o = client::Options {
        stdin,
        stdout: true,
        stderr: true,
        tty: c.rec.config.tty,
        detach_keys: keys,
        sig_proxy: a.sig_proxy,
    };
    lifecycle::attach(&store, &c, &o)
}
