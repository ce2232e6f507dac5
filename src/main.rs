//! berth: a daemonless, single-binary OCI container runtime (see src/lib.rs).

#[global_allocator]
static ALLOCATOR: berth::Arena = berth::Arena;

fn main() {
    berth::main();
}
