//! Error text helpers shared by the layers: runc's phrases for errnos that callers map to
//! exit codes (podman: "no such file or directory" -> 127, "permission denied" -> 126).

/// Lowercase errno text without the "(os error N)" suffix Rust appends.
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

pub(crate) fn errno_desc(e: nix::errno::Errno) -> String {
    e.desc().to_lowercase()
}
