//! OCI `linux.resources` to cgroup file writes, for v1 and v2: pure functions, so that
//! every conversion is table-tested, and one writer that applies them. Device rules are in
//! `devices.rs`. Conversions follow runc's (shares to weight, blkio weight to io.weight,
//! memory+swap to swap).

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

/// One write: `controller` is the v1 controller whose directory holds `file` ("" on v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Write {
    pub(crate) controller: &'static str,
    pub(crate) file: String,
    pub(crate) value: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ResourceError {
    #[error("linux.resources.{field}: {msg}")]
    Field { field: String, msg: String },
    #[error("{}: writing {value:?}: {msg}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        msg: String,
    },
}

fn bad(field: &str, msg: impl Into<String>) -> ResourceError {
    ResourceError::Field {
        field: field.into(),
        msg: msg.into(),
    }
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
    }
}

/// -1 (or any negative value) is "no limit".
fn v1_num(n: i64) -> String {
    if n < 0 {
        "-1".into()
    } else {
        n.to_string()
    }
}

fn v2_num(n: i64) -> String {
    if n < 0 {
        "max".into()
    } else {
        n.to_string()
    }
}

/// runc's cpu.shares (2..262144) to cpu.weight (1..10000).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// runc's blkio weight (10..1000) to io.weight (1..10000).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990
}

fn check_memory(r: &LinuxResources) -> Result<(), ResourceError> {
    let Some(m) = r.memory() else { return Ok(()) };
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap()) {
        if limit > 0 && swap > 0 && swap < limit {
            return Err(bad(
                "memory.swap",
                format!("memory+swap limit {swap} must not be below the memory limit {limit}"),
            ));
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(bad(
                "memory.swappiness",
                format!("{s} is not between 0 and 100"),
            ));
        }
    }
    for (field, v) in [
        ("memory.kernelTCP", m.kernel_tcp()),
        ("memory.limit", m.limit()),
        ("memory.reservation", m.reservation()),
        ("memory.swap", m.swap()),
    ] {
        if let Some(n) = v {
            if n < -1 {
                return Err(bad(
                    field,
                    format!("{n} is not a size (use -1 for no limit)"),
                ));
            }
        }
    }
    Ok(())
}

/// Counts where -1 is "no limit" and any other negative value is a mistake (runc turns a
/// negative pids limit into max silently; berth refuses it).
fn check_values(r: &LinuxResources) -> Result<(), ResourceError> {
    check_memory(r)?;
    if let Some(n) = r.pids().map(|p| p.limit()).filter(|n| *n < -1) {
        return Err(bad(
            "pids.limit",
            format!("{n} is not a number of tasks (use -1 or 0 for no limit)"),
        ));
    }
    for h in r.hugepage_limits().as_deref().unwrap_or(&[]) {
        if h.limit() < -1 {
            return Err(bad(
                "hugepageLimits.limit",
                format!("{} is not a size (use -1 for no limit)", h.limit()),
            ));
        }
    }
    Ok(())
}

/// A kernel cpu or memory-node list ("0-3,5") as sorted, merged inclusive ranges.
fn parse_list(s: &str) -> Option<Vec<(u32, u32)>> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for part in s.trim().split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if a > b {
            return None;
        }
        out.push((a, b));
    }
    out.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (a, b) in out {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    Some(merged)
}

/// `cpu.cpus` / `cpu.mems` must be a list the parent cgroup offers (`avail`, its
/// effective set; not checked when it is unknown).
pub(crate) fn check_cpuset(
    field: &str,
    want: &str,
    avail: Option<&str>,
) -> Result<(), ResourceError> {
    let Some(ranges) = parse_list(want) else {
        return Err(bad(field, format!("{want:?} is not a list like 0-3,5")));
    };
    let Some(have) = avail
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .and_then(parse_list)
    else {
        return Ok(());
    };
    for (a, b) in ranges {
        if !have.iter().any(|(x, y)| *x <= a && b <= *y) {
            let r = if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            };
            return Err(bad(
                field,
                format!(
                    "{r} is not available (the parent cgroup has {})",
                    avail.unwrap_or("").trim()
                ),
            ));
        }
    }
    Ok(())
}

