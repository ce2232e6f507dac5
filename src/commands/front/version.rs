//! `version`: Docker's client block. There is no server: the engine is this binary.

use anyhow::Result;

use crate::front::Globals;

pub(crate) fn version(g: &Globals) -> Result<i32> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    println!("Client:");
    println!(" Version:       {}", env!("CARGO_PKG_VERSION"));
    println!(
        " OCI runtime:   berth-runc {} (built in, runtime-spec 1.2.1)",
        env!("CARGO_PKG_VERSION")
    );
    println!(" OS/Arch:       linux/{arch}");
    println!(" Rootless:      {}", g.rootless);
    println!(" Daemon:        none (a monitor process per container)");
    Ok(0)
}
