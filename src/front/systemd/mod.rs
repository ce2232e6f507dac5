//! berth under systemd (issue 19): readiness notification of a foreground `run`
//! (`notify`), units generated from a container (`unit`), and Quadlet `.container` files
//! turned into units by berth run as a systemd generator (`quadlet`), and what the boot's
//! `berth-restart.service` starts (`boot`).

pub(crate) mod boot;
pub(crate) mod notify;
pub(crate) mod quadlet;
pub(crate) mod unit;
