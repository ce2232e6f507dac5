//! Process security settings applied by the init just before exec: capabilities, rlimits,
//! user and groups.

pub(crate) mod caps;
pub(crate) mod lsm;
pub(crate) mod procfs;
pub(crate) mod rlimits;
