//! Resource usage read back from the container's cgroups, in the shape of runc's
//! `events --stats` data, for v1 and v2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::CgroupRecord;

fn read(p: &Path) -> Option<String> {
    crate::sys::read_small(p).ok().map(|s| s.trim().to_string())
}

fn num(p: &Path) -> u64 {
    read(p)
        .and_then(|s| {
            if s == "max" {
                Some(u64::MAX)
            } else {
                s.parse().ok()
            }
        })
        .unwrap_or(0)
}

/// "key value" lines (memory.stat, cpu.stat, memory.events).
pub(crate) fn flat_keyed(p: &Path) -> BTreeMap<String, u64> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// The directory of a v1 controller (its hierarchy's mountpoint name contains it).
pub(crate) fn v1_dir(rec: &CgroupRecord, controller: &str) -> Option<PathBuf> {
    if let Some(d) = rec.v1.get(controller) {
        return Some(d.clone());
    }
    rec.paths
        .iter()
        .find(|p| {
            p.components().nth(4).is_some_and(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .split(',')
                    .any(|n| n == controller)
            }) && p.starts_with("/sys/fs/cgroup")
        })
        .cloned()
        .or_else(|| {
            rec.paths
                .iter()
                .find(|p| {
                    p.join(format!("{controller}.stat")).exists()
                        || p.join(format!("{controller}.usage")).exists()
                })
                .cloned()
        })
}

/// runc's `ioServiceBytesRecursive` from v1 `blkio.*io_service_bytes_recursive` lines
/// (`8:0 Read 4096`, a closing `Total N`).
fn blkio_v1(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, v) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(
                json!({"major": major.parse::<u64>().ok()?, "minor": minor.parse::<u64>().ok()?,
                        "op": op, "value": v.parse::<u64>().ok()?}),
            )
        })
        .collect()
}

/// The same from v2 `io.stat` (`8:0 rbytes=4096 wbytes=0 rios=1 ...`): Read and Write.
fn blkio_v2(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let op = match kv.split_once('=') {
                Some(("rbytes", v)) => ("Read", v),
                Some(("wbytes", v)) => ("Write", v),
                _ => continue,
            };
            if let Ok(v) = op.1.parse::<u64>() {
                out.push(json!({"major": major, "minor": minor, "op": op.0, "value": v}));
            }
        }
    }
    out
}

/// The throttle file counts every device even without CFQ/BFQ (what Docker reads first);
/// the scheduler's file where the throttle one is missing.
///
/// A controller's files are the same in every cgroup of its hierarchy, and kernels since
/// 5.0 (no CFQ) have no scheduler file: once missing, not looked for again by this process
/// (`stats` reads every container's, at every sample).
fn blkio_v1_of(rec: &CgroupRecord) -> Vec<Value> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static NO_SCHED_FILE: AtomicBool = AtomicBool::new(false);
    v1_dir(rec, "blkio")
        .and_then(|d| {
            read(&d.join("blkio.throttle.io_service_bytes_recursive"))
                .filter(|t| t.lines().count() > 1)
                .or_else(|| {
                    if NO_SCHED_FILE.load(Ordering::Relaxed) {
                        return None;
                    }
                    let p = d.join("blkio.io_service_bytes_recursive");
                    match crate::sys::read_small(&p) {
                        Ok(t) => Some(t.trim().to_string()),
                        Err(e) => {
                            // (The host's hierarchies only: not a tree a test made.)
                            if e.kind() == std::io::ErrorKind::NotFound
                                && d.starts_with("/sys/fs/cgroup")
                            {
                                NO_SCHED_FILE.store(true, Ordering::Relaxed);
                            }
                            None
                        }
                    }
                })
        })
        .map(|t| blkio_v1(&t))
        .unwrap_or_default()
}

fn is_v1(rec: &CgroupRecord) -> bool {
    rec.freezer.is_some()
}

