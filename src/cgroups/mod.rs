//! placeholder
pub(crate) mod manager;
pub(crate) mod stats;