fn dev(d: &LinuxThrottleDevice) -> String {
    format!("{}:{}", d.major(), d.minor())
}

fn throttles(b: &LinuxBlockIo) -> [(&'static str, &'static str, &[LinuxThrottleDevice]); 4] {
    fn l(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or(&[])
    }
    [
        ("read_bps_device", "rbps", l(b.throttle_read_bps_device())),
        ("write_bps_device", "wbps", l(b.throttle_write_bps_device())),
        (
            "read_iops_device",
            "riops",
            l(b.throttle_read_iops_device()),
        ),
        (
            "write_iops_device",
            "wiops",
            l(b.throttle_write_iops_device()),
        ),
    ]
}

/// Page sizes as the kernel names the files: "2MB" -> "2MB", "1GB" -> "1GB", "64KB".
fn hugepage_size(s: &str) -> Result<&str, ResourceError> {
    let ok = s.len() > 2
        && (s.ends_with("KB") || s.ends_with("MB") || s.ends_with("GB"))
        && s[..s.len() - 2].chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(s)
    } else {
        Err(bad(
            "hugepageLimits.pageSize",
            format!("{s:?} is not a page size like 2MB or 1GB"),
        ))
    }
}

fn rdma_value(r: &oci_spec::runtime::LinuxRdma) -> String {
    let mut parts = Vec::new();
    if let Some(h) = r.hca_handles() {
        parts.push(format!("hca_handle={h}"));
    }
    if let Some(o) = r.hca_objects() {
        parts.push(format!("hca_object={o}"));
    }
    parts.join(" ")
}

