//! A test-only knob: with BERTH_TEST_CHECKPOINT=<name>, a debug build stops itself
//! (SIGSTOP) at that point of create so a test can kill -9 it there and check that
//! nothing is left half-made. Release builds compile it away.

#[cfg(debug_assertions)]
pub(crate) fn hit(name: &str) {
    if std::env::var_os("BERTH_TEST_CHECKPOINT").is_some_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn hit(_name: &str) {}
