//! berth: a daemonless, single-binary OCI container runtime.
#![allow(dead_code)]

mod cgroups;
mod hooks;
mod seccomp;
mod spec;
mod sys;

fn main() {}