/// The writes for a v1 hierarchy, in the order they must happen.
pub(crate) fn v1_writes(r: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    check_values(r)?;
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(n) = m.limit() {
            out.push(w("memory", "memory.limit_in_bytes", v1_num(n)));
        }
        if let Some(n) = m.swap() {
            // memsw can only be set at or above the memory limit: after it, for a new cgroup.
            out.push(w("memory", "memory.memsw.limit_in_bytes", v1_num(n)));
        }
        if let Some(n) = m.reservation() {
            out.push(w("memory", "memory.soft_limit_in_bytes", v1_num(n)));
        }
        if let Some(n) = m.kernel_tcp() {
            out.push(w("memory", "memory.kmem.tcp.limit_in_bytes", v1_num(n)));
        }
        if let Some(s) = m.swappiness() {
            out.push(w("memory", "memory.swappiness", s));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            out.push(w("cpu", "cpu.shares", s));
        }
        // The period first: a quota is checked against the period in force.
        if let Some(p) = c.period().filter(|p| *p != 0) {
            out.push(w("cpu", "cpu.cfs_period_us", p));
        }
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            out.push(w("cpu", "cpu.cfs_quota_us", v1_num(q)));
        }
        if let Some(b) = c.burst() {
            out.push(w("cpu", "cpu.cfs_burst_us", b));
        }
        if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
            out.push(w("cpu", "cpu.rt_period_us", p));
        }
        if let Some(q) = c.realtime_runtime().filter(|q| *q != 0) {
            out.push(w("cpu", "cpu.rt_runtime_us", q));
        }
        if let Some(i) = c.idle() {
            out.push(w("cpu", "cpu.idle", i));
        }
        if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", s));
        }
        if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", s));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            out.push(w("pids", "pids.max", v2_num(p.limit())));
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(wt) = b.weight().filter(|w| *w != 0) {
            out.push(w("blkio", "blkio.weight", wt));
        }
        if let Some(wt) = b.leaf_weight().filter(|w| *w != 0) {
            out.push(w("blkio", "blkio.leaf_weight", wt));
        }
        for d in b.weight_device().as_deref().unwrap_or(&[]) {
            let id = format!("{}:{}", d.major(), d.minor());
            if let Some(wt) = d.weight() {
                out.push(w("blkio", "blkio.weight_device", format!("{id} {wt}")));
            }
            if let Some(wt) = d.leaf_weight() {
                out.push(w("blkio", "blkio.leaf_weight_device", format!("{id} {wt}")));
            }
        }
        for (file, _, list) in throttles(b) {
            for d in list {
                out.push(w(
                    "blkio",
                    format!("blkio.throttle.{file}"),
                    format!("{} {}", dev(d), d.rate()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or(&[]) {
        let size = hugepage_size(h.page_size())?;
        out.push(w(
            "hugetlb",
            format!("hugetlb.{size}.limit_in_bytes"),
            v1_num(h.limit()),
        ));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(w("net_cls", "net_cls.classid", id));
        }
        for p in n.priorities().as_deref().unwrap_or(&[]) {
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    if let Some(rdma) = r.rdma() {
        let mut devs: Vec<_> = rdma.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, l) in devs {
            out.push(w("rdma", "rdma.max", format!("{dev} {}", rdma_value(l))));
        }
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        let mut keys: Vec<_> = u.keys().collect();
        keys.sort();
        for k in &keys {
            check_unified_key(k)?;
        }
        return Err(bad(
            &format!("unified.{}", keys[0]),
            "invalid configuration: cannot use unified on cgroup v1",
        ));
    }
    Ok(out)
}

/// A `unified` key must name one interface file of this cgroup.
fn check_unified_key(k: &str) -> Result<(), ResourceError> {
    let field = format!("unified.{k}");
    if k.contains('/') || k.contains('\0') || k.starts_with('.') || !k.contains('.') {
        return Err(bad(
            &field,
            "must be a cgroup interface file name like memory.high",
        ));
    }
    if k.starts_with("cgroup.") {
        let allowed = [
            "cgroup.max.depth",
            "cgroup.max.descendants",
            "cgroup.freeze",
        ];
        if !allowed.contains(&k) {
            return Err(bad(&field, "is managed by berth"));
        }
    }
    Ok(())
}

/// `memory.swap.max` from OCI's memory+swap total (runc's conversion).
fn v2_swap(limit: Option<i64>, swap: i64) -> Result<Option<String>, ResourceError> {
    match (swap, limit) {
        (-1, _) => Ok(Some("max".into())),
        (0, _) => Ok(None),
        (_, Some(-1)) => Ok(Some("max".into())),
        (_, None) | (_, Some(0)) => Err(bad(
            "memory.swap",
            "a memory+swap limit needs a memory limit on cgroup v2",
        )),
        (s, Some(l)) => Ok(Some((s - l).to_string())),
    }
}

/// The writes for a cgroup2 directory. `bfq` says whether io.bfq.weight exists (then the
/// blkio weight is written as is, as runc).
pub(crate) fn v2_writes(r: &LinuxResources, bfq: bool) -> Result<Vec<Write>, ResourceError> {
    check_values(r)?;
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(s) = m.swap() {
            if let Some(v) = v2_swap(m.limit(), s)? {
                out.push(w("", "memory.swap.max", v));
            }
        }
        if let Some(n) = m.limit() {
            out.push(w("", "memory.max", v2_num(n)));
        }
        if let Some(n) = m.reservation() {
            out.push(w("", "memory.low", v2_num(n)));
        }
        if m.swappiness().is_some()
            || m.kernel_tcp().is_some()
            || m.disable_oom_killer() == Some(true)
        {
            // runc ignores these on v2 too: there is no such file.
            crate::logging::debug(
                "linux.resources.memory: swappiness, kernelTCP and disableOOMKiller have no cgroup v2 equivalent; ignored",
            );
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            out.push(w("", "cpu.weight", shares_to_weight(s)));
        }
        let (q, p) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
        if q != 0 || p != 0 {
            let mut v = if q > 0 { q.to_string() } else { "max".into() };
            if p != 0 {
                v.push_str(&format!(" {p}"));
            }
            out.push(w("", "cpu.max", v));
        }
        if let Some(b) = c.burst() {
            out.push(w("", "cpu.max.burst", b));
        }
        if let Some(i) = c.idle() {
            out.push(w("", "cpu.idle", i));
        }
        if c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0)
        {
            return Err(bad(
                "cpu.realtimeRuntime",
                "realtime scheduling limits need cgroup v1",
            ));
        }
        if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("", "cpuset.cpus", s));
        }
        if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("", "cpuset.mems", s));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            out.push(w("", "pids.max", v2_num(p.limit())));
        }
    }
    if let Some(b) = r.block_io() {
        let (file, conv): (&str, fn(u16) -> u64) = if bfq {
            ("io.bfq.weight", u64::from)
        } else {
            ("io.weight", blkio_to_io_weight)
        };
        if let Some(wt) = b.weight().filter(|w| *w != 0) {
            out.push(w("", file, conv(wt)));
        }
        if b.leaf_weight().is_some_and(|w| w != 0) {
            return Err(bad("blockIO.leafWeight", "needs cgroup v1"));
        }
        for d in b.weight_device().as_deref().unwrap_or(&[]) {
            if let Some(wt) = d.weight() {
                out.push(w(
                    "",
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), conv(wt)),
                ));
            }
        }
        for (_, key, list) in throttles(b) {
            for d in list {
                out.push(w("", "io.max", format!("{} {key}={}", dev(d), d.rate())));
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or(&[]) {
        let size = hugepage_size(h.page_size())?;
        out.push(w("", format!("hugetlb.{size}.max"), v2_num(h.limit())));
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(bad(
                "network",
                "classID and priorities need cgroup v1 (net_cls, net_prio)",
            ));
        }
    }
    if let Some(rdma) = r.rdma() {
        let mut devs: Vec<_> = rdma.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, l) in devs {
            out.push(w("", "rdma.max", format!("{dev} {}", rdma_value(l))));
        }
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            check_unified_key(k)?;
            out.push(w("", k.clone(), v));
        }
    }
    Ok(out)
}

