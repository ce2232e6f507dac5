//! The container's processes: the sync channel, the init's setup steps, exec path lookup.

pub(crate) mod channel;
pub(crate) mod child;
pub(crate) mod exec;
pub(crate) mod parent;
