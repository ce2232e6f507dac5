//! berth under systemd (issue 19): readiness notification of a foreground `run`
//! (`notify`), units generated from a container (`unit`), and Quadlet `.container` files
//! turned into units by berth run as a systemd generator (`quadlet`), and what the boot's
//! `berth-restart.service` starts (`boot`); a container's cgroup under a unit with
//! `Delegate=yes` (`delegate`).

pub(crate) mod boot;
pub(crate) mod delegate;
pub(crate) mod notify;
pub(crate) mod quadlet;
pub(crate) mod unit;