fn write_one(path: &Path, value: &str) -> Result<(), ResourceError> {
    // Never O_CREAT: a missing interface file means the kernel lacks it.
    let res = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| io::Write::write_all(&mut f, value.as_bytes()));
    res.map_err(|e| ResourceError::Write {
        path: path.to_path_buf(),
        value: value.into(),
        msg: if e.kind() == io::ErrorKind::NotFound {
            "not supported by this kernel or controller".into()
        } else {
            crate::error::errno_text(&e)
        },
    })
}

/// Applies v1 writes; `dir_of` maps a controller to the container's directory in it.
/// A controller that is not mounted is an error naming it, since the config asked for it.
pub(crate) fn apply_v1(
    writes: &[Write],
    dir_of: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<(), ResourceError> {
    let mut i = 0;
    while i < writes.len() {
        let wr = &writes[i];
        let Some(dir) = dir_of(wr.controller) else {
            return Err(bad(
                field_of(&wr.file),
                format!("the {} cgroup controller is not mounted", wr.controller),
            ));
        };
        let mut path = dir.join(&wr.file);
        // Kernels without CFQ have only the BFQ weight files.
        if wr.file.starts_with("blkio.weight") && !path.exists() {
            path = dir.join(wr.file.replacen("blkio.", "blkio.bfq.", 1));
        }
        match write_one(&path, &wr.value) {
            // A value the kernel checks against its partner's current one is retried
            // after the partner's new value, as runc: memory.limit must drop after memsw,
            // which must stay above it; a shorter CFS (or RT) period with the old quota
            // may exceed the parent's bandwidth until the new quota is in.
            Err(_)
                if written_after(&wr.file).is_some_and(|partner| {
                    writes.get(i + 1).is_some_and(|n| n.file == partner)
                }) =>
            {
                let next = &writes[i + 1];
                write_one(&dir.join(&next.file), &next.value)?;
                write_one(&path, &wr.value)?;
                i += 2;
                continue;
            }
            r => r?,
        }
        i += 1;
    }
    Ok(())
}

/// The v1 file whose new value may have to be written before this one's.
fn written_after(file: &str) -> Option<&'static str> {
    match file {
        "memory.limit_in_bytes" => Some("memory.memsw.limit_in_bytes"),
        "cpu.cfs_period_us" => Some("cpu.cfs_quota_us"),
        "cpu.rt_period_us" => Some("cpu.rt_runtime_us"),
        _ => None,
    }
}

