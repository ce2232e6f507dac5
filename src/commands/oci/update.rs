//! `update`: change a live container's resource limits, from a resources file (or stdin)
//! and runc's single flags (the flags win over the file).

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use serde_json::Value;

use crate::cli::oci::UpdateArgs;
use crate::runtime::update::{merge_resources, update};
use crate::runtime::Globals;

pub(super) fn run(g: &Globals, a: &UpdateArgs) -> Result<i32> {
    let from_file = match &a.resources {
        Some(p) => read_resources(p)?,
        None => LinuxResources::default(),
    };
    let patch = merge_resources(&from_file, &flags_patch(a)?)?;
    update(g, &a.id, &patch)?;
    Ok(0)
}

/// runc's memory sizes: bytes, or a number with a binary k/m/g/t/p suffix ("64m", "1.5g",
/// "512MiB"); "-1" means unlimited.
fn parse_size(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower)
        .trim_end();
    let (num, mult) = match body.chars().last() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let shift = match c {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => 50,
            };
            (body[..body.len() - 1].trim_end(), 1u64 << shift)
        }
        _ => (body, 1),
    };
    let bad = || anyhow!("--{flag}: invalid size {s:?}");
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = v * mult as f64;
    if !(0.0..9.2e18).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// The flags as a resources patch: only the sections (and fields) that were given.
fn flags_patch(a: &UpdateArgs) -> Result<LinuxResources> {
    let size =
        |flag: &str, v: &Option<String>| v.as_deref().map(|v| parse_size(flag, v)).transpose();
    let (limit, reservation, swap) = (
        size("memory", &a.memory)?,
        size("memory-reservation", &a.memory_reservation)?,
        size("memory-swap", &a.memory_swap)?,
    );
    let mut r = LinuxResources::default();
    if limit.is_some() || reservation.is_some() || swap.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit(limit);
        m.set_reservation(reservation);
        m.set_swap(swap);
        r.set_memory(Some(m));
    }
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(a.cpu_shares);
    cpu.set_quota(a.cpu_quota);
    cpu.set_period(a.cpu_period);
    cpu.set_burst(a.cpu_burst);
    cpu.set_realtime_runtime(a.cpu_rt_runtime);
    cpu.set_realtime_period(a.cpu_rt_period);
    cpu.set_cpus(a.cpuset_cpus.clone());
    cpu.set_mems(a.cpuset_mems.clone());
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// `--resources FILE`, or `-` for the standard input: a runtime-spec resources object.
fn read_resources(path: &str) -> Result<LinuxResources> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("--resources: reading standard input")?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("--resources: {path}: {}", crate::error::errno_text(&e)))?;
    }
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("--resources: {path}: invalid JSON: {e}"))?;
    if !v.is_object() {
        bail!("--resources: {path}: must be a JSON object");
    }
    serde_json::from_value(v).map_err(|e| anyhow!("--resources: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_runc() {
        assert_eq!(parse_size("memory", "1024").unwrap(), 1024);
        assert_eq!(parse_size("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("memory", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("memory", "2kb").unwrap(), 2048);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        for bad in ["", "m", "-5", "12x", "1e9", "ten"] {
            let e = parse_size("memory", bad).unwrap_err().to_string();
            assert!(e.starts_with("--memory: invalid size"), "{bad}: {e}");
        }
    }

    #[test]
    fn flags_become_only_the_sections_given() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            pids_limit: Some(20),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(flags_patch(&a).unwrap()).unwrap(),
            serde_json::json!({
                "memory": {"limit": 64 << 20, "swap": -1},
                "cpu": {"cpus": "0"},
                "pids": {"limit": 20},
            })
        );
        let none = flags_patch(&UpdateArgs::default()).unwrap();
        assert_eq!(serde_json::to_value(none).unwrap(), serde_json::json!({}));
    }
}
