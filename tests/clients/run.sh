#!/usr/bin/env bash
# Client test suite: podman (rootful and rootless) and containerd, with berth as the OCI runtime.
#
#   tests/clients/run.sh                       # berth (target/debug/berth-runc, or $BERTH_RUNC)
#   CLIENT_RUNTIME=/usr/sbin/runc tests/clients/run.sh   # the same scenarios against runc (control)
#
# Variables: CLIENT_RUNTIME (runtime binary), SUITES (default "podman rootless containerd"),
# ONLY (regex on scenario names), KEEP=1 (keep the temp dir), NO_INSTALL=1 (skip apt-get).
# Prints one PASS/FAIL line per scenario and "N passed, M failed" at the end; exits 1 if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root (podman rootful, containerd, useradd)" >&2; exit 2; }

# PID 1 on some machines does not reap orphans (conmon, shims and their children are orphaned on
# purpose): make this shell a child subreaper so it reaps them itself.
if [ -z "${CLIENTS_SUBREAPER:-}" ] && command -v python3 >/dev/null 2>&1; then
  export CLIENTS_SUBREAPER=1
  exec python3 -c 'import ctypes,os,sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
os.execvp("bash", ["bash"] + sys.argv[1:])' "$0" "$@"
fi

# tmux runs the terminal scenarios' commands with $SHELL (dash when unset, as under CI). A plain
# `timeout` moves itself out of the tty's foreground process group, where a client putting the
# terminal in raw mode stops on SIGTTOU: the scenarios use `timeout --foreground`, in bash.
export SHELL=/bin/bash

# shellcheck source=lib.sh
. "$HERE/lib.sh"

install_deps() {
  local pkgs="podman conmon netavark aardvark-dns containernetworking-plugins containerd runc busybox-static tmux uidmap catatonit slirp4netns iptables passwd gcc libc6-dev"
  local missing="" p
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  if [ -n "${NO_INSTALL:-}" ]; then say "missing packages:$missing (NO_INSTALL set)"; return 1; fi
  say "installing:$missing"
  apt-get -o Acquire::Retries=5 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=5 -o DPkg::Lock::Timeout=120 install -y -qq $missing >/dev/null
}
install_deps || { echo "run.sh: could not install the client packages" >&2; exit 2; }

# Every scenario runs in a private network namespace that stands for the host: podman's bridges
# and firewall rules, published ports and containerd's namespaces never touch the machine's own
# network, and two runs on one machine (a developer's and CI's) never meet. Packages are
# installed before, with the host's network.
if [ -z "${CLIENTS_NETNS:-}" ]; then
  export CLIENTS_NETNS=1
  exec unshare --net -- bash "$0" "$@"
fi
ip link set lo up

RT=${CLIENT_RUNTIME:-${BERTH_RUNC:-$REPO/target/debug/berth-runc}}
# Absolute, but not resolved: berth speaks runc's language only under a name like berth-runc.
case $RT in /*) ;; *) RT=$PWD/$RT ;; esac
[ -x "$RT" ] || { echo "run.sh: runtime '$RT' not found (build berth, or set CLIENT_RUNTIME)" >&2; exit 2; }
SUITES=${SUITES:-podman rootless containerd}

T=$(mktemp -d /tmp/berth-clients.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/logs" "$T/bin"
export T RT

PASSED=0 FAILED=0
FAILS=()
CLEANUPS=()
at_exit() { CLEANUPS+=("$*"); }

finish() {
  local i
  [ -S "$T/tmux.sock" ] && tmux -S "$T/tmux.sock" kill-server >/dev/null 2>&1
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
  # Anything still mounted under $T (vfs storage, shm of containers) goes before the rm.
  grep -o " $T[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then say "kept $T"; else rm -rf "$T"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

echo "client suite: runtime $RT ($("$RT" --version 2>/dev/null | head -n 1))"
echo "temp dir: $T"

# --- the busybox image rootfs, shared by every suite ---------------------------------------------
build_rootfs() {
  local r=$T/rootfs a
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/www" "$r/proc" "$r/sys" "$r/dev" "$r/run" "$r/var/tmp" "$r/data"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\nuser:x:1000:\nnobody:x:65534:\n' >"$r/etc/group"
  echo 'hello from httpd' >"$r/www/index.html"
  printf '#!/bin/sh\necho should not run\n' >"$r/bin/noexec"
  chmod 0644 "$r/bin/noexec"
  chmod 1777 "$r/tmp" "$r/var/tmp"
  # /bin/sysprobe: a syscall no busybox applet makes, to see a seccomp filter act.
  # personality(ADDR_NO_RANDOMIZE) needs no privilege, and podman's default profile allows
  # personality only for a few other values: ENOSYS (its default errno) under it, success without.
  cat >"$T/sysprobe.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
  long r = syscall(SYS_personality, 0x0040000UL);
  printf("personality(ADDR_NO_RANDOMIZE): %s\n", r < 0 ? strerror(errno) : "ok");
  return 0;
}
C
  cc -static -Os -o "$r/bin/sysprobe" "$T/sysprobe.c" || { echo "run.sh: cannot build sysprobe (cc -static)" >&2; return 1; }
}
build_rootfs || exit 2

for s in $SUITES; do
  # shellcheck source=/dev/null
  . "$HERE/$s.sh"
  echo "== suite $s"
  "suite_$s"
done

echo
if [ "$FAILED" -gt 0 ]; then echo "failed: ${FAILS[*]}"; fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
