# podman rootless scenarios: a user made here (useradd, with /etc/subuid and /etc/subgid
# ranges), its own containers.conf, storage and XDG_RUNTIME_DIR under $T.
# Sourced by run.sh; uses $T, $RT and lib.sh.
# shellcheck shell=bash

RL_USER=""
rl_setup() {
  RL_USER=berthcl$$
  useradd -m -d "$T/rlhome" -s /bin/sh "$RL_USER"
  at_exit "rl_teardown"
  RL_UID=$(id -u "$RL_USER")
  mkdir -p "$T/rlxdg" "$T/rlbin"
  # A copy the user can execute, under the runtime's own name: berth answers as runc only
  # when its name is runc or ends in -runc.
  RL_RT=$T/rlbin/$(basename "$RT")
  cp "$RT" "$RL_RT"
  chmod 755 "$T/rlbin" "$RL_RT"
  chown "$RL_USER": "$T/rlxdg"
  chmod 700 "$T/rlxdg"
  mkdir -p "$T/rlhome/.config/containers"
  cat >"$T/rlhome/.config/containers/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "testrt"
runtime_supports_json = ["testrt"]
[engine.runtimes]
testrt = ["$RL_RT"]
CONF
  cat >"$T/rlhome/.config/containers/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$T/rlhome/storage"
runroot = "$T/rlxdg/containers"
CONF
  # podman as the user, from a clean login-like environment.
  cat >"$T/bin/rp" <<SH
#!/bin/sh
exec setpriv --reuid $RL_USER --regid $RL_USER --init-groups \\
  env -i HOME=$T/rlhome XDG_RUNTIME_DIR=$T/rlxdg PATH=/usr/sbin:/usr/bin:/sbin:/bin \\
  sh -c 'cd "\$HOME" && exec podman "\$@"' podman "\$@"
SH
  chmod +x "$T/bin/rp"
  mkdir -p "$T/rlhome/vol"
  chown -R "$RL_USER": "$T/rlhome"
  tar -C "$T/rootfs" -c . >"$T/rlhome/bb.tar"
  chown "$RL_USER": "$T/rlhome/bb.tar"
  rp import --change 'ENV=PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$T/rlhome/bb.tar" localhost/bb >"$T/logs/rootless-import.log" 2>&1
}

# rl_teardown — removes the user's containers, storage and the user itself; fails if the user
# is left. Run as the suite's last scenario (rootless-cleanup) and again at exit (a no-op then).
rl_teardown() {
  [ -n "$RL_USER" ] && id "$RL_USER" >/dev/null 2>&1 || return 0
  TMO=60 rp rm -a -f -t 0 >/dev/null 2>&1 || true
  TMO=60 rp system reset -f >/dev/null 2>&1 || true
  # podman's rootless pause process and conmons run as the user: stop them by pid, and wait
  # for them to be gone (userdel refuses a user with processes).
  local p i
  for p in $(ps -o pid= -u "$RL_USER" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  for i in $(seq 50); do
    [ -z "$(ps -o pid= -u "$RL_USER" 2>/dev/null)" ] && break
    sleep 0.2
  done
  userdel "$RL_USER" || { fail "userdel $RL_USER failed (processes: $(ps -o pid=,stat=,comm= -u "$RL_USER" | tr '\n' ' '))"; return 1; }
  ! id "$RL_USER" >/dev/null 2>&1 || { fail "user $RL_USER still exists"; return 1; }
  ! grep -q "^$RL_USER:" /etc/subuid /etc/subgid || { fail "subuid/subgid entries of $RL_USER left"; return 1; }
}

rp() { t "$T/bin/rp" "$@"; }

r_run() {
  run_out rp run --rm --network none bb sh -c 'id -u; echo hello'
  expect_eq "run" "$OUT" "0
hello"
  expect_rc 7 rp run --rm --network none bb sh -c 'exit 7'
}
r_uidmap() {
  run_out rp run --rm --network none bb cat /proc/self/uid_map
  local first
  first=$(awk 'NR == 1 {print $1, $2, $3}' <<<"$OUT")
  expect_eq "uid 0 is the user" "$first" "0 $RL_UID 1"
  [ "$(printf '%s\n' "$OUT" | wc -l)" -ge 2 ] || fail "no subuid range mapped: $OUT"
}
r_detach_exec_logs_kill_rm() {
  run_out rp run -d --network none --name rsvc bb sh -c 'echo started; trap "exit 3" USR1; while true; do sleep 0.1; done'
  wait_for 10 sh -c "$T/bin/rp logs rsvc | grep -q started"
  run_out rp exec rsvc id -u
  expect_eq "exec uid" "$OUT" 0
  run_out rp exec -u 1000 rsvc id -u
  expect_eq "exec -u 1000 uid" "$OUT" 1000
  expect_rc 4 rp exec rsvc sh -c 'exit 4'
  run_out rp kill -s USR1 rsvc
  wait_for 10 sh -c "$T/bin/rp ps -a --format '{{.Names}} {{.Status}}' | grep -q 'rsvc Exited (3)'"
  run_out rp rm rsvc
  run_out rp ps -a --format '{{.Names}}'
  ! grep -qx rsvc <<<"$OUT" || fail "rsvc still listed by ps -a after rm"
}
r_volume_ownership() {
  run_out rp run --rm --network none -v "$T/rlhome/vol:/vol" bb sh -c 'touch /vol/f && stat -c %u /vol/f'
  expect_eq "owner inside" "$OUT" 0
  expect_eq "owner on the host" "$(stat -c %u "$T/rlhome/vol/f")" "$RL_UID"
}
r_tty() { tty_shell rlit "$T/bin/rp run -it --rm --network none bb sh"; }

suite_rootless() {
  rl_setup || { echo "FAIL rootless-setup"; tail -n 20 "$T/logs/rootless-import.log"; FAILED=$((FAILED + 1)); FAILS+=(rootless-setup); return; }
  scenario rootless-run-exit-code r_run
  scenario rootless-uid-map r_uidmap
  scenario rootless-detach-exec-logs-kill-rm r_detach_exec_logs_kill_rm
  scenario rootless-volume-ownership r_volume_ownership
  scenario rootless-run-it r_tty
  scenario rootless-cleanup rl_teardown
}
