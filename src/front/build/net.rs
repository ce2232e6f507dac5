//! A RUN step's container as berth's other commands see it, and its bridge network.
//!
//! The build process stands for the step's monitor: its own pid is recorded as the
//! monitor of the step's id (`RUNROOT/containers/<id>/monitor.json`, with a `build-step`
//! mark), so that another berth command sweeping the network record keeps the step's
//! endpoint while the build lives, and releases it if the build was killed; the next build
//! finishes what a killed one left ([`reconcile_killed`]: its container, its runtime
//! record, its endpoint).
//!
//! On a bridge network (`--network bridge`, the rootful default as Docker's builder has
//! it) the container is connected as `run`'s monitor connects one (`network::attach`
//! between the runtime's create and start: veth, address, nftables rules) and released
//! after the step.

use anyhow::{anyhow, Result};

use crate::front::containers::{self, runtime as rt, MonitorRecord, Record};

/// Marks a step's run directory (real containers' are never touched by the reconcile).
const MARK: &str = "build-step";

/// The step's record as a monitor's; removed when dropped.
pub(crate) struct StepRecord {
    store: containers::Store,
    id: String,
}

impl StepRecord {
    /// Written before the step's container is made.
    pub(crate) fn write(g: &crate::front::Globals, id: &str) -> Result<StepRecord> {
        let store = containers::Store::new(g);
        let me = std::process::id() as i32;
        let start_time = rt::process_start_time(me)
            .ok_or_else(|| anyhow!("the build's own start time is unreadable"))?;
        let r = StepRecord {
            store,
            id: id.to_string(),
        };
        r.store.write_monitor(
            id,
            &MonitorRecord {
                pid: me,
                start_time,
                boot_id: rt::boot_id(),
            },
        )?;
        std::fs::write(r.store.run_dir(id).join(MARK), "")?;
        Ok(r)
    }
}

impl Drop for StepRecord {
    fn drop(&mut self) {
        self.store.clear_run_dir(&self.id);
    }
}

/// Steps of builds that were killed (their build process is gone): their containers are
/// killed and removed with their runtime records, their network endpoints released.
pub(crate) fn reconcile_killed(g: &crate::front::Globals) {
    let store = containers::Store::new(g);
    let Ok(rd) = std::fs::read_dir(g.runroot.join("containers")) else {
        return;
    };
    for e in rd.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if !e.path().join(MARK).exists() || store.monitor_alive(&id) {
            continue;
        }
        let _ = rt::delete(&g.runtime(), &id);
        if let Err(e) = crate::front::network::release(&store, &id) {
            crate::logging::warn(&format!(
                "a killed build's step {}: {e:#}",
                &id[..12.min(id.len())]
            ));
        }
        store.clear_run_dir(&id);
    }
}

/// The step's endpoint; released by [`Endpoint::release`] (or, failing that, on drop).
/// It holds the step's record: the endpoint is the build's as long as it exists.
pub(crate) struct Endpoint {
    _held: Option<crate::front::network::Attached>,
    released: bool,
    // Declared last: dropped (removed) after the endpoint is released.
    record: StepRecord,
}

/// Connects the step's container (init `pid`) to its bridge network.
pub(crate) fn attach(rec: &Record, pid: i32, record: StepRecord) -> Result<Endpoint> {
    let mut ep = Endpoint {
        _held: None,
        released: false,
        record,
    };
    match crate::front::network::attach(&ep.record.store, rec, pid) {
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
            // attach undid its own work: only our record goes (with `ep`).
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
        crate::front::network::detach(&self.record.store, &self.record.id)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if !self.released {
            let _ = crate::front::network::detach(&self.record.store, &self.record.id);
        }
    }
}
