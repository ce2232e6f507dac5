# Shared helpers for the client suite. Sourced by run.sh and by every scenario subshell.
# shellcheck shell=bash

# Every client call goes through a hard timeout (default 60 s, TMO overrides).
t() { timeout --foreground -k 5 "${TMO:-60}" "$@"; }

say() { printf '%s\n' "$*" >&2; }

# free_port [N] — a port P on 127.0.0.1 with P..P+N-1 all free at the time of asking.
free_port() {
  python3 - "${1:-1}" <<'PY'
import socket, sys
n = int(sys.argv[1])
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    held = [s]
    try:
        for i in range(1, n):
            t = socket.socket(); t.bind(("127.0.0.1", p + i)); held.append(t)
    except OSError:
        continue
    finally:
        for h in held: h.close()
    print(p); break
PY
}

fail() { say "ASSERT: $*"; return 1; }

# expect_eq WHAT GOT WANT
expect_eq() {
  [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"
}

# expect_has WHAT HAYSTACK NEEDLE (fixed string)
expect_has() {
  case "$2" in *"$3"*) return 0 ;; esac
  fail "$1: expected to contain '$3', got '$2'"
}

# expect_not_has WHAT HAYSTACK NEEDLE
expect_not_has() {
  case "$2" in *"$3"*) fail "$1: expected not to contain '$3', got '$2'" ;; esac
  return 0
}

# expect_rc WANT CMD...  — runs CMD, prints its output to the log, checks its exit code.
# The output is left in $OUT for further checks.
expect_rc() {
  local want=$1 rc=0; shift
  OUT=$("$@" 2>&1) || rc=$?
  printf '%s\n' "$OUT" | sed 's/^/  | /' >&2
  [ "$rc" = "$want" ] || fail "exit code of '$*': expected $want, got $rc"
}

# run_out CMD... — runs CMD (must exit 0), its stdout (stderr goes to the log) in $OUT.
run_out() {
  local rc=0
  OUT=$("$@") || rc=$?
  printf '%s\n' "$OUT" | sed 's/^/  > /' >&2
  [ "$rc" = 0 ] || fail "'$*' exited $rc"
}

# wait_for SECONDS CMD... — polls CMD every 0.2 s until it succeeds.
wait_for() {
  local secs=$1 i=0; shift
  while ! "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt $((secs * 5)) ] || { fail "timed out after ${secs}s waiting for: $*"; return 1; }
    sleep 0.2
  done
}

# --- terminals: tmux gives a client a real tty with a known window size ---------------------------
# (script(1) with stdin at EOF races the client: podman -it sometimes sees the EOF first and
# prints nothing, with runc as with berth.)
tm() { t tmux -S "$T/tmux.sock" "$@"; }
# pane_wait SESSION TEXT SECS — waits until the pane shows TEXT
pane_wait() {
  local i=0
  # The pane read whole first: under pipefail, grep -q leaving early fails the writer.
  while ! grep -qF -- "$2" <<<"$(tm capture-pane -p -t "$1")"; do
    i=$((i + 1))
    if [ "$i" -ge $(($3 * 5)) ]; then
      say "pane $1:"; tm capture-pane -p -t "$1" | sed '/^$/d; s/^/  | /' >&2
      fail "timed out waiting for '$2' on the tty"; return 1
    fi
    sleep 0.2
  done
}
# tty_shell SESSION CMD — runs CMD (an interactive client starting `sh` in a container) on a
# 100x30 terminal, checks the shell sees that terminal, leaves it with `exit 5`, and checks CMD
# exits 5. CMD is bounded by `timeout --foreground -k` (TTY_TMO seconds, default 30): a client
# hanging on the tty is killed and prints client-exited-124 (or 137), not client-exited-5.
tty_shell() {
  local s=$1 pane
  tm new-session -d -s "$s" -x 100 -y 30 "timeout --foreground -k 5 ${TTY_TMO:-30} $2; echo client-exited-\$?; sleep 30"
  pane_wait "$s" '/ #' 20
  tm send-keys -t "$s" 'stty size; tty; echo ma""rker' Enter
  pane_wait "$s" marker 10
  pane=$(tm capture-pane -p -t "$s"); printf '%s\n' "$pane" | sed '/^$/d; s/^/  | /' >&2
  expect_has "stty size" "$pane" "30 100"
  expect_has "tty" "$pane" "/dev/pts/"
  tm send-keys -t "$s" 'exit 5' Enter
  pane_wait "$s" client-exited-5 15
  tm kill-session -t "$s"
}