pub(crate) fn stats(rec: &CgroupRecord) -> Value {
    if is_v1(rec) {
        let mem = v1_dir(rec, "memory");
        let cpu = v1_dir(rec, "cpuacct");
        let pids = v1_dir(rec, "pids");
        let blkio = blkio_v1_of(rec);
        let m = |f: &str| mem.as_ref().map(|d| num(&d.join(f))).unwrap_or(0);
        let percpu: Vec<u64> = cpu
            .as_ref()
            .and_then(|d| read(&d.join("cpuacct.usage_percpu")))
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let cpustat = cpu
            .as_ref()
            .map(|d| flat_keyed(&d.join("cpuacct.stat")))
            .unwrap_or_default();
        // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
        let tick = 10_000_000u64;
        json!({
            "cpu": {"usage": {
                "total": cpu.as_ref().map(|d| num(&d.join("cpuacct.usage"))).unwrap_or(0),
                "percpu": percpu,
                "kernel": cpustat.get("system").copied().unwrap_or(0) * tick,
                "user": cpustat.get("user").copied().unwrap_or(0) * tick,
            }, "throttling": {}},
            "memory": {
                "usage": {"limit": m("memory.limit_in_bytes"), "usage": m("memory.usage_in_bytes"), "max": m("memory.max_usage_in_bytes"), "failcnt": m("memory.failcnt")},
                "swap": {"limit": m("memory.memsw.limit_in_bytes"), "usage": m("memory.memsw.usage_in_bytes"), "max": m("memory.memsw.max_usage_in_bytes"), "failcnt": m("memory.memsw.failcnt")},
                "raw": mem.as_ref().map(|d| flat_keyed(&d.join("memory.stat"))).unwrap_or_default(),
            },
            "pids": {"current": pids.as_ref().map(|d| num(&d.join("pids.current"))).unwrap_or(0), "limit": pids.as_ref().map(|d| num(&d.join("pids.max"))).unwrap_or(0)},
            "blkio": {"ioServiceBytesRecursive": blkio},
            "hugetlb": {},
        })
    } else {
        let Some(d) = rec.unified.as_ref() else {
            return json!({});
        };
        let cpu = flat_keyed(&d.join("cpu.stat"));
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
        json!({
            "cpu": {"usage": {"total": g("usage_usec"), "kernel": g("system_usec"), "user": g("user_usec")},
                    "throttling": {"periods": cpu.get("nr_periods"), "throttled_periods": cpu.get("nr_throttled"), "throttled_time": g("throttled_usec")}},
            "memory": {
                "usage": {"limit": num(&d.join("memory.max")), "usage": num(&d.join("memory.current")), "max": num(&d.join("memory.peak"))},
                "swap": {"limit": num(&d.join("memory.swap.max")), "usage": num(&d.join("memory.swap.current"))},
                "raw": flat_keyed(&d.join("memory.stat")),
            },
            "pids": {"current": num(&d.join("pids.current")), "limit": num(&d.join("pids.max"))},
            "blkio": {"ioServiceBytesRecursive": blkio_v2(&read(&d.join("io.stat")).unwrap_or_default())},
            "hugetlb": {},
        })
    }
}

/// What `stats` shows of a container, in the shape of [`stats`] but from only the files
/// those figures come from (CPU time, memory usage, limit and page cache, pids, block
/// I/O): a third of the reads, for every container at every sample.
pub(crate) fn brief(rec: &CgroupRecord) -> Value {
    if is_v1(rec) {
        let mem = v1_dir(rec, "memory");
        let m = |f: &str| mem.as_ref().map(|d| num(&d.join(f))).unwrap_or(0);
        let cpu = v1_dir(rec, "cpuacct").map_or(0, |d| num(&d.join("cpuacct.usage")));
        json!({
            "cpu": {"usage": {"total": cpu}},
            "memory": {
                "usage": {"limit": m("memory.limit_in_bytes"), "usage": m("memory.usage_in_bytes")},
                "raw": mem.as_ref().map(|d| inactive_file(&d.join("memory.stat"))).unwrap_or_default(),
            },
            "pids": {"current": v1_dir(rec, "pids").map_or(0, |d| num(&d.join("pids.current")))},
            "blkio": {"ioServiceBytesRecursive": blkio_v1_of(rec)},
        })
    } else {
        let Some(d) = rec.unified.as_ref() else {
            return json!({});
        };
        let cpu = flat_keyed(&d.join("cpu.stat"));
        json!({
            "cpu": {"usage": {"total": cpu.get("usage_usec").copied().unwrap_or(0) * 1000}},
            "memory": {
                "usage": {"limit": num(&d.join("memory.max")), "usage": num(&d.join("memory.current"))},
                "raw": inactive_file(&d.join("memory.stat")),
            },
            "pids": {"current": num(&d.join("pids.current"))},
            "blkio": {"ioServiceBytesRecursive": blkio_v2(&read(&d.join("io.stat")).unwrap_or_default())},
        })
    }
}

/// Of memory.stat, what `stats` subtracts from the usage (v1 `total_inactive_file`, v2
/// `inactive_file`): not a map of its forty-odd keys for every container.
fn inactive_file(p: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in read(p).unwrap_or_default().lines() {
        let mut it = l.split_whitespace();
        if let (Some(k @ ("total_inactive_file" | "inactive_file")), Some(v)) =
            (it.next(), it.next())
        {
            if let Ok(v) = v.parse() {
                out.insert(k.to_string(), v);
            }
        }
    }
    out
}

