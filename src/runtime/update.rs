//! `update`: change a live container's cgroup limits with a resources patch, then keep the
//! merged resources in the state's config copy.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxResources, Spec};
use serde_json::{json, Map, Value};

use super::{ops, Globals};
use crate::cgroups::manager;
use crate::state::{self, Status};

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

/// `over` merged into `base`: the sections `over` has are merged field by field (what it
/// leaves unset stays as `base` has it); lists are replaced whole.
pub(crate) fn merge_resources(
    base: &LinuxResources,
    over: &LinuxResources,
) -> Result<LinuxResources> {
    let mut merged = serde_json::to_value(base)?;
    merge(&mut merged, &serde_json::to_value(over)?);
    serde_json::from_value(merged).map_err(|e| anyhow::anyhow!("linux.resources: {e}"))
}

/// Applies `patch` to a created, running or paused container. Only the sections the patch
/// has are written, each with its merged values, so that a new memory limit is checked
/// against the swap limit already in place.
pub(crate) fn update(g: &Globals, id: &str, patch: &LinuxResources) -> Result<()> {
    let (dir, _lock, rec) = ops::open(g, id)?;
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
    let in_force: LinuxResources = match spec.pointer("/linux/resources") {
        Some(r) => serde_json::from_value(r.clone())
            .with_context(|| format!("parsing {}", config_path.display()))?,
        None => LinuxResources::default(),
    };
    let patch = &unlimited_memory_lifts_swap(&in_force, patch);
    let merged_res = merge_resources(&in_force, patch)?;
    let merged = serde_json::to_value(&merged_res)?;
    let over = serde_json::to_value(patch)?;
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
        .map_err(|e| anyhow::anyhow!("linux.resources: {e}"))?;
    if !rec.cgroup.paths.is_empty() {
        manager::update_resources(&rec.cgroup, &part)?;
    } else if !over.as_object().is_some_and(Map::is_empty) {
        bail!("container has no cgroup to update (rootless without delegation)");
    }
    // Kept so that later updates merge with what is in force.
    if let Some(l) = spec.get_mut("linux").and_then(Value::as_object_mut) {
        l.insert("resources".into(), merged);
    } else if let Some(top) = spec.as_object_mut() {
        top.insert("linux".into(), json!({ "resources": merged }));
    }
    // Validates that the result is still a Spec before it replaces the copy.
    let _: Spec = serde_json::from_value(spec.clone()).context("updated config")?;
    state::write_atomic(&config_path, &crate::sys::json::to_vec(&spec)?, 0o600)?;
    Ok(())
}

/// `--memory -1` alone also lifts a memory+swap limit in force, as runc: the kernel keeps
/// the memory limit at or below memory+swap, so "no memory limit" under the old swap
/// limit could never be written.
fn unlimited_memory_lifts_swap(
    in_force: &LinuxResources,
    patch: &LinuxResources,
) -> LinuxResources {
    let mut patch = patch.clone();
    let swap_in_force = in_force
        .memory()
        .as_ref()
        .and_then(|m| m.swap())
        .is_some_and(|s| s != -1);
    if let Some(m) = patch.memory().as_ref() {
        if m.limit() == Some(-1) && m.swap().is_none() && swap_in_force {
            let mut m = *m;
            m.set_swap(Some(-1));
            patch.set_memory(Some(m));
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_merge_keeps_what_the_patch_leaves_unset() {
        let base: LinuxResources = serde_json::from_value(
            json!({"memory": {"limit": 10, "swap": 20}, "pids": {"limit": 5}, "cpu": {"cpus": "0-1"}}),
        )
        .unwrap();
        let over: LinuxResources =
            serde_json::from_value(json!({"memory": {"limit": 15}, "cpu": {"shares": 2}})).unwrap();
        let m = merge_resources(&base, &over).unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"memory": {"limit": 15, "swap": 20}, "pids": {"limit": 5}, "cpu": {"shares": 2, "cpus": "0-1"}})
        );
    }

    #[test]
    fn unlimited_memory_lifts_a_swap_limit_in_force() {
        let res = |v| serde_json::from_value::<LinuxResources>(v).unwrap();
        let limited = res(json!({"memory": {"limit": 50, "swap": 90}}));
        let lifted = unlimited_memory_lifts_swap(&limited, &res(json!({"memory": {"limit": -1}})));
        assert_eq!(
            serde_json::to_value(&lifted).unwrap(),
            json!({"memory": {"limit": -1, "swap": -1}})
        );
        // A swap value given, or none in force: the patch is left as it is.
        for (base, patch) in [
            (&limited, json!({"memory": {"limit": -1, "swap": 200}})),
            (&limited, json!({"memory": {"limit": 60}})),
            (
                &res(json!({"memory": {"limit": 50}})),
                json!({"memory": {"limit": -1}}),
            ),
        ] {
            let p = res(patch.clone());
            let out = unlimited_memory_lifts_swap(base, &p);
            assert_eq!(
                serde_json::to_value(&out).unwrap(),
                serde_json::to_value(&p).unwrap()
            );
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