# --- file descriptors reaching the container -------------------------------------------------------
# FD_LIST is run in the container (busybox): `ls -l /proc/self/fd`. fds_of turns its output into
# the sorted fd numbers, leaving out the one ls opened to read the directory: busybox closes it
# before it reads the links, so it is listed with no "-> target" (or, another ls, as a link to
# /proc/<its pid>/fd). Only one such entry is left out; any further one is kept.
FD_LIST='ls -l /proc/self/fd'
fds_of() {
  printf '%s\n' "$1" | awk '
    $1 ~ /^l/ { link = 0
      for (i = 2; i < NF; i++) if ($i == "->") { link = 1
        if ($(i + 1) ~ /^\/proc\/[0-9]+\/fd$/ && !own++) break
        print $(i - 1); break }
      if (!link) { if (own++) print $NF } }' | sort -n | tr '\n' ' ' | sed 's/ $//'
}
# expect_fds WHAT LS_OUTPUT [WANT] — only fds WANT (default "0 1 2") are open.
expect_fds() {
  local got; got=$(fds_of "$2")
  [ -n "$got" ] || { fail "$1: no fd listed (not ls -l output?): $2"; return 1; }
  expect_eq "$1: open fds (besides ls's own)" "$got" "${3:-0 1 2}"
}

# pid_gone PID — no such process, or only a zombie left.
pid_gone() {
  [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null || [ ! -e "/proc/$1" ]
}

# Cap bitmask helpers: capmask NAME... -> 16-hex-digit mask as /proc/PID/status prints it.
capbit() {
  case $1 in
    CHOWN) echo 0 ;; DAC_OVERRIDE) echo 1 ;; DAC_READ_SEARCH) echo 2 ;; FOWNER) echo 3 ;;
    FSETID) echo 4 ;; KILL) echo 5 ;; SETGID) echo 6 ;; SETUID) echo 7 ;; SETPCAP) echo 8 ;;
    LINUX_IMMUTABLE) echo 9 ;; NET_BIND_SERVICE) echo 10 ;; NET_BROADCAST) echo 11 ;;
    NET_ADMIN) echo 12 ;; NET_RAW) echo 13 ;; IPC_LOCK) echo 14 ;; IPC_OWNER) echo 15 ;;
    SYS_MODULE) echo 16 ;; SYS_RAWIO) echo 17 ;; SYS_CHROOT) echo 18 ;; SYS_PTRACE) echo 19 ;;
    SYS_PACCT) echo 20 ;; SYS_ADMIN) echo 21 ;; SYS_BOOT) echo 22 ;; SYS_NICE) echo 23 ;;
    SYS_RESOURCE) echo 24 ;; SYS_TIME) echo 25 ;; SYS_TTY_CONFIG) echo 26 ;; MKNOD) echo 27 ;;
    LEASE) echo 28 ;; AUDIT_WRITE) echo 29 ;; AUDIT_CONTROL) echo 30 ;; SETFCAP) echo 31 ;;
    *) echo "unknown cap $1" >&2; return 1 ;;
  esac
}
capmask() {
  local m=0 c
  for c in "$@"; do m=$((m | (1 << $(capbit "$c")))); done
  printf '%016x\n' "$m"
}

# Scenario bookkeeping (run.sh owns PASSED/FAILED/FAILS).
# scenario NAME FUNC [ARGS...] — runs FUNC in a subshell with errexit, logs to $T/logs/NAME.log.
scenario() {
  local name=$1 fn=$2 rc=0 t0 t1 log
  shift 2
  if [ -n "${ONLY:-}" ] && ! printf '%s' "$name" | grep -Eq -- "$ONLY"; then return 0; fi
  log="$T/logs/$name.log"
  t0=$(date +%s)
  # Not in an && / || / if context, or errexit would be ignored inside.
  ( set -eE -o pipefail; "$fn" "$@" ) >"$log" 2>&1 </dev/null
  rc=$?
  t1=$(date +%s)
  if [ "$rc" = 0 ]; then
    PASSED=$((PASSED + 1))
    printf 'PASS %-40s (%ss)\n' "$name" "$((t1 - t0))"
  else
    FAILED=$((FAILED + 1))
    FAILS+=("$name")
    printf 'FAIL %-40s (%ss, exit %s)\n' "$name" "$((t1 - t0))" "$rc"
    grep -v '^  > ' "$log" | tail -n 12 | sed 's/^/     /'
  fi
}
