//! berth: a daemonless, single-binary OCI container runtime (see src/lib.rs).

fn main() {
    berth::main();
}
