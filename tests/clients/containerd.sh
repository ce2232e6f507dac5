# containerd scenarios (ctr + containerd-shim-runc-v2 with BinaryName = the runtime).
# Sourced by run.sh; uses $T, $RT and lib.sh.
# shellcheck shell=bash

# containerd 1.6 puts shim sockets under /run/containerd/s whatever its --state says: it
# runs in a private mount namespace (held by a sleeping process) with a tmpfs there, its
# own root, state and socket, so nothing it makes is visible to (or clashes with) the host's.
CD=""
cd_setup() {
  CD=$T/containerd
  mkdir -p "$CD/root" "$CD/state" "$CD/image"
  cat >"$CD/config.toml" <<TOML
version = 2
root = "$CD/root"
state = "$CD/state"
[grpc]
  address = "$CD/containerd.sock"
[plugins."io.containerd.runtime.v1.linux"]
  runtime = "$RT"
[plugins."io.containerd.grpc.v1.cri"]
  disable_apparmor = true
TOML
  unshare -m --propagation private sh -c "mount -t tmpfs tmpfs /run/containerd 2>/dev/null || { mkdir -p /run/containerd && mount -t tmpfs tmpfs /run/containerd; }; echo ready; exec sleep 100000" >"$CD/holder.out" &
  CD_HOLDER=$!
  at_exit "cd_teardown"
  wait_for 10 grep -q ready "$CD/holder.out"
  nsenter -t "$CD_HOLDER" -m containerd --config "$CD/config.toml" >"$T/logs/containerd.log" 2>&1 &
  CD_PID=$!
  wait_for 20 test -S "$CD/containerd.sock"
  oci_image "$CD/image/bb.tar"
  c images import --base-name localhost/bb "$CD/image/bb.tar" >"$T/logs/ctr-import.log" 2>&1
}

