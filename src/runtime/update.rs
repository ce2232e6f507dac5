//! `update`: change a live container's cgroup limits, from a resources file (or stdin) and
//! runc's single flags, then keep the merged resources in the state's config copy.

use std::io::Read;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxResources, Spec};
use serde_json::{json, Map, Value};

use super::{ops, Globals};
use crate::cgroups::manager;
use crate::cli::oci::UpdateArgs;
use crate::state::{self, Status};

/// runc's memory sizes: bytes, or a number with a binary k/m/g/t/p suffix ("64m", "1.5g",
/// "512MiB"); "-1" means unlimited.
pub(crate) fn parse_size(flag: &str, s: &str) -> Result<i64> {
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
    let bad = || anyhow::anyhow!("--{flag}: invalid size {s:?}");
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

/// The flags as a resources JSON fragment (only what was given).
fn flags_to_json(a: &UpdateArgs) -> Result<Value> {
    let mut mem = Map::new();
    for (flag, key, v) in [
        ("memory", "limit", &a.memory),
        ("memory-reservation", "reservation", &a.memory_reservation),
        ("memory-swap", "swap", &a.memory_swap),
    ] {
        if let Some(v) = v {
            mem.insert(key.into(), json!(parse_size(flag, v)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", a.cpu_shares.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("burst", a.cpu_burst.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("cpus", a.cpuset_cpus.clone().map(Value::String));
    put("mems", a.cpuset_mems.clone().map(Value::String));
    let mut out = Map::new();
    if !mem.is_empty() {
        out.insert("memory".into(), Value::Object(mem));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit {
        out.insert("pids".into(), json!({ "limit": p }));
    }
    if let Some(w) = a.blkio_weight {
        out.insert("blockIO".into(), json!({ "weight": w }));
    }
    Ok(Value::Object(out))
}

/// Objects merge key by key; anything else in `over` replaces what `base` had.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn read_resources(path: &str) -> Result<Value> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("--resources: reading standard input")?;
    } else {
        text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("--resources: {path}: {}", crate::error::errno_text(&e))
        })?;
    }
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("--resources: {path}: invalid JSON: {e}"))?;
    if !v.is_object() {
        bail!("--resources: {path}: must be a JSON object");
    }
    Ok(v)
}

pub(crate) fn update(g: &Globals, a: &UpdateArgs) -> Result<()> {
    let mut over = match &a.resources {
        Some(p) => read_resources(p)?,
        None => json!({}),
    };
    merge(&mut over, &flags_to_json(a)?);
    let (dir, _lock, rec) = ops::open(g, &a.id)?;
    match dir.status(&rec) {
        Status::Created | Status::Running | Status::Paused => {}
        _ => bail!("container not running"),
    }
    let config_path = dir.path.join("config.json");
    let mut spec: Value = serde_json::from_slice(
        &std::fs::read(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .with_context(|| format!("parsing {}", config_path.display()))?;
    let mut merged = spec
        .pointer("/linux/resources")
        .cloned()
        .unwrap_or_else(|| json!({}));
    merge(&mut merged, &over);
    let merged_res: LinuxResources =
        serde_json::from_value(merged.clone()).map_err(|e| anyhow::anyhow!("--resources: {e}"))?;
    // Only the sections the caller touched are written; each with its merged values, so
    // that a new memory limit is checked against the swap limit already in place.
    let mut touched = Map::new();
    if let Value::Object(o) = &over {
        for k in o.keys() {
            if let Some(v) = merged.get(k) {
                touched.insert(k.clone(), v.clone());
            }
        }
    }
    if touched.contains_key("devices") {
        crate::logging::warn("update: device rules are not changed on a live container");
        touched.remove("devices");
    }
    let part: LinuxResources = serde_json::from_value(Value::Object(touched))
        .map_err(|e| anyhow::anyhow!("--resources: {e}"))?;
    if !rec.cgroup.paths.is_empty() {
        manager::update_resources(&rec.cgroup, &part)?;
    } else if !over.as_object().is_some_and(Map::is_empty) {
        bail!("container has no cgroup to update (rootless without delegation)");
    }
    // Kept so that later updates merge with what is in force.
    let spec_res = serde_json::to_value(&merged_res)?;
    if let Some(l) = spec.get_mut("linux").and_then(Value::as_object_mut) {
        l.insert("resources".into(), spec_res);
    } else if let Some(top) = spec.as_object_mut() {
        top.insert("linux".into(), json!({ "resources": spec_res }));
    }
    // Validates that the result is still a Spec before it replaces the copy.
    let _: Spec = serde_json::from_value(spec.clone()).context("updated config")?;
    state::write_atomic(&config_path, &serde_json::to_vec(&spec)?, 0o600)?;
    Ok(())
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
    fn merge_keeps_untouched_keys() {
        let mut base = json!({"memory": {"limit": 10, "swap": 20}, "pids": {"limit": 5}});
        merge(
            &mut base,
            &json!({"memory": {"limit": 15}, "cpu": {"shares": 2}}),
        );
        assert_eq!(
            base,
            json!({"memory": {"limit": 15, "swap": 20}, "pids": {"limit": 5}, "cpu": {"shares": 2}})
        );
    }
}
