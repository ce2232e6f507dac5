//! A RUN step's container on a bridge network (`--network bridge`, the rootful default as
//! Docker's builder has it): connected as `run`'s monitor connects a container
//! (`network::attach` between the runtime's create and start: veth, address, nftables
//! rules) and released when the step's container is gone. The build process stands for
//! the step's monitor: its own pid is recorded as the monitor of the step's id, so that
//! another berth command sweeping the network record keeps the endpoint while the build
//! lives, and releases it (veth, address, rules) if the build was killed.

use anyhow::{anyhow, Result};

use crate::front::containers::{self, runtime as rt, MonitorRecord, Record};

/// The step's endpoint; released by [`Endpoint::release`] (or, failing that, on drop).
pub(crate) struct Endpoint {
    store: containers::Store,
    id: String,
    _held: Option<crate::front::network::Attached>,
    released: bool,
}

/// Connects the step's container (init `pid`) to its bridge network.
pub(crate) fn attach(g: &crate::front::Globals, rec: &Record, pid: i32) -> Result<Endpoint> {
    let store = containers::Store::new(g);
    let me = std::process::id() as i32;
    let start_time = rt::process_start_time(me)
        .ok_or_else(|| anyhow!("the build's own start time is unreadable"))?;
    store.write_monitor(
        &rec.id,
        &MonitorRecord {
            pid: me,
            start_time,
            boot_id: rt::boot_id(),
        },
    )?;
    let mut ep = Endpoint {
        store,
        id: rec.id.clone(),
        _held: None,
        released: false,
    };
    match crate::front::network::attach(&ep.store, rec, pid) {
        Ok(held) => {
            if let Some(h) = &held {
                for w in &h.warnings {
                    crate::logging::warn(w);
                }
            }
            ep._held = held;
            Ok(ep)
        }
        Err(e) => {
            // attach undid its own work: only our record goes.
            ep.store.clear_run_dir(&ep.id);
            ep.released = true;
            Err(e.context(format!("network {}", rec.host_config.network_mode)))
        }
    }
}

impl Endpoint {
    /// After the step's container is removed: its address, veth and rules go (and the
    /// bridge and table with the last endpoint).
    pub(crate) fn release(mut self) -> Result<()> {
        self.released = true;
        let r = crate::front::network::detach(&self.store, &self.id);
        self.store.clear_run_dir(&self.id);
        r
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if !self.released {
            let _ = crate::front::network::detach(&self.store, &self.id);
            self.store.clear_run_dir(&self.id);
        }
    }
}
