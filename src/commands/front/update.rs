//! `update --restart POLICY CONTAINER...`: the restart policy, recorded for the container's
//! monitor to apply at its next end. Only `--restart` is built here; the resource flags are
//! refused with one line until they are.

use anyhow::{bail, Result};

use crate::cli::front::UpdateArgs;
use crate::front::containers::Store;
use crate::front::monitor::restart;
use crate::front::Globals;

pub(crate) fn update(g: &Globals, a: &UpdateArgs) -> Result<i32> {
    let resources = [
        ("--blkio-weight", a.blkio_weight.is_some()),
        ("--cpu-period", a.cpu_period.is_some()),
        ("--cpu-quota", a.cpu_quota.is_some()),
        ("--cpu-shares", a.cpu_shares.is_some()),
        ("--cpus", a.cpus.is_some()),
        ("--cpuset-cpus", a.cpuset_cpus.is_some()),
        ("--cpuset-mems", a.cpuset_mems.is_some()),
        ("--memory", a.memory.is_some()),
        ("--memory-reservation", a.memory_reservation.is_some()),
        ("--memory-swap", a.memory_swap.is_some()),
        ("--pids-limit", a.pids_limit.is_some()),
    ];
    if let Some((flag, _)) = resources.iter().find(|(_, used)| *used) {
        bail!("{flag}: not available yet in berth (update takes --restart only)");
    }
    let Some(r) = &a.restart else {
        bail!("you must provide one or more flags when using this command");
    };
    let policy = restart::parse(r)?;
    let store = Store::new(g);
    super::each(&a.containers, false, |q| {
        restart::update(&store, q, &policy)
    })
}
