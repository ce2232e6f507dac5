//! cgroups: layout and lifecycle (manager), limits (resources, devices), statistics.
pub(crate) mod devices;
pub(crate) mod manager;
pub(crate) mod resources;
pub(crate) mod stats;
