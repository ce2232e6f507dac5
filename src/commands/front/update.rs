//! `update [flags] CONTAINER...`: new resource limits (`-m`, `--memory-swap`,
//! `--memory-reservation`, `--cpus`, `--cpu-shares`, `--cpu-period`, `--cpu-quota`,
//! `--cpuset-cpus`, `--cpuset-mems`, `--pids-limit`, `--blkio-weight`), written to a
//! running container's cgroups by the runtime library (what the runc face's `update`
//! does) and recorded in its HostConfig and spec, so that its next start has them too.
//!
//! `--restart` records a new restart policy, which the container's monitor applies at
//! its next end.

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use serde_json::Value;

use crate::cli::front::UpdateArgs;
use crate::front::containers::{runtime as rt, Store};
use crate::front::monitor::restart;
use crate::front::{units, Globals};

/// The parsed flags; None: not given.
#[derive(Default)]
struct Wanted {
    memory: Option<i64>,
    swap: Option<i64>,
    reservation: Option<i64>,
    nano_cpus: Option<i64>,
    resources: LinuxResources,
}

/// The resource flags; None when none is given.
fn parse(a: &UpdateArgs) -> Result<Option<Wanted>> {
    let mut w = Wanted::default();
    let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| units::ram_in_bytes(s).map_err(|e| anyhow!("{flag} {s}: {e:#}")))
            .transpose()
    };
    w.memory = size("-m/--memory", &a.memory)?;
    if w.memory.is_some_and(|m| m > 0 && m < 6 * 1024 * 1024) {
        bail!("-m/--memory: minimum memory limit allowed is 6MB");
    }
    w.swap = a
        .memory_swap
        .as_deref()
        .map(|s| units::mem_swap_bytes(s).map_err(|e| anyhow!("--memory-swap {s}: {e:#}")))
        .transpose()?;
    w.reservation = size("--memory-reservation", &a.memory_reservation)?;
    w.nano_cpus = a
        .cpus
        .as_deref()
        .map(crate::front::specgen::nano_cpus)
        .transpose()?;
    if a.pids_limit.is_some_and(|p| p < -1) {
        bail!("--pids-limit: must be -1 (unlimited) or a positive number");
    }
    if let Some(c) = a.cpuset_cpus.as_ref() {
        if c.is_empty()
            || !c
                .chars()
                .all(|x| x.is_ascii_digit() || x == ',' || x == '-')
        {
            bail!("--cpuset-cpus {c}: invalid value (e.g. 0-3 or 0,1)");
        }
    }
    if a.cpus.is_some() && (a.cpu_quota.is_some() || a.cpu_period.is_some()) {
        bail!("--cpus and --cpu-quota/--cpu-period cannot be given together");
    }
    if let Some(b) = a.blkio_weight {
        if b != 0 && !(10..=1000).contains(&b) {
            bail!("--blkio-weight {b}: must be between 10 and 1000, or 0");
        }
    }
    let r = &mut w.resources;
    if w.memory.is_some() || w.swap.is_some() || w.reservation.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit(w.memory.filter(|m| *m > 0));
        m.set_swap(w.swap.filter(|s| *s != 0));
        m.set_reservation(w.reservation.filter(|r| *r > 0));
        r.set_memory(Some(m));
    }
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(a.cpu_shares.filter(|s| *s > 0));
    if let Some(n) = w.nano_cpus {
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some(n / 10_000));
    } else {
        cpu.set_period(a.cpu_period);
        cpu.set_quota(a.cpu_quota);
    }
    cpu.set_cpus(a.cpuset_cpus.clone());
    cpu.set_mems(a.cpuset_mems.clone());
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = LinuxPids::default();
        // Docker: 0 and -1 both mean unlimited.
        pids.set_limit(if p <= 0 { -1 } else { p });
        r.set_pids(Some(pids));
    }
    if let Some(b) = a.blkio_weight.filter(|b| *b > 0) {
        let mut bio = LinuxBlockIo::default();
        bio.set_weight(Some(b));
        r.set_block_io(Some(bio));
    }
    if *r == LinuxResources::default() {
        return Ok(None);
    }
    Ok(Some(w))
}

/// Deep merge of `over` into `base` (objects merged key by key, the rest replaced).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

pub(crate) fn update(g: &Globals, a: &UpdateArgs) -> Result<i32> {
    let policy = a.restart.as_deref().map(restart::parse).transpose()?;
    let wanted = parse(a)?;
    if policy.is_none() && wanted.is_none() {
        bail!("you must provide one or more flags when using this command");
    }
    let store = Store::new(g);
    super::each(&a.containers, false, |q| {
        // Resources first: their checks refuse before the policy changes.
        if let Some(w) = &wanted {
            resources(&store, q, w, a)?;
        }
        match &policy {
            Some(p) => restart::update(&store, q, p),
            None => Ok(()),
        }
    })
}

/// New limits for one container: applied when it runs, recorded either way.
fn resources(store: &Store, q: &str, w: &Wanted, a: &UpdateArgs) -> Result<()> {
    let id = store.resolve(q)?;
    let _lock = store.lock(&id)?;
    let mut c = store.load(&id)?;
    let spec_swap = c
        .rec
        .spec
        .pointer("/linux/resources/memory/swap")
        .and_then(Value::as_i64);
    if let (Some(m), None, Some(s)) = (w.memory, w.swap, spec_swap) {
        if s > 0 && m > s {
            bail!("memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
        }
    }
    if let Some(s) = w.swap.filter(|s| *s > 0) {
        let m = w.memory.or_else(|| {
            c.rec
                .spec
                .pointer("/linux/resources/memory/limit")
                .and_then(Value::as_i64)
        });
        match m {
                None | Some(0) => bail!("--memory-swap: you should always set the memory limit (-m) when using a swap limit"),
                Some(m) if s < m => bail!("--memory-swap: minimum memoryswap limit should be larger than memory limit"),
                _ => {}
            }
    }
    if store.derive(&c).is_active() {
        rt::update(&store.rt, &id, &w.resources)
            .map_err(|e| anyhow!("cannot update container {q}: {e:#}"))?;
    }
    let hc = &mut c.rec.host_config;
    if let Some(m) = w.memory {
        hc.memory = m;
    }
    if let Some(s) = w.swap {
        hc.memory_swap = s;
    }
    if let Some(r) = w.reservation {
        hc.memory_reservation = r;
    }
    if let Some(n) = w.nano_cpus {
        hc.nano_cpus = n;
    }
    if let Some(s) = a.cpu_shares {
        hc.cpu_shares = s as i64;
    }
    if let Some(cs) = &a.cpuset_cpus {
        hc.cpuset_cpus = cs.clone();
    }
    if let Some(p) = a.pids_limit {
        hc.pids_limit = Some(p);
    }
    let patch = serde_json::to_value(&w.resources)?;
    let spec = c
        .rec
        .spec
        .as_object_mut()
        .ok_or_else(|| anyhow!("the container's spec is not an object"))?;
    let linux = spec.entry("linux").or_insert_with(|| serde_json::json!({}));
    let res = linux
        .as_object_mut()
        .ok_or_else(|| anyhow!("the container's spec: linux is not an object"))?
        .entry("resources")
        .or_insert_with(|| serde_json::json!({}));
    merge(res, &patch);
    store.save_record(&c.rec)
}