/// The OOM-kill counter (v1 memory.oom_control "oom_kill", v2 memory.events "oom_kill").
pub(crate) fn oom_kills(rec: &CgroupRecord) -> u64 {
    if is_v1(rec) {
        v1_dir(rec, "memory")
            .map(|d| {
                flat_keyed(&d.join("memory.oom_control"))
                    .get("oom_kill")
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    } else {
        rec.unified
            .as_ref()
            .map(|d| {
                flat_keyed(&d.join("memory.events"))
                    .get("oom_kill")
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn v2_stats_from_a_fake_tree() {
        let d = std::env::temp_dir().join(format!("berth-stats-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n").unwrap();
        fs::write(d.join("memory.current"), "4096\n").unwrap();
        fs::write(d.join("memory.max"), "max\n").unwrap();
        fs::write(
            d.join("memory.stat"),
            "anon 100\nfile 200\ninactive_file 50\n",
        )
        .unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        fs::write(d.join("pids.current"), "3\n").unwrap();
        fs::write(d.join("pids.max"), "64\n").unwrap();
        fs::write(
            d.join("io.stat"),
            "8:0 rbytes=1048576 wbytes=4096 rios=3 wios=1 dbytes=0 dios=0\n",
        )
        .unwrap();
        let rec = CgroupRecord {
            unified: Some(d.clone()),
            paths: vec![d.clone()],
            ..Default::default()
        };
        let s = stats(&rec);
        assert_eq!(s["cpu"]["usage"]["total"], 1_500_000);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["usage"]["limit"], u64::MAX);
        assert_eq!(s["memory"]["raw"]["file"], 200);
        assert_eq!(s["pids"]["current"], 3);
        assert_eq!(oom_kills(&rec), 1);
        let io = &s["blkio"]["ioServiceBytesRecursive"];
        assert_eq!(
            io[0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 1048576})
        );
        assert_eq!(io[1]["op"], "Write");
        assert_eq!(io[1]["value"], 4096);
        same_in_brief(&rec);
        fs::remove_dir_all(&d).unwrap();
    }

    /// What `stats` shows reads the same from [`brief`] as from [`stats`].
    fn same_in_brief(rec: &CgroupRecord) {
        let (full, b) = (stats(rec), brief(rec));
        for p in [
            "/cpu/usage/total",
            "/memory/usage/usage",
            "/memory/usage/limit",
            "/memory/raw/total_inactive_file",
            "/memory/raw/inactive_file",
            "/pids/current",
            "/blkio/ioServiceBytesRecursive",
        ] {
            assert_eq!(full.pointer(p), b.pointer(p), "{p}");
        }
        for p in ["/cpu/usage/total", "/memory/usage/usage", "/pids/current"] {
            assert!(b.pointer(p).is_some(), "{p}");
        }
        let inactive = |v: &Value| {
            v.pointer("/memory/raw/total_inactive_file")
                .or_else(|| v.pointer("/memory/raw/inactive_file"))
                .cloned()
        };
        assert!(inactive(&b).is_some());
    }

    #[test]
    fn v1_brief_from_a_fake_tree() {
        let d = std::env::temp_dir().join(format!("berth-stats-v1-{}", std::process::id()));
        let mut v1 = BTreeMap::new();
        for (ctrl, files) in [
            (
                "cpuacct",
                vec![
                    ("cpuacct.usage", "2500000\n"),
                    ("cpuacct.stat", "user 1\nsystem 2\n"),
                ],
            ),
            (
                "memory",
                vec![
                    ("memory.usage_in_bytes", "8192\n"),
                    ("memory.limit_in_bytes", "67108864\n"),
                    ("memory.stat", "cache 4096\ntotal_inactive_file 1024\n"),
                ],
            ),
            ("pids", vec![("pids.current", "2\n")]),
            (
                "blkio",
                vec![
                    ("blkio.throttle.io_service_bytes_recursive", "Total 0\n"),
                    (
                        "blkio.io_service_bytes_recursive",
                        "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
                    ),
                ],
            ),
            ("freezer", vec![]),
        ] {
            let c = d.join(ctrl);
            fs::create_dir_all(&c).unwrap();
            for (f, t) in files {
                fs::write(c.join(f), t).unwrap();
            }
            v1.insert(ctrl.to_string(), c);
        }
        let rec = CgroupRecord {
            freezer: Some(d.join("freezer")),
            paths: v1.values().cloned().collect(),
            v1,
            ..Default::default()
        };
        let b = brief(&rec);
        assert_eq!(b["cpu"]["usage"]["total"], 2_500_000);
        assert_eq!(b["memory"]["usage"]["limit"], 67_108_864);
        assert_eq!(b["memory"]["raw"]["total_inactive_file"], 1024);
        assert_eq!(b["pids"]["current"], 2);
        // The scheduler's file where the throttle one counts nothing.
        assert_eq!(b["blkio"]["ioServiceBytesRecursive"][0]["value"], 4096);
        same_in_brief(&rec);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn v1_blkio_lines() {
        let v = blkio_v1("8:0 Read 512\n8:0 Write 1024\n8:0 Sync 0\nTotal 1536\n");
        assert_eq!(v.len(), 3);
        assert_eq!(
            v[1],
            json!({"major": 8, "minor": 0, "op": "Write", "value": 1024})
        );
    }
}
