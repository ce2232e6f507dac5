//! placeholder

pub(crate) mod default;
pub(crate) mod features;
pub(crate) mod mountopts;
