//! The five capability sets. The bounding set is dropped while still privileged, the others
//! set after the uid switch (with PR_SET_KEEPCAPS in between, so the switch keeps them).

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use crate::spec::plan::CapsPlan;

#[derive(Debug, thiserror::Error)]
#[error("process.capabilities.{set}: {msg}")]
pub(crate) struct CapsError {
    set: &'static str,
    msg: String,
}

fn convert(list: &Option<oci_spec::runtime::Capabilities>) -> CapsHashSet {
    list.iter()
        .flatten()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().and_then(|s| s.parse::<Capability>().ok()))
        .collect()
}

/// The capabilities in `mask`, in kernel order.
fn caps_in(mask: u64) -> impl Iterator<Item = Capability> {
    let mut all: Vec<Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().filter(move |c| mask & c.bitmask() != 0)
}

fn set_of(mask: u64) -> CapsHashSet {
    caps_in(mask).collect()
}

/// Drops every capability not in the bounding set (kernel-unknown ones are skipped).
pub(crate) fn drop_bounding(c: &CapsPlan) -> Result<(), CapsError> {
    for cap in caps_in(!c.bounding) {
        match caps::drop(None, CapSet::Bounding, cap) {
            Ok(()) => {}
            // Capabilities newer than the running kernel cannot be dropped and need not be.
            Err(_) if !caps::runtime::thread_all_supported().contains(&cap) => {}
            Err(e) => {
                return Err(CapsError {
                    set: "bounding",
                    msg: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient (already limited to what the kernel
/// knows when planned). Inheritable stays empty unless the config asks (CVE-2022-29162).
pub(crate) fn apply(c: &CapsPlan) -> Result<(), CapsError> {
    let set = |s: CapSet, mask: u64, name: &'static str| {
        caps::set(None, s, &set_of(mask)).map_err(|e| CapsError {
            set: name,
            msg: e.to_string(),
        })
    };
    // Each capset must keep effective within permitted: narrow effective first, then
    // permitted, then inheritable (which may only draw from permitted).
    set(CapSet::Effective, c.effective, "effective")?;
    set(CapSet::Permitted, c.permitted, "permitted")?;
    set(CapSet::Inheritable, c.inheritable, "inheritable")?;
    caps::clear(None, CapSet::Ambient).map_err(|e| CapsError {
        set: "ambient",
        msg: e.to_string(),
    })?;
    // The kernel only raises ambient caps that are permitted and inheritable; the parent
    // warned about the others (unraisable_ambient), as runc does.
    for cap in caps_in(c.ambient & c.permitted & c.inheritable) {
        caps::raise(None, CapSet::Ambient, cap).map_err(|e| CapsError {
            set: "ambient",
            msg: format!("{cap}: {e}"),
        })?;
    }
    Ok(())
}

/// Ambient capabilities the kernel will refuse (not both permitted and inheritable).
pub(crate) fn unraisable_ambient(c: Option<&LinuxCapabilities>) -> Vec<String> {
    let Some(c) = c else { return Vec::new() };
    let (perm, inh) = (convert(c.permitted()), convert(c.inheritable()));
    let mut out: Vec<String> = convert(c.ambient())
        .into_iter()
        .filter(|a| !(perm.contains(a) && inh.contains(a)))
        .map(|a| a.to_string())
        .collect();
    out.sort();
    out
}