/// Applies v2 writes to one cgroup2 directory.
pub(crate) fn apply_v2(writes: &[Write], dir: &Path) -> Result<(), ResourceError> {
    for wr in writes {
        write_one(&dir.join(&wr.file), &wr.value)?;
    }
    Ok(())
}

fn field_of(file: &str) -> &'static str {
    match file.split('.').next().unwrap_or("") {
        "memory" => "memory",
        "cpu" | "cpuset" => "cpu",
        "pids" => "pids",
        "blkio" | "io" => "blockIO",
        "hugetlb" => "hugepageLimits",
        "net_cls" | "net_prio" => "network",
        "rdma" => "rdma",
        _ => "unified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn pairs(ws: &[Write]) -> Vec<(&str, &str, &str)> {
        ws.iter()
            .map(|w| (w.controller, w.file.as_str(), w.value.as_str()))
            .collect()
    }

    #[test]
    fn v1_table() {
        let r = res(json!({
            "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432,
                       "kernelTCP": 1048576, "swappiness": 10, "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                    "realtimeRuntime": 950, "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 0},
            "pids": {"limit": 64},
            "blockIO": {"weight": 500, "leafWeight": 300,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}
        }));
        assert_eq!(
            pairs(&v1_writes(&r).unwrap()),
            [
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.memsw.limit_in_bytes", "134217728"),
                ("memory", "memory.soft_limit_in_bytes", "33554432"),
                ("memory", "memory.kmem.tcp.limit_in_bytes", "1048576"),
                ("memory", "memory.swappiness", "10"),
                ("memory", "memory.oom_control", "1"),
                ("cpu", "cpu.shares", "512"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
                ("cpu", "cpu.cfs_burst_us", "1000"),
                ("cpu", "cpu.rt_period_us", "1000"),
                ("cpu", "cpu.rt_runtime_us", "950"),
                ("cpu", "cpu.idle", "0"),
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpuset", "cpuset.mems", "0"),
                ("pids", "pids.max", "64"),
                ("blkio", "blkio.weight", "500"),
                ("blkio", "blkio.leaf_weight", "300"),
                ("blkio", "blkio.weight_device", "8:0 600"),
                ("blkio", "blkio.leaf_weight_device", "8:0 200"),
                ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio", "blkio.throttle.write_iops_device", "8:16 100"),
                ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
                ("net_cls", "net_cls.classid", "1048577"),
                ("net_prio", "net_prio.ifpriomap", "eth0 5"),
                ("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ]
        );
    }

    #[test]
    fn v2_table() {
        let r = res(json!({
            "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "1", "idle": 1},
            "pids": {"limit": -1},
            "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "1GB", "limit": -1}],
            "unified": {"memory.high": "50000000", "io.latency": "8:0 target=100"}
        }));
        assert_eq!(
            pairs(&v2_writes(&r, false).unwrap()),
            [
                ("", "memory.swap.max", "67108864"),
                ("", "memory.max", "67108864"),
                ("", "memory.low", "33554432"),
                ("", "cpu.weight", "39"),
                ("", "cpu.max", "50000 100000"),
                ("", "cpu.max.burst", "1000"),
                ("", "cpu.idle", "1"),
                ("", "cpuset.cpus", "1"),
                ("", "pids.max", "max"),
                ("", "io.weight", "4950"),
                ("", "io.weight", "8:0 1"),
                ("", "io.max", "8:0 rbps=1048576"),
                ("", "io.max", "8:0 wiops=100"),
                ("", "hugetlb.1GB.max", "max"),
                ("", "io.latency", "8:0 target=100"),
                ("", "memory.high", "50000000"),
            ]
        );
        // With BFQ the weight is written unconverted.
        let r = res(json!({"blockIO": {"weight": 500}}));
        assert_eq!(
            pairs(&v2_writes(&r, true).unwrap()),
            [("", "io.bfq.weight", "500")]
        );
    }

    #[test]
    fn cpuset_lists_are_checked_against_the_parent() {
        assert!(check_cpuset("cpu.cpus", "0-1", Some("0-1\n")).is_ok());
        assert!(check_cpuset("cpu.cpus", "1,0", Some("0,1")).is_ok());
        assert!(check_cpuset("cpu.cpus", "2-5", Some("0-3,4-7")).is_ok());
        assert!(check_cpuset("cpu.cpus", "9999", None).is_ok());
        let e = check_cpuset("cpu.cpus", "0,4", Some("0-3")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.cpu.cpus: 4 is not available (the parent cgroup has 0-3)"
        );
        let e = check_cpuset("cpu.mems", "0-x", Some("0")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("linux.resources.cpu.mems: \"0-x\" is not a list"));
        for bad in ["", "3-1", "1,,2", "-1", "4294967296"] {
            assert!(
                check_cpuset("cpu.cpus", bad, Some("0-3")).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn negative_counts_other_than_minus_one_are_refused() {
        for (v, field) in [
            (json!({"pids": {"limit": -2}}), "pids.limit"),
            (json!({"memory": {"kernelTCP": -7}}), "memory.kernelTCP"),
            (
                json!({"hugepageLimits": [{"pageSize": "2MB", "limit": -3}]}),
                "hugepageLimits.limit",
            ),
        ] {
            let r = res(v);
            for e in [
                v1_writes(&r).unwrap_err(),
                v2_writes(&r, false).unwrap_err(),
            ] {
                assert!(
                    e.to_string()
                        .starts_with(&format!("linux.resources.{field}: ")),
                    "{e}"
                );
            }
        }
        let r = res(json!({"pids": {"limit": -1}}));
        assert_eq!(
            pairs(&v1_writes(&r).unwrap()),
            [("pids", "pids.max", "max")]
        );
        // On v1 a unified key is named in the error (after the escape check).
        let r = res(json!({"unified": {"memory.high": "1"}}));
        assert_eq!(
            v1_writes(&r).unwrap_err().to_string(),
            "linux.resources.unified.memory.high: invalid configuration: cannot use unified on cgroup v1"
        );
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        // cpu.max: quota without period keeps the kernel's period; -1 quota is max.
        let r = res(json!({"cpu": {"quota": 20000}}));
        assert_eq!(
            pairs(&v2_writes(&r, false).unwrap()),
            [("", "cpu.max", "20000")]
        );
        let r = res(json!({"cpu": {"quota": -1, "period": 50000}}));
        assert_eq!(
            pairs(&v2_writes(&r, false).unwrap()),
            [("", "cpu.max", "max 50000")]
        );
        // swap -1 is unlimited; swap equal to the limit is no swap.
        let r = res(json!({"memory": {"limit": 100, "swap": -1}}));
        assert_eq!(
            pairs(&v2_writes(&r, false).unwrap())[0],
            ("", "memory.swap.max", "max")
        );
        let r = res(json!({"memory": {"limit": 100, "swap": 100}}));
        assert_eq!(
            pairs(&v2_writes(&r, false).unwrap())[0],
            ("", "memory.swap.max", "0")
        );
        let r = res(json!({"memory": {"limit": -1}}));
        assert_eq!(
            pairs(&v1_writes(&r).unwrap()),
            [("memory", "memory.limit_in_bytes", "-1")]
        );
        assert_eq!(
            pairs(&v2_writes(&r, false).unwrap()),
            [("", "memory.max", "max")]
        );
        // pids limit 0 is unset, as runc.
        let r = res(json!({"pids": {"limit": 0}}));
        assert!(v2_writes(&r, false).unwrap().is_empty());
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = |v: serde_json::Value, v2: bool| {
            let r = res(v);
            if v2 {
                v2_writes(&r, false).unwrap_err().to_string()
            } else {
                v1_writes(&r).unwrap_err().to_string()
            }
        };
        for v2 in [false, true] {
            let e = err(json!({"memory": {"limit": 200, "swap": 100}}), v2);
            assert!(e.starts_with("linux.resources.memory.swap: "), "{e}");
            let e = err(json!({"memory": {"swappiness": 101}}), v2);
            assert!(e.starts_with("linux.resources.memory.swappiness: "), "{e}");
            let e = err(json!({"memory": {"limit": -5}}), v2);
            assert!(e.starts_with("linux.resources.memory.limit: "), "{e}");
            let e = err(
                json!({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}),
                v2,
            );
            assert!(
                e.starts_with("linux.resources.hugepageLimits.pageSize: "),
                "{e}"
            );
        }
        let e = err(json!({"unified": {"memory.high": "1"}}), false);
        assert!(
            e.starts_with("linux.resources.unified.memory.high: invalid configuration"),
            "{e}"
        );
        for k in [
            "../../etc/passwd",
            "memory",
            "cgroup.procs",
            "cgroup.subtree_control",
            "a/b.c",
        ] {
            let e = err(json!({"unified": {k: "1"}}), true);
            assert!(
                e.starts_with(&format!("linux.resources.unified.{k}: ")),
                "{e}"
            );
        }
        let e = err(json!({"cpu": {"realtimeRuntime": 5}}), true);
        assert!(
            e.starts_with("linux.resources.cpu.realtimeRuntime: "),
            "{e}"
        );
        let e = err(json!({"network": {"classID": 5}}), true);
        assert!(e.starts_with("linux.resources.network: "), "{e}");
        let e = err(json!({"memory": {"swap": 5}}), true);
        assert!(e.starts_with("linux.resources.memory.swap: "), "{e}");
    }

    /// The rest of the v2 writer against a fake cgroup2 directory: each file ends with
    /// the last value written to it (the kernel takes each write as one rule).
    #[test]
    fn apply_the_rest_to_a_fake_v2_tree() {
        let root = std::env::temp_dir().join(format!("berth-fakecg2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let files = [
            "memory.low",
            "cpu.idle",
            "cpu.max.burst",
            "cpuset.cpus",
            "cpuset.mems",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "hugetlb.1GB.max",
            "rdma.max",
            "memory.high",
        ];
        for f in files {
            std::fs::write(root.join(f), "").unwrap();
        }
        let r = res(json!({
            "memory": {"reservation": 4096},
            "cpu": {"idle": 1, "burst": 5000, "cpus": "0-1", "mems": "0"},
            "blockIO": {"weight": 1000,
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304},
                               {"pageSize": "1GB", "limit": -1}],
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "50000000"}
        }));
        apply_v2(&v2_writes(&r, false).unwrap(), &root).unwrap();
        let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
        for (f, want) in [
            ("memory.low", "4096"),
            ("cpu.idle", "1"),
            ("cpu.max.burst", "5000"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
            ("io.weight", "10000"),
            ("io.max", "8:16 wiops=100"),
            ("hugetlb.2MB.max", "4194304"),
            ("hugetlb.1GB.max", "max"),
            ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ("memory.high", "50000000"),
        ] {
            assert_eq!(read(f), want, "{f}");
        }
        // A unified key is written as is, even where berth has its own field for it.
        let r = res(json!({"unified": {"cpu.idle": "0"}}));
        apply_v2(&v2_writes(&r, false).unwrap(), &root).unwrap();
        assert_eq!(read("cpu.idle"), "0");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Against a fake cgroupfs tree: every file written, and a missing controller named.
    #[test]
    fn apply_to_a_fake_tree() {
        let root = std::env::temp_dir().join(format!("berth-fakecg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "pids.max",
            "cpu.max",
            "cpu.weight",
        ] {
            std::fs::write(root.join(f), "").unwrap();
        }
        let r = res(
            json!({"memory": {"limit": 1000, "swap": 3000}, "pids": {"limit": 7},
                           "cpu": {"shares": 2, "quota": 1000, "period": 2000}}),
        );
        apply_v2(&v2_writes(&r, false).unwrap(), &root).unwrap();
        let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
        assert_eq!(read("memory.max"), "1000");
        assert_eq!(read("memory.swap.max"), "2000");
        assert_eq!(read("pids.max"), "7");
        assert_eq!(read("cpu.max"), "1000 2000");
        assert_eq!(read("cpu.weight"), "1");
        // A file the kernel does not have (hugetlb here) is an error naming the path.
        let r = res(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}));
        let e = apply_v2(&v2_writes(&r, false).unwrap(), &root)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hugetlb.2MB.max") && e.contains("not supported"),
            "{e}"
        );
        let e = apply_v1(&v1_writes(&r).unwrap(), &|_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "linux.resources.hugepageLimits: the hugetlb cgroup controller is not mounted"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
