//! placeholder

pub(crate) mod seccomp;
