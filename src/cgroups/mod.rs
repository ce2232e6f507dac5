//! placeholder
pub(crate) mod manager;
