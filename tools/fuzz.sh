#!/usr/bin/env bash
# make fuzz: every cargo-fuzz target for FUZZ_SECONDS (default 60) each, from the seeds in
# fuzz/seeds plus what earlier runs found (fuzz/corpus, not committed). cargo fuzz needs
# nightly-only -Z flags; RUSTC_BOOTSTRAP=1 lets this machine's one stable toolchain take
# them. A crash stops the run and leaves its input in fuzz/artifacts/<target>/.
#
#   make fuzz                                  # all targets, 60 s each
#   FUZZ_SECONDS=600 FUZZ_TARGETS=seccomp make fuzz
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-config seccomp channel resolve}
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t (${secs}s)"
  cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -max_len=65536 2>&1 |
    grep -E '^(#[0-9]+ +DONE|==[0-9]+==|SUMMARY|Done [0-9]+ runs|thread .* panicked|.*Test unit written)' || true
  # grep ate cargo fuzz's status: report it.
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "fuzz $t: FAILED (input in fuzz/artifacts/$t)"; exit 1; }
done
rm -rf /tmp/berth-fuzz-root-*
echo "fuzz: all targets clean"
