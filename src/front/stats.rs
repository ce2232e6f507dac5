//! `stats`: a container's resource usage as Docker computes and prints it. Memory, CPU,
//! pids and block I/O come from its cgroups (v1, v2 or hybrid, read by the runtime),
//! network I/O from its network namespace (`/proc/PID/net/dev`), CPU % from two samples
//! against the host's own CPU time (`/proc/stat`), as Docker's daemon and client do.
//!
//! `--no-stream` answers from one reading, as podman does, instead of Docker's second
//! sample a second later: CPU % is measured against the last sample a `stats` took of the
//! container (kept in `RUNROOT/containers/<id>/stats.last`) when that one is recent,
//! otherwise averaged over the container's life since it started.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::front::containers::{runtime as rt, short, Container, Store};
use crate::front::units;

/// One reading of a running container.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sample {
    /// The container's CPU time, ns.
    pub(crate) cpu: u64,
    /// The host's CPU time (every CPU, every state but idle and iowait), ns.
    pub(crate) system: u64,
    pub(crate) online_cpus: u32,
    /// Usage without the inactive page cache (Docker's client subtracts it).
    pub(crate) mem: u64,
    pub(crate) mem_limit: u64,
    pub(crate) net_rx: u64,
    pub(crate) net_tx: u64,
    pub(crate) blk_read: u64,
    pub(crate) blk_write: u64,
    pub(crate) pids: u64,
    /// The init's host pid, and when the sample was taken (ns since the epoch).
    pub(crate) pid: i32,
    pub(crate) at: u64,
}