# shim_pids — the containerd-shim processes of this suite's containerd (found by its socket).
shim_pids() {
  local f
  for f in /proc/[0-9]*/cmdline; do
    tr '\0' ' ' 2>/dev/null <"$f" | grep -q "^[^ ]*containerd-shim.* -address $CD/containerd.sock" &&
      { f=${f#/proc/}; echo "${f%/cmdline}"; }
  done
  true
}

# cd_teardown — removes every task and container, stops containerd and the namespace holder, and
# checks the shims ended (any left is killed by pid, and the teardown fails). Run as the suite's
# last scenario (ctr-cleanup) and again at exit (a no-op then).
cd_teardown() {
  [ -n "$CD" ] && ! pid_gone "$CD_PID" || { kill "$CD_HOLDER" 2>/dev/null; return 0; }
  local id p shims left=""
  shims=$(shim_pids)
  say "shims: $(echo $shims)"
  for id in $(c tasks ls -q 2>/dev/null); do c tasks kill -s KILL "$id" || true; done
  sleep 0.5
  for id in $(c containers ls -q 2>/dev/null); do c tasks rm -f "$id" || true; c containers rm "$id" || true; done
  kill "$CD_PID" 2>/dev/null || true
  for p in $CD_PID $shims; do
    wait_for 10 pid_gone "$p" 2>/dev/null || { left="$left $p"; kill -9 "$p" 2>/dev/null || true; }
  done
  kill "$CD_HOLDER" 2>/dev/null || true
  [ -z "$left" ] || { fail "containerd or shims still running after the teardown (killed):$left"; return 1; }
  [ -z "$(shim_pids)" ] || { fail "shims left: $(shim_pids | tr '\n' ' ')"; return 1; }
}

# ctr in the private mount namespace (the shim's socket path lives there).
c() { t nsenter -t "$CD_HOLDER" -m ctr --address "$CD/containerd.sock" "$@"; }
crun_() { c run --runc-binary "$RT" "$@"; }

# An OCI image layout of the busybox rootfs, made offline: one gzip layer, a config, a
# manifest and an index, as `ctr images import` takes it.
oci_image() {
  python3 - "$T/rootfs" "$1" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
rootfs, out = sys.argv[1], sys.argv[2]
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as tf:
    tf.add(rootfs, arcname=".")
diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
layer = gzip.compress(raw.getvalue(), mtime=0)
blobs = {}
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return {"digest": "sha256:" + d, "size": len(data)}
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(blob(config), mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(blob(layer), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")]}).encode()
index = {"schemaVersion": 2, "manifests": [dict(blob(manifest), mediaType="application/vnd.oci.image.manifest.v1+json",
    annotations={"org.opencontainers.image.ref.name": "latest"})]}
with tarfile.open(out, "w") as tf:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    add("index.json", json.dumps(index).encode())
    for d, data in blobs.items():
        add("blobs/sha256/" + d, data)
PY
}

IMG=localhost/bb:latest

d_exit() {
  expect_rc 0 crun_ --rm "$IMG" d-exit0 true
  expect_rc 7 crun_ --rm "$IMG" d-exit7 sh -c 'exit 7'
}
d_not_found() {
  local rc=0
  OUT=$(crun_ --rm "$IMG" d-nf /no/such/binary 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "a missing binary ran"
  expect_has "error" "$OUT" "no such file or directory"
}
d_env_cwd() {
  run_out crun_ --rm --env FOO=bar --cwd /www "$IMG" d-env sh -c 'echo $FOO $(pwd)'
  expect_eq "env and cwd" "$OUT" "bar /www"
}
d_stdin() {
  # ctr does not close the container's stdin at EOF: read one line.
  OUT=$(echo via-stdin | c run --runc-binary "$RT" --rm "$IMG" d-stdin sh -c 'read l; echo "got $l"')
  expect_eq stdin "$OUT" "got via-stdin"
}
d_tty() {
  tty_shell ctrit "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock run --runc-binary $RT --rm -t $IMG d-tty sh"
}
d_detach_exec() {
  run_out crun_ -d "$IMG" d-svc sleep 1000
  wait_for 10 sh -c "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks ls | grep -q 'd-svc.*RUNNING'"
  expect_rc 5 c tasks exec --exec-id e1 d-svc sh -c 'exit 5'
  run_out c tasks exec --exec-id e2 --cwd /www --user 1000 d-svc sh -c 'echo $(id -u) $(pwd)'
  expect_eq "exec user and cwd" "$OUT" "1000 /www"
  tty_shell ctrexecit "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks exec -t --exec-id e3 d-svc sh"
  run_out c tasks exec --exec-id e4 d-svc $FD_LIST
  expect_fds "tasks exec" "$OUT"
  local init
  init=$(c tasks ls | awk '$1 == "d-svc" {print $2}')
  run_out c tasks ps d-svc
  printf '%s\n' "$OUT" | grep -Eq "^$init( |$)" || fail "tasks ps does not list the init $init"
  run_out c tasks pause d-svc
  expect_eq "status after pause" "$(task_status d-svc)" PAUSED
  run_out c tasks resume d-svc
  expect_eq "status after resume" "$(task_status d-svc)" RUNNING
  run_out c tasks metrics d-svc
  printf '%s\n' "$OUT" | grep -Eq '^(memory\.usage_in_bytes|memory\.current) +[1-9][0-9]*' || fail "metrics: no memory usage"
  printf '%s\n' "$OUT" | grep -Eq '^pids\.current +[1-9][0-9]*' || fail "metrics: no pids.current"
  # kill -a reaches every process: an exec'd sleep dies of TERM, which the init (pid 1 of its
  # namespace, no handler) ignores; then KILL ends both.
  run_out c tasks exec --detach --exec-id e5 d-svc sleep 1000
  local execpid=""
  wait_for 10 sh -c "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks ps d-svc | awk 'NR > 1 && \$1 != $init' | grep -q ."
  execpid=$(c tasks ps d-svc | awk -v i="$init" 'NR > 1 && $1 != i {print $1; exit}')
  say "init $init, exec'd sleep $execpid"
  run_out c tasks kill -a -s TERM d-svc
  wait_for 10 pid_gone "$execpid"
  expect_eq "status after kill -a TERM (the init ignores it)" "$(task_status d-svc)" RUNNING
  run_out c tasks exec --detach --exec-id e6 d-svc sleep 1000
  wait_for 10 sh -c "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks ps d-svc | awk 'NR > 1 && \$1 != $init' | grep -q ."
  execpid=$(c tasks ps d-svc | awk -v i="$init" 'NR > 1 && $1 != i {print $1; exit}')
  run_out c tasks kill -a -s KILL d-svc
  wait_for 10 sh -c "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks ls | grep -q 'd-svc.*STOPPED'"
  wait_for 10 pid_gone "$init"
  wait_for 10 pid_gone "$execpid"
  run_out c tasks rm -f d-svc
  run_out c containers rm d-svc
}
# task_status ID — the STATUS column of `ctr tasks ls` (empty when there is no task).
task_status() { c tasks ls | awk -v id="$1" '$1 == id {print $3}'; }
d_run_fds() {
  run_out crun_ --rm "$IMG" d-fds $FD_LIST
  expect_fds "ctr run" "$OUT"
}
d_rm_force_running() {
  run_out crun_ -d "$IMG" d-rmf sleep 1000
  wait_for 10 sh -c "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks ls | grep -q 'd-rmf.*RUNNING'"
  local init; init=$(c tasks ls | awk '$1 == "d-rmf" {print $2}')
  # (also checks that shim_pids, which ctr-cleanup relies on, finds the running shim)
  [ -n "$(shim_pids)" ] || fail "no shim found for the running task"
  run_out c tasks rm -f d-rmf
  expect_eq "task after tasks rm -f" "$(task_status d-rmf)" ""
  wait_for 10 pid_gone "$init"
  run_out c containers rm d-rmf
}
d_signal() {
  # ctr run in the foreground returns the container's exit code: the USR1 handler's 9.
  local pid rc=0 out=$T/containerd/d-sig.out
  c run --runc-binary "$RT" --rm "$IMG" d-sig sh -c "trap 'echo got-usr1; exit 9' USR1; echo ready; while true; do sleep 0.1; done" >"$out" 2>&1 </dev/null &
  pid=$!
  wait_for 10 grep -q ready "$out"
  run_out c tasks kill -s SIGUSR1 d-sig
  wait "$pid" || rc=$?
  sed 's/^/  | /' "$out" >&2
  expect_eq "exit code (USR1 handler)" "$rc" 9
  expect_has "handler ran" "$(cat "$out")" got-usr1
}
# The limits as the host's cgroup files show them (ctr's spec mounts no cgroupfs inside).
task_cgroup_file() {
  local id=$1 ctrl=$2 file=$3 pid rel
  pid=$(c tasks ls | awk -v id="$id" '$1 == id {print $2}')
  rel=$(awk -F: -v c="$ctrl" '$2 == c || ($2 == "" && c == "") {print $3}' "/proc/$pid/cgroup")
  cat "/sys/fs/cgroup/$ctrl/$rel/$file" 2>/dev/null || cat "/sys/fs/cgroup/$rel/$file"
}
d_limits() {
  run_out crun_ -d --memory-limit 67108864 --cpu-quota 50000 --cpu-period 100000 "$IMG" d-lim sleep 1000
  wait_for 10 sh -c "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks ls | grep -q 'd-lim.*RUNNING'"
  if [ -d /sys/fs/cgroup/memory ]; then
    expect_eq "memory limit" "$(task_cgroup_file d-lim memory memory.limit_in_bytes)" 67108864
    expect_eq "cpu quota" "$(task_cgroup_file d-lim cpu,cpuacct cpu.cfs_quota_us 2>/dev/null || task_cgroup_file d-lim cpu cpu.cfs_quota_us)" 50000
  else
    expect_eq "memory.max" "$(task_cgroup_file d-lim "" memory.max)" 67108864
    expect_eq "cpu.max" "$(task_cgroup_file d-lim "" cpu.max)" "50000 100000"
  fi
  c tasks kill -s KILL d-lim
  wait_for 10 sh -c "nsenter -t $CD_HOLDER -m ctr --address $CD/containerd.sock tasks ls | grep -q 'd-lim.*STOPPED'"
  run_out c tasks rm -f d-lim
  run_out c containers rm d-lim
}
d_privileged_readonly() {
  local host_bnd
  host_bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
  run_out crun_ --rm --privileged "$IMG" d-priv sh -c 'grep CapEff /proc/self/status'
  expect_eq "privileged CapEff (the host's bounding set)" "$OUT" "CapEff:	$host_bnd"
  run_out crun_ --rm --read-only "$IMG" d-ro sh -c 'echo started; touch /newfile 2>&1; echo "touch-rc=$?"; touch /tmp/x 2>&1; true'
  expect_has "container started" "$OUT" started
  expect_has "write to /" "$OUT" "Read-only file system"
  expect_has "touch / failed" "$OUT" "touch-rc=1"
}
d_no_pivot() {
  run_out crun_ --rm --no-pivot "$IMG" d-np sh -c 'echo pivot-free'
  expect_eq "no-pivot" "$OUT" pivot-free
}
d_with_netns() {
  local ns=$T/containerd/netns
  touch "$ns"
  nsenter -t "$CD_HOLDER" -m unshare --net="$ns" true
  run_out crun_ --rm --with-ns "network:$ns" "$IMG" d-ns readlink /proc/self/ns/net
  local want
  want="net:[$(nsenter -t "$CD_HOLDER" -m stat -L -c %i "$ns")]"
  nsenter -t "$CD_HOLDER" -m umount "$ns"
  expect_eq "joined netns" "$OUT" "$want"
}
d_uidmap() {
  run_out crun_ --rm --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMG" d-um sh -c 'cat /proc/self/uid_map'
  expect_has "uid map" "$(echo $OUT)" "0 100000 65536"
}

suite_containerd() {
  cd_setup || { echo "FAIL containerd-setup"; tail -n 20 "$T/logs/containerd.log" "$T/logs/ctr-import.log"; FAILED=$((FAILED + 1)); FAILS+=(containerd-setup); return; }
  scenario ctr-run-exit-codes d_exit
  scenario ctr-run-not-found d_not_found
  scenario ctr-run-env-cwd d_env_cwd
  scenario ctr-run-stdin d_stdin
  scenario ctr-run-tty d_tty
  scenario ctr-detach-exec-ps-pause-kill-rm d_detach_exec
  scenario ctr-kill-signal d_signal
  scenario ctr-run-fds d_run_fds
  scenario ctr-tasks-rm-force-running d_rm_force_running
  scenario ctr-memory-cpu-limits d_limits
  scenario ctr-privileged-read-only d_privileged_readonly
  scenario ctr-no-pivot d_no_pivot
  scenario ctr-with-ns-network d_with_netns
  scenario ctr-uidmap d_uidmap
  scenario ctr-cleanup cd_teardown
}