/// `/proc/stat`'s first line as nanoseconds, and how many CPUs it lists (Docker's
/// `system_cpu_usage` and `online_cpus`).
pub(crate) fn host_cpu(stat: &str) -> (u64, u32) {
    let mut total = 0u64;
    let mut cpus = 0u32;
    for l in stat.lines() {
        let mut it = l.split_whitespace();
        match it.next() {
            Some("cpu") => {
                // user nice system idle iowait irq softirq steal: guest time is in user.
                total = it.take(8).filter_map(|x| x.parse::<u64>().ok()).sum();
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    // USER_HZ is 100 on every Linux ABI berth builds for.
    (total.saturating_mul(10_000_000), cpus.max(1))
}

/// Received and sent bytes over every interface but the loopback (`/proc/PID/net/dev`).
pub(crate) fn net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// The host's memory (`MemTotal`), bytes: Docker shows it as the limit of a container
/// without one.
pub(crate) fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A sample from runc-shaped cgroup data (see `cgroups::stats`).
pub(crate) fn from_cgroup(data: &Value, host_mem: u64) -> Sample {
    let n = |p: &str| data.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let usage = n("/memory/usage/usage");
    // Docker's client: v1 subtracts total_inactive_file, v2 inactive_file, when smaller.
    let inactive = data
        .pointer("/memory/raw/total_inactive_file")
        .or_else(|| data.pointer("/memory/raw/inactive_file"))
        .and_then(Value::as_u64)
        .filter(|&i| i < usage)
        .unwrap_or(0);
    let mut limit = n("/memory/usage/limit");
    if host_mem > 0 && (limit == 0 || limit > host_mem) {
        limit = host_mem;
    }
    let (mut rd, mut wr) = (0u64, 0u64);
    for e in data
        .pointer("/blkio/ioServiceBytesRecursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let v = e["value"].as_u64().unwrap_or(0);
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += v,
            Some("write") => wr += v,
            _ => {}
        }
    }
    Sample {
        cpu: n("/cpu/usage/total"),
        mem: usage - inactive,
        mem_limit: limit,
        blk_read: rd,
        blk_write: wr,
        pids: n("/pids/current"),
        ..Default::default()
    }
}

/// What every sample of one round shares: the host's figures, read once.
pub(crate) struct Host {
    mem: u64,
    cpu: u64,
    cpus: u32,
    own_net: Option<PathBuf>,
}

impl Host {
    pub(crate) fn now() -> Host {
        let (cpu, cpus) = host_cpu(&rt::read_small("/proc/stat").unwrap_or_default());
        Host {
            mem: host_memory(),
            cpu,
            cpus,
            own_net: std::fs::read_link("/proc/self/ns/net").ok(),
        }
    }
}

fn epoch_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads a running container now; None when it is not running (or stops meanwhile).
pub(crate) fn sample(store: &Store, c: &Container, host: &Host) -> Option<Sample> {
    let (pid, data) = rt::stats(&store.rt, &c.rec.id)?;
    let mut s = from_cgroup(&data, host.mem);
    s.system = host.cpu;
    s.online_cpus = host.cpus;
    s.pid = pid;
    s.at = epoch_ns(SystemTime::now());
    // A container in the host's network namespace has no interfaces of its own: Docker
    // shows no network I/O for it.
    let own_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    if own_net.is_some() && own_net != host.own_net {
        if let Ok(t) = rt::read_small(format!("/proc/{pid}/net/dev")) {
            (s.net_rx, s.net_tx) = net_dev(&t);
        }
    }
    Some(s)
}

/// Docker's `calculateCPUPercentUnix`: the container's share of the host's CPU time
/// between two samples, times the CPUs.
pub(crate) fn cpu_percent(prev: &Sample, cur: &Sample) -> f64 {
    let cpu = cur.cpu.saturating_sub(prev.cpu) as f64;
    let sys = cur.system.saturating_sub(prev.system) as f64;
    if cpu > 0.0 && sys > 0.0 {
        cpu / sys * cur.online_cpus as f64 * 100.0
    } else {
        0.0
    }
}

/// A sample kept for the next `--no-stream` is used at this age at the earliest (a shorter
/// window is mostly the host's 10 ms tick) and at the latest (an older one says little of
/// now; the lifetime average says as much).
const LAST_MIN_AGE: Duration = Duration::from_millis(100);
const LAST_MAX_AGE: Duration = Duration::from_secs(60);
const LAST_FILE: &str = "stats.last";

/// What `stats` keeps of its last sample of a container: `pid cpu system at`.
fn last_text(s: &Sample) -> String {
    format!("{} {} {} {}\n", s.pid, s.cpu, s.system, s.at)
}

fn parse_last(text: &str) -> Option<Sample> {
    let mut it = text.split_whitespace();
    let mut n = || it.next()?.parse::<u64>().ok();
    let pid = i32::try_from(n()?).ok()?;
    Some(Sample {
        pid,
        cpu: n()?,
        system: n()?,
        at: n()?,
        ..Default::default()
    })
}

fn last_path(store: &Store, id: &str) -> PathBuf {
    store.run_dir(id).join(LAST_FILE)
}

/// The last sample `stats` kept of the container, if any.
pub(crate) fn load_last(store: &Store, id: &str) -> Option<Sample> {
    parse_last(&rt::read_small(last_path(store, id)).ok()?)
}

/// Keeps `s` for the next `stats --no-stream`: temp file and rename, so that concurrent
/// `stats` never read half of one; a failure only costs the next one its delta. A kept
/// sample younger than [`LAST_MIN_AGE`] stays, so that calls in quick succession still
/// measure over a useful window.
pub(crate) fn save_last(store: &Store, id: &str, s: &Sample, kept: Option<&Sample>) {
    if kept.is_some_and(|k| {
        k.pid == s.pid && s.at.saturating_sub(k.at) < LAST_MIN_AGE.as_nanos() as u64
    }) {
        return;
    }
    let path = last_path(store, id);
    let tmp = path.with_file_name(format!(".{LAST_FILE}.{}", std::process::id()));
    if std::fs::write(&tmp, last_text(s)).is_err() || std::fs::rename(&tmp, &path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// CPU % from one reading: over the window since `last` when it is of the same init and
/// its age is between [`LAST_MIN_AGE`] and [`LAST_MAX_AGE`], otherwise the container's
/// CPU time over its life since `started` (what podman's first sample shows).
pub(crate) fn cpu_once(cur: &Sample, last: Option<&Sample>, started: Option<SystemTime>) -> f64 {
    let age = |at: u64| Duration::from_nanos(cur.at.saturating_sub(at));
    if let Some(l) = last.filter(|l| {
        l.pid == cur.pid
            && l.at < cur.at
            && (LAST_MIN_AGE..=LAST_MAX_AGE).contains(&age(l.at))
            && l.cpu <= cur.cpu
            && l.system < cur.system
    }) {
        return cpu_percent(l, cur);
    }
    let Some(life) = started.map(|t| age(epoch_ns(t))).filter(|d| !d.is_zero()) else {
        return 0.0;
    };
    cur.cpu as f64 / life.as_nanos() as f64 * 100.0
}

/// One row of the table (the fields `--format` templates use, as Docker names them).
/// `cur` None: the container is not running (zeros, as Docker shows it).
pub(crate) fn row(
    c: &Container,
    as_typed: &str,
    cpu: f64,
    cur: Option<&Sample>,
    trunc: bool,
) -> Value {
    let zero = Sample::default();
    let s = cur.unwrap_or(&zero);
    let mem_perc = if s.mem_limit > 0 {
        s.mem as f64 / s.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    let dec = |x: u64| units::human_size_with_precision(x as f64, 3);
    let id = if trunc {
        short(&c.rec.id).to_string()
    } else {
        c.rec.id.clone()
    };
    json!({
        "Container": as_typed,
        "Name": c.rec.name,
        "ID": id,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", units::bytes_size(s.mem as f64), units::bytes_size(s.mem_limit as f64)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", dec(s.net_rx), dec(s.net_tx)),
        "BlockIO": format!("{} / {}", dec(s.blk_read), dec(s.blk_write)),
        "PIDs": s.pids.to_string(),
    })
}

/// The column headers of the default table and of templates naming these fields.
pub(crate) fn headers() -> Value {
    json!({
        "Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

pub(crate) const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_and_net_dev() {
        let (t, n) = host_cpu(
            "cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 50 0 25 500 5 0 0 0 0 0\ncpu1 50 0 25 500 5 0 0 0 0 0\nintr 1\n",
        );
        assert_eq!(t, 1160 * 10_000_000);
        assert_eq!(n, 2);
        let dev = "Inter-|   Receive  |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo:  500 5 0 0 0 0 0 0  500 5 0 0 0 0 0 0\n  eth0: 1200000 10 0 0 0 0 0 0 3400 4 0 0 0 0 0 0\n";
        assert_eq!(net_dev(dev), (1_200_000, 3400));
    }

    #[test]
    fn docker_columns_from_v1_and_v2_data() {
        let v1 = json!({"cpu": {"usage": {"total": 2_000_000_000u64}},
            "memory": {"usage": {"usage": 10u64 << 20, "limit": 64u64 << 20},
                       "raw": {"total_inactive_file": 2u64 << 20}},
            "pids": {"current": 3},
            "blkio": {"ioServiceBytesRecursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 1_200_000},
                {"major": 8, "minor": 0, "op": "Write", "value": 4096},
                {"major": 8, "minor": 0, "op": "Total", "value": 1_204_096}]}});
        let mut cur = from_cgroup(&v1, 8 << 30);
        assert_eq!(cur.mem, 8 << 20);
        assert_eq!(cur.mem_limit, 64 << 20);
        cur.system = 4_000_000_000;
        cur.online_cpus = 2;
        let prev = Sample {
            cpu: 1_000_000_000,
            system: 2_000_000_000,
            ..cur.clone()
        };
        // One of the host's 2 s of CPU time over 2 CPUs: 100% of one CPU.
        assert_eq!(cpu_percent(&prev, &cur), 100.0);
        let c = Container {
            rec: crate::front::containers::Record {
                id: "a".repeat(64),
                name: "web".into(),
                ..Default::default()
            },
            state: Default::default(),
        };
        let r = row(&c, "web", cpu_percent(&prev, &cur), Some(&cur), true);
        assert_eq!(r["ID"], "aaaaaaaaaaaa");
        assert_eq!(r["CPUPerc"], "100.00%");
        assert_eq!(r["MemUsage"], "8MiB / 64MiB");
        assert_eq!(r["MemPerc"], "12.50%");
        assert_eq!(r["BlockIO"], "1.2MB / 4.1kB");
        assert_eq!(r["NetIO"], "0B / 0B");
        assert_eq!(r["PIDs"], "3");
        // v2: no limit (max) reads as the host's memory; inactive_file subtracted.
        let v2 = json!({"memory": {"usage": {"usage": 3u64 << 29, "limit": u64::MAX},
            "raw": {"inactive_file": 1u64 << 29}}});
        let s = from_cgroup(&v2, 2 << 30);
        assert_eq!(s.mem_limit, 2 << 30);
        let r = row(&c, "web", 0.0, Some(&s), false);
        assert_eq!(r["MemUsage"], "1GiB / 2GiB");
        assert_eq!(r["ID"], "a".repeat(64));
        let stopped = row(&c, "web", 0.0, None, true);
        assert_eq!(stopped["PIDs"], "0");
        assert_eq!(stopped["MemUsage"], "0B / 0B");
        assert_eq!(stopped["CPUPerc"], "0.00%");
    }

    #[test]
    fn one_reading_against_the_kept_sample_or_the_lifetime() {
        let sec = 1_000_000_000u64;
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let cur = Sample {
            pid: 7,
            cpu: 4 * sec,
            system: 100 * sec,
            online_cpus: 2,
            at: 1010 * sec,
            ..Default::default()
        };
        // No kept sample: 4 s of CPU over 10 s of life.
        assert_eq!(cpu_once(&cur, None, Some(start)), 40.0);
        assert_eq!(cpu_once(&cur, None, None), 0.0);
        // A kept one 2 s old: 1 s of CPU over the host's 4 s (2 CPUs): 50%.
        let last = Sample {
            pid: 7,
            cpu: 3 * sec,
            system: 96 * sec,
            at: 1008 * sec,
            ..Default::default()
        };
        assert_eq!(cpu_once(&cur, Some(&last), Some(start)), 50.0);
        // Another init (a restart), too old, too young, or counters gone back: the lifetime.
        for l in [
            Sample {
                pid: 8,
                ..last.clone()
            },
            Sample {
                at: 900 * sec,
                ..last.clone()
            },
            Sample {
                at: 1010 * sec - 1000,
                ..last.clone()
            },
            Sample {
                cpu: 5 * sec,
                ..last.clone()
            },
        ] {
            assert_eq!(cpu_once(&cur, Some(&l), Some(start)), 40.0, "{l:?}");
        }
        assert_eq!(parse_last(&last_text(&last)), Some(last));
        assert_eq!(parse_last("7 1 2"), None);
        assert_eq!(parse_last("-1 1 2 3"), None);
    }

    #[test]
    fn a_v2_cgroup_tree_end_to_end() {
        let d = std::env::temp_dir().join(format!("berth-front-stats-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let w = |f: &str, t: &str| std::fs::write(d.join(f), t).unwrap();
        w(
            "cpu.stat",
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        );
        w("memory.current", "73400320\n");
        w("memory.max", "1610612736\n");
        w(
            "memory.stat",
            "anon 50331648\nfile 23068672\ninactive_file 20971520\n",
        );
        w("pids.current", "7\n");
        w("pids.max", "max\n");
        w("io.stat", "8:0 rbytes=1200000 wbytes=0 rios=10 wios=0\n259:0 rbytes=34000 wbytes=5000000 rios=1 wios=9\n");
        let rec = crate::cgroups::CgroupRecord {
            unified: Some(d.clone()),
            paths: vec![d.clone()],
            ..Default::default()
        };
        let s = from_cgroup(&crate::cgroups::stats::stats(&rec), 16 << 30);
        assert_eq!(s.cpu, 2_500_000_000);
        let c = Container {
            rec: crate::front::containers::Record {
                id: "b".repeat(64),
                name: "v2".into(),
                ..Default::default()
            },
            state: Default::default(),
        };
        let r = row(&c, "v2", 0.0, Some(&s), true);
        assert_eq!(r["MemUsage"], "50MiB / 1.5GiB");
        assert_eq!(r["MemPerc"], "3.26%");
        assert_eq!(r["BlockIO"], "1.23MB / 5MB");
        assert_eq!(r["PIDs"], "7");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
