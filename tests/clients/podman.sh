# podman (rootful) scenarios. Sourced by run.sh; uses $T, $RT and lib.sh.
# shellcheck shell=bash

# podman_setup BACKEND WRAPPER — a private podman (root, runroot, containers.conf) whose network
# backend is BACKEND (cni or netavark), driven through $T/bin/WRAPPER.
podman_setup() {
  local be=$1 w=$2 d=$T/podman-$1 subnet=""
  # CNI leaves its bridge (cni-podman0, 10.88.0.0/16) on the host: netavark's default network
  # would take the same subnet and lose the route to it.
  [ "$be" = netavark ] && subnet='default_subnet = "10.90.0.0/24"'
  mkdir -p "$d/tmp" "$d/root" "$d/run"
  cat >"$d/containers.conf" <<CONF
[containers]
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
# podman's default nofile=1048576 needs CAP_SYS_RESOURCE beyond the hard limit on some hosts.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
# As Debian's /usr/share/containers/containers.conf (which CONTAINERS_CONF replaces): set in
# every container with a network namespace, joined by path on podman's networks.
default_sysctls = ["net.ipv4.ping_group_range=0 0"]
[network]
# cni: the plugins from containernetworking-plugins; netavark (+ aardvark-dns): what a fresh
# apt-get install podman uses. Each backend gets its own storage, as podman decides per root.
network_backend = "$be"
$subnet
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$d/tmp"
runtime = "testrt"
runtime_supports_json = ["testrt"]
[engine.runtimes]
testrt = ["$RT"]
CONF
  cat >"$T/bin/$w" <<SH
#!/bin/sh
export CONTAINERS_CONF=$d/containers.conf
exec podman --root $d/root --runroot $d/run --storage-driver vfs "\$@"
SH
  chmod +x "$T/bin/$w"
  at_exit "PM=$T/bin/$w podman_teardown"
  tar -C "$T/rootfs" -c . | t "$T/bin/$w" import --change 'ENV=PATH=/usr/sbin:/usr/bin:/sbin:/bin' - localhost/bb >"$T/logs/podman-import-$be.log" 2>&1
}

podman_teardown() {
  TMO=60 t "$PM" rm -a -f -t 0
  TMO=60 t "$PM" pod rm -a -f -t 0
  TMO=60 t "$PM" network prune -f
  TMO=60 t "$PM" system reset -f
}

# The podman under test: $T/bin/pm (CNI), or $T/bin/pmn (netavark) for the netavark scenarios.
PM=$T/bin/pm
pm() { t "$PM" "$@"; }

# expect_no_container NAME — `podman ps -a` does not list NAME (removed, e.g. by run --rm).
expect_no_container() {
  run_out pm ps -a --format '{{.Names}}'
  ! grep -qx -- "$1" <<<"$OUT" || fail "container $1 still listed by ps -a"
}

# --- run --rm ------------------------------------------------------------------------------------
p_exit0() { expect_rc 0 pm run --rm --name rm-exit0 --network none bb true; expect_no_container rm-exit0; }
p_exit7() { expect_rc 7 pm run --rm --name rm-exit7 --network none bb sh -c 'exit 7'; expect_no_container rm-exit7; }
# Only fds 0-2 reach the container's process (nothing of podman's, conmon's or the runtime's).
p_run_fds() {
  run_out pm run --rm --network none bb $FD_LIST
  expect_fds "run" "$OUT"
}
p_exit126() { expect_rc 126 pm run --rm --network none bb /bin/noexec; }
p_exit127() { expect_rc 127 pm run --rm --network none bb /no/such/binary; }
p_user() {
  run_out pm run --rm --network none -u 1000:1000 bb id
  expect_has "id" "$OUT" "uid=1000(user) gid=1000(user)"
}
p_workdir() { run_out pm run --rm --network none -w /tmp bb pwd; expect_eq pwd "$OUT" /tmp; }
p_env() { run_out pm run --rm --network none -e FOO=bar bb sh -c 'echo $FOO'; expect_eq FOO "$OUT" bar; }
p_hostname() { run_out pm run --rm --network none --hostname box1 bb hostname; expect_eq hostname "$OUT" box1; }
p_stdin() {
  OUT=$(echo hi-through-stdin | pm run -i --rm --network none bb cat)
  expect_eq "stdin echoed" "$OUT" hi-through-stdin
}
p_network_none() {
  run_out pm run --rm --network none bb sh -c 'ls /sys/class/net'
  expect_eq "interfaces" "$OUT" lo
}
p_devices() {
  run_out pm run --rm --network none bb sh -c '
    for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo "$d ok" || echo "$d missing"; done
    echo x >/dev/null && echo write-null-ok
    head -c 5 /dev/zero | wc -c
    ls -l /dev/ptmx /dev/fd/ /dev/stdin >/dev/null && echo links-ok'
  expect_not_has devices "$OUT" missing
  expect_has "write /dev/null" "$OUT" write-null-ok
  expect_has "/dev/zero" "$OUT" "5"
  expect_has "/dev/ptmx, /dev/fd" "$OUT" links-ok
}
p_mounts() {
  run_out pm run --rm --network none bb cat /proc/mounts
  local m=$OUT
  expect_has "/proc" "$m" "proc /proc proc rw"
  printf '%s\n' "$m" | grep -Eq '^sysfs /sys sysfs ro[,\ ]' || fail "/sys is not a read-only sysfs"
  printf '%s\n' "$m" | grep -Eq '^[^ ]+ /dev/shm tmpfs ' || fail "/dev/shm is not a tmpfs"
  printf '%s\n' "$m" | grep -Eq '^devpts /dev/pts devpts ' || fail "/dev/pts is not devpts"
  printf '%s\n' "$m" | grep -Eq '^mqueue /dev/mqueue mqueue ' || fail "/dev/mqueue is not mqueue"
  printf '%s\n' "$m" | grep -Eq ' /etc/hostname ' || fail "/etc/hostname not bind-mounted"
  run_out pm run --rm --network none bb sh -c 'echo x > /dev/shm/f && cat /dev/shm/f'
  expect_eq "write /dev/shm" "$OUT" x
}
# Masked paths: /dev/null is bind-mounted over files (a 1:3 character device), a read-only tmpfs
# over directories. Only the paths this kernel has are checked (e.g. /proc/kcore is absent on
# some VMs); podman skips the others too.
MASK_FILES="/proc/kcore /proc/keys /proc/timer_list /proc/latency_stats /proc/sched_debug /proc/timer_stats"
MASK_DIRS="/proc/acpi /proc/scsi /sys/firmware"
p_masked_paths() {
  local files="" dirs="" f n=0
  for f in $MASK_FILES; do [ -e "$f" ] && files="$files $f"; done
  for f in $MASK_DIRS; do [ -d "$f" ] && dirs="$dirs $f"; done
  [ -n "$files$dirs" ] || fail "none of the usual masked paths exists on this host"
  run_out pm run --rm --network none bb sh -c "
    for f in $files; do echo \"file \$f \$(stat -c '%F %t:%T' \$f 2>&1)\"; done
    for d in $dirs; do echo \"dir \$d \$(ls -A \$d | wc -l) \$(awk -v d=\$d '\$5 == d {print \$(NF-2), \$6}' /proc/self/mountinfo | tail -n 1)\"; done"
  for f in $files; do
    n=$((n + 1))
    expect_has "masked file $f" "$OUT" "file $f character special file 1:3"
  done
  for f in $dirs; do
    n=$((n + 1))
    printf '%s\n' "$OUT" | grep -Eq "^dir $f 0 tmpfs ro(,|\$)" || fail "masked dir $f: not an empty ro tmpfs: $(printf '%s\n' "$OUT" | grep "^dir $f ")"
  done
  say "checked $n masked paths"
}
p_readonly_paths() {
  run_out pm run --rm --network none bb sh -c '
    grep -E " /proc/(sys|bus|fs|irq|sysrq-trigger) " /proc/mounts
    (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo WRITABLE || echo write-refused'
  local p
  for p in /proc/sys /proc/bus /proc/fs /proc/irq; do
    [ -e "$p" ] || continue
    printf '%s\n' "$OUT" | grep -Eq " $p [a-z]+ ro[, ]" || fail "$p not mounted ro"
  done
  expect_has "write to /proc/sys" "$OUT" write-refused
}
DEFAULT_CAPS="CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP SETGID SETPCAP SETUID SYS_CHROOT"
p_caps_default() {
  run_out pm run --rm --network none bb grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status
  local want
  # shellcheck disable=SC2086
  want=$(capmask $DEFAULT_CAPS)
  expect_has CapEff "$OUT" "CapEff:	$want"
  expect_has CapBnd "$OUT" "CapBnd:	$want"
}
p_caps_drop_all() {
  run_out pm run --rm --network none --cap-drop all bb grep -E '^Cap(Eff|Bnd)' /proc/self/status
  expect_has CapEff "$OUT" "CapEff:	0000000000000000"
  expect_has CapBnd "$OUT" "CapBnd:	0000000000000000"
}
p_caps_add() {
  run_out pm run --rm --network none --cap-add NET_ADMIN bb sh -c 'grep CapEff /proc/self/status; ip link set lo down && echo lo-down-ok'
  # shellcheck disable=SC2086
  expect_has CapEff "$OUT" "CapEff:	$(capmask $DEFAULT_CAPS NET_ADMIN)"
  expect_has "ip link set (needs NET_ADMIN)" "$OUT" lo-down-ok
}
# The filter's effect: /bin/sysprobe (run.sh) calls personality(ADDR_NO_RANDOMIZE), which podman's
# default profile does not allow (ENOSYS, its default errno) and the kernel allows unprivileged.
p_seccomp_default() {
  run_out pm run --rm --network none bb sh -c "grep -E '^Seccomp:' /proc/self/status; sysprobe"
  expect_has "Seccomp mode" "$OUT" "Seccomp:	2"
  expect_has "personality under the default profile" "$OUT" "personality(ADDR_NO_RANDOMIZE): Function not implemented"
}
p_seccomp_unconfined() {
  run_out pm run --rm --network none --security-opt seccomp=unconfined bb sh -c "grep -E '^Seccomp:' /proc/self/status; sysprobe"
  expect_has "Seccomp mode" "$OUT" "Seccomp:	0"
  expect_has "personality with no filter" "$OUT" "personality(ADDR_NO_RANDOMIZE): ok"
}
p_no_new_privs() {
  run_out pm run --rm --network none --security-opt no-new-privileges bb grep NoNewPrivs /proc/self/status
  expect_eq NoNewPrivs "$OUT" "NoNewPrivs:	1"
  run_out pm run --rm --network none bb grep NoNewPrivs /proc/self/status
  expect_eq "NoNewPrivs by default" "$OUT" "NoNewPrivs:	0"
}
p_privileged() {
  local host_bnd
  host_bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
  run_out pm run --rm --network none --privileged bb sh -c '
    grep -E "^(CapEff|Seccomp):" /proc/self/status
    grep -E " /proc/sys " /proc/mounts || echo no-proc-sys-mount
    [ -c /dev/kmsg ] && echo kmsg-present
    [ -e /proc/keys ] && [ "$(wc -c < /proc/keys)" -gt 0 ] && echo keys-unmasked; true'
  expect_has CapEff "$OUT" "CapEff:	$host_bnd"
  expect_has Seccomp "$OUT" "Seccomp:	0"
  expect_has "/proc/sys not ro" "$OUT" no-proc-sys-mount
  expect_has "host devices" "$OUT" kmsg-present
  [ ! -e /proc/keys ] || expect_has "/proc/keys not masked" "$OUT" keys-unmasked
}
p_read_only() {
  run_out pm run --rm --network none --read-only bb sh -c 'touch /newfile 2>&1 && echo ROOT-WRITABLE; touch /tmp/ok && echo tmp-writable'
  expect_not_has "touch /" "$OUT" ROOT-WRITABLE
  expect_has "touch /" "$OUT" "Read-only file system"
  expect_has "/tmp on --read-only" "$OUT" tmp-writable
}
p_tmpfs() {
  run_out pm run --rm --network none --tmpfs /x bb sh -c 'grep " /x " /proc/mounts; echo hi > /x/f && cat /x/f'
  expect_has mount "$OUT" "tmpfs /x tmpfs rw"
  expect_has write "$OUT" hi
}
p_init() {
  run_out pm run --rm --network none --init bb sh -c 'cat /proc/1/cmdline | tr "\0" " "; echo; echo "me=$$"'
  expect_has "pid 1" "$OUT" "/run/podman-init --"
  expect_not_has "sh is not pid 1" "$OUT" "me=1"
}
p_uidmap() {
  run_out pm run --rm --network none --uidmap 0:100000:65536 --gidmap 0:100000:65536 bb sh -c 'cat /proc/self/uid_map; id -u'
  expect_eq "uid map" "$(awk 'NR == 1 {print $1, $2, $3}' <<<"$OUT")" "0 100000 65536"
  expect_eq "uid inside" "$(printf '%s\n' "$OUT" | tail -n 1)" 0
}
p_ulimit() {
  run_out pm run --rm --network none --ulimit nofile=100:200 --ulimit nproc=1234:2345 bb sh -c 'grep -E "^Max (open files|processes) " /proc/self/limits'
  expect_eq "nofile soft/hard" "$(printf '%s\n' "$OUT" | awk '/^Max open files/ {print $4, $5}')" "100 200"
  expect_eq "nproc soft/hard" "$(printf '%s\n' "$OUT" | awk '/^Max processes/ {print $3, $4}')" "1234 2345"
}
p_volume_rw() {
  local d=$T/vol-rw
  mkdir -p "$d"; echo from-host >"$d/in"
  run_out pm run --rm --network none -v "$d:/data" bb sh -c 'cat /data/in; echo from-container > /data/out'
  expect_eq "read host file" "$OUT" from-host
  expect_eq "file written by container" "$(cat "$d/out")" from-container
}
p_volume_ro() {
  local d=$T/vol-ro
  mkdir -p "$d"; echo from-host >"$d/in"
  run_out pm run --rm --network none -v "$d:/data:ro" bb sh -c 'cat /data/in; echo x > /data/out 2>&1 || echo write-refused'
  expect_has "read" "$OUT" from-host
  expect_has "write refused" "$OUT" write-refused
  [ ! -e "$d/out" ] || fail "file appeared on the host through a :ro volume"
}

# --- a long-running container (run -d) -----------------------------------------------------------
# shellcheck disable=SC2016
SERVICE='echo started; trap "echo got-usr1" USR1; trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done'
p_detach_start() {
  run_out pm run -d --name svc --network none bb sh -c "$SERVICE"
  wait_for 10 sh -c "$PM logs svc | grep -q started"
}
p_ps() {
  run_out pm ps --format '{{.Names}} {{.Status}}'
  printf '%s\n' "$OUT" | grep -Eq '^svc Up ' || fail "svc not listed as Up"
}
p_logs() { run_out pm logs svc; expect_has logs "$OUT" started; }
p_exec_rc() { expect_rc 3 pm exec svc sh -c 'exit 3'; }
p_exec_user() { run_out pm exec -u 1000:1000 svc id -u; expect_eq uid "$OUT" 1000; }
p_exec_env() { run_out pm exec -e XYZ=abc svc sh -c 'echo $XYZ'; expect_eq env "$OUT" abc; }
p_exec_workdir() { run_out pm exec -w /www svc pwd; expect_eq pwd "$OUT" /www; }
p_exec_fds() { run_out pm exec svc $FD_LIST; expect_fds "exec" "$OUT"; }
p_exec_stdin() { OUT=$(echo piped-in | pm exec -i svc cat); expect_eq "stdin" "$OUT" piped-in; }
p_exec_detach() {
  run_out pm exec -d svc sh -c 'sleep 0.3; echo done > /tmp/exec-d-flag'
  wait_for 10 "$PM" exec svc test -f /tmp/exec-d-flag
}
p_top() { run_out pm top svc; expect_has top "$OUT" "sh -c"; }
p_pause() {
  run_out pm pause svc
  run_out pm inspect -f '{{.State.Status}}' svc; expect_eq "state after pause" "$OUT" paused
  local pid; pid=$(pm inspect -f '{{.State.Pid}}' svc)
  grep -q 'State:.*T' "/proc/$pid/status" || [ "$(awk '/^State/{print $2}' "/proc/$pid/status")" = D ] ||
    fail "container pid 1 is not frozen: $(grep State "/proc/$pid/status")"
  run_out pm unpause svc
  run_out pm inspect -f '{{.State.Status}}' svc; expect_eq "state after unpause" "$OUT" running
  expect_rc 0 pm exec svc true
}
p_kill_usr1() {
  run_out pm kill -s USR1 svc
  wait_for 10 sh -c "$PM logs svc | grep -q got-usr1"
}
# host path of a container's cgroup v1 controller directory
cg_dir() {
  local pid path
  pid=$(pm inspect -f '{{.State.Pid}}' "$1")
  path=$(awk -F: -v c="$2" '{n=split($2,a,","); for(i=1;i<=n;i++) if(a[i]==c) print $3}' "/proc/$pid/cgroup")
  [ -n "$path" ] || { fail "no $2 cgroup for pid $pid"; return 1; }
  echo "/sys/fs/cgroup/$2$path"
}
p_update_memory() {
  expect_rc 0 pm update --memory 64m svc
  local d; d=$(cg_dir svc memory)
  expect_eq "memory.limit_in_bytes after update" "$(cat "$d/memory.limit_in_bytes")" 67108864
}
p_restart() {
  local pid1 pid2
  pid1=$(pm inspect -f '{{.State.Pid}}' svc)
  run_out pm restart -t 5 svc
  pid2=$(pm inspect -f '{{.State.Pid}}' svc)
  [ "$pid1" != "$pid2" ] || fail "pid unchanged after restart"
  run_out pm inspect -f '{{.State.Status}}' svc; expect_eq "state after restart" "$OUT" running
  wait_for 10 sh -c "[ \$($PM logs svc | grep -c started) -ge 2 ]"
}
p_stop_graceful() {
  local s e
  s=$(date +%s)
  run_out pm stop -t 20 svc
  e=$(date +%s)
  [ $((e - s)) -lt 10 ] || fail "stop took $((e - s))s though the container exits on TERM"
  run_out pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' svc; expect_eq "state, exit code" "$OUT" "exited 0"
  run_out pm logs svc; expect_has "TERM handled" "$OUT" got-term
}
p_rm() {
  run_out pm rm svc
  run_out pm ps -a --format '{{.Names}}'; expect_not_has "ps -a" "$OUT" svc
}
p_stop_kill() {
  run_out pm run -d --name stubborn --network none bb sh -c 'trap "echo ignoring-term" TERM; echo up; while :; do sleep 0.1; done'
  wait_for 10 sh -c "$PM logs stubborn | grep -q up"
  local s e
  s=$(date +%s)
  run_out pm stop -t 1 stubborn
  e=$(date +%s)
  [ $((e - s)) -le 6 ] || fail "stop -t 1 took $((e - s))s"
  run_out pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' stubborn; expect_eq "state, exit code" "$OUT" "exited 137"
  run_out pm logs stubborn; expect_has "TERM was delivered first" "$OUT" ignoring-term
  run_out pm rm stubborn
}
p_rm_force() {
  run_out pm run -d --name doomed --network none bb sleep 1000
  run_out pm rm -f -t 0 doomed
  run_out pm ps -a --format '{{.Names}}'; expect_not_has "ps -a" "$OUT" doomed
}

# --- resource limits ------------------------------------------------------------------------------
p_limit_memory() {
  run_out pm run -d --name lim-mem --network none --memory 64m bb sleep 1000
  local d; d=$(cg_dir lim-mem memory)
  expect_eq "$d/memory.limit_in_bytes" "$(cat "$d/memory.limit_in_bytes")" 67108864
  run_out pm exec lim-mem cat /sys/fs/cgroup/memory/memory.limit_in_bytes
  expect_eq "memory.limit_in_bytes inside the container" "$OUT" 67108864
  pm rm -f -t 0 lim-mem >/dev/null
}
p_limit_pids() {
  run_out pm run -d --name lim-pids --network none --pids-limit 50 bb sleep 1000
  local d; d=$(cg_dir lim-pids pids)
  expect_eq "$d/pids.max" "$(cat "$d/pids.max")" 50
  pm rm -f -t 0 lim-pids >/dev/null
}
p_limit_cpus() {
  run_out pm run -d --name lim-cpu --network none --cpus 0.5 bb sleep 1000
  local d; d=$(cg_dir lim-cpu cpu)
  expect_eq "cpu.cfs_period_us" "$(cat "$d/cpu.cfs_period_us")" 100000
  expect_eq "cpu.cfs_quota_us" "$(cat "$d/cpu.cfs_quota_us")" 50000
  pm rm -f -t 0 lim-cpu >/dev/null
}

# --- terminals ----------------------------------------------------------------------------------
p_run_tty() { tty_shell runit "$PM run -it --rm --name tty1 --network none bb sh"; }
p_exec_tty() {
  run_out pm run -d --name ttysvc --network none bb sleep 1000
  tty_shell execit "$PM exec -it ttysvc sh"
  pm rm -f -t 0 ttysvc >/dev/null
}

# --- networking -----------------------------------------------------------------------------------
p_port_publish() {
  local port
  port=${1:-$(free_port 2)}
  run_out pm run -d --name web -p 127.0.0.1:$port:80 bb httpd -f -p 80 -h /www
  wait_for 15 sh -c "busybox wget -qO- http://127.0.0.1:$port/ | grep -q 'hello from httpd'"
  run_out pm exec web sh -c 'ls /sys/class/net'
  expect_has "eth0 in the container" "$OUT" eth0
  # podman holds the published port with a socket it passes to the runtime: it must not reach
  # the container (the init, httpd, is checked; and a container whose init is ls itself).
  run_out pm exec web $FD_LIST
  expect_fds "exec in a container with a published port" "$OUT"
  local init; init=$(pm inspect -f '{{.State.Pid}}' web)
  run_out ls -l "/proc/$init/fd"
  expect_eq "fds of httpd, the init (0-2 and its listening socket)" "$(fds_of "$OUT")" "0 1 2 3"
  expect_eq "sockets of httpd" "$(printf '%s\n' "$OUT" | grep -c ' -> socket:')" 1
  pm rm -f -t 0 web >/dev/null
  run_out pm run --rm --name web-fds -p 127.0.0.1:$((port + 1)):80 bb $FD_LIST
  expect_fds "init of a container with a published port" "$OUT"
}
p_pod() {
  run_out pm pod create --name pod1 --network none
  run_out pm run -d --pod pod1 --name pod1-web bb httpd -f -p 127.0.0.1:8080 -h /www
  # The second container shares the pod's network namespace, so it reaches the first on loopback.
  wait_for 15 "$PM" run --rm --pod pod1 bb sh -c 'wget -qO- http://127.0.0.1:8080/ | grep -q "hello from httpd"'
  run_out pm pod ps --format '{{.Name}} {{.Status}} {{.NumberOfContainers}}'
  expect_has "pod ps" "$OUT" "pod1 Running 2"
  run_out pm pod rm -f -t 0 pod1
}

# --- the netavark backend (with aardvark-dns): podman's default on a fresh install -----------------
# Its containers join a network namespace podman made (/run/netns/netns-...) by path, and get
# podman's default sysctl net.ipv4.ping_group_range there.
n_default_network() {
  run_out pm run --rm --name nv-default bb sh -c 'ls /sys/class/net; cat /proc/sys/net/ipv4/ping_group_range'
  expect_has "interfaces" "$OUT" eth0
  expect_eq "ping_group_range (podman's default sysctl)" "$(printf '%s\n' "$OUT" | tail -n 1 | tr '\t' ' ')" "0 0"
  expect_eq "the host's ping_group_range is untouched" "$(tr '\t' ' ' </proc/sys/net/ipv4/ping_group_range)" "$HOST_PING_RANGE"
}
n_sysctl() {
  run_out pm run --rm --sysctl net.ipv4.ping_group_range="0 2000" --sysctl net.ipv4.ip_unprivileged_port_start=80 bb sh -c \
    'cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start'
  expect_eq "sysctls in the container" "$(printf '%s\n' "$OUT" | tr '\t\n' '  ')" "0 2000 80 "
}
n_detach_exec_stop() {
  run_out pm run -d --name nv-svc bb sh -c "$SERVICE"
  wait_for 10 sh -c "$PM logs nv-svc | grep -q started"
  run_out pm exec nv-svc sh -c 'ls /sys/class/net'
  expect_has "exec sees the container's network" "$OUT" eth0
  run_out pm stop -t 20 nv-svc
  run_out pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' nv-svc; expect_eq "state, exit code" "$OUT" "exited 0"
  run_out pm rm nv-svc
}
n_exit7() { expect_rc 7 pm run --rm --name nv-exit7 bb sh -c 'exit 7'; expect_no_container nv-exit7; }
n_run_tty() { tty_shell nvrunit "$PM run -it --rm --name nv-tty bb sh"; }
# A user network: aardvark-dns resolves the containers' names.
n_dns() {
  run_out pm network create nv-net
  run_out pm run -d --name nv-web --network nv-net bb httpd -f -p 80 -h /www
  wait_for 20 "$PM" run --rm --network nv-net bb sh -c 'wget -qO- http://nv-web/ | grep -q "hello from httpd"'
  pm rm -f -t 0 nv-web >/dev/null
  run_out pm network rm nv-net
}
# A pod on the default network: its containers join the infra container's namespace by path.
n_pod() {
  run_out pm pod create --name nv-pod
  run_out pm run -d --pod nv-pod --name nv-pod-web bb httpd -f -p 127.0.0.1:8080 -h /www
  wait_for 15 "$PM" run --rm --pod nv-pod bb sh -c 'wget -qO- http://127.0.0.1:8080/ | grep -q "hello from httpd"'
  run_out pm pod rm -f -t 0 nv-pod
}

suite_podman() {
  HOST_PING_RANGE=$(tr '\t' ' ' </proc/sys/net/ipv4/ping_group_range)
  local be
  for be in cni:pm netavark:pmn; do
    podman_setup "${be%%:*}" "${be#*:}" || {
      echo "FAIL podman-setup-${be%%:*} (see $T/logs/podman-import-${be%%:*}.log)"; cat "$T/logs/podman-import-${be%%:*}.log"
      FAILED=$((FAILED + 1)); FAILS+=("podman-setup-${be%%:*}"); return
    }
  done
  PM=$T/bin/pm
  scenario podman-run-exit-0 p_exit0
  scenario podman-run-exit-7 p_exit7
  scenario podman-run-fds p_run_fds
  scenario podman-run-exit-126-not-executable p_exit126
  scenario podman-run-exit-127-not-found p_exit127
  scenario podman-run-user p_user
  scenario podman-run-workdir p_workdir
  scenario podman-run-env p_env
  scenario podman-run-hostname p_hostname
  scenario podman-run-stdin-pipe p_stdin
  scenario podman-run-network-none p_network_none
  scenario podman-run-default-devices p_devices
  scenario podman-run-default-mounts p_mounts
  scenario podman-run-masked-paths p_masked_paths
  scenario podman-run-readonly-paths p_readonly_paths
  scenario podman-run-caps-default p_caps_default
  scenario podman-run-cap-drop-all p_caps_drop_all
  scenario podman-run-cap-add-net-admin p_caps_add
  scenario podman-run-seccomp-default p_seccomp_default
  scenario podman-run-seccomp-unconfined p_seccomp_unconfined
  scenario podman-run-no-new-privileges p_no_new_privs
  scenario podman-run-privileged p_privileged
  scenario podman-run-read-only p_read_only
  scenario podman-run-tmpfs p_tmpfs
  scenario podman-run-init p_init
  scenario podman-run-uidmap p_uidmap
  scenario podman-run-ulimit p_ulimit
  scenario podman-run-volume-rw p_volume_rw
  scenario podman-run-volume-ro p_volume_ro
  scenario podman-run-detach p_detach_start
  scenario podman-ps p_ps
  scenario podman-logs p_logs
  scenario podman-exec-exit-code p_exec_rc
  scenario podman-exec-user p_exec_user
  scenario podman-exec-env p_exec_env
  scenario podman-exec-workdir p_exec_workdir
  scenario podman-exec-fds p_exec_fds
  scenario podman-exec-stdin p_exec_stdin
  scenario podman-exec-detach p_exec_detach
  scenario podman-top p_top
  scenario podman-pause-unpause p_pause
  scenario podman-kill-usr1 p_kill_usr1
  scenario podman-update-memory p_update_memory
  scenario podman-restart p_restart
  scenario podman-stop-graceful p_stop_graceful
  scenario podman-rm p_rm
  scenario podman-stop-timeout-sigkill p_stop_kill
  scenario podman-rm-force p_rm_force
  scenario podman-limit-memory p_limit_memory
  scenario podman-limit-pids p_limit_pids
  scenario podman-limit-cpus p_limit_cpus
  scenario podman-run-it-tty p_run_tty
  scenario podman-exec-it-tty p_exec_tty
  scenario podman-port-publish p_port_publish
  scenario podman-pod p_pod
  PM=$T/bin/pmn
  scenario podman-netavark-default-network n_default_network
  scenario podman-netavark-sysctl n_sysctl
  scenario podman-netavark-detach-exec-stop n_detach_exec_stop
  scenario podman-netavark-port-publish p_port_publish
  scenario podman-netavark-dns n_dns
  scenario podman-netavark-pod n_pod
  scenario podman-netavark-run-exit-7 n_exit7
  scenario podman-netavark-run-tty n_run_tty
  PM=$T/bin/pm
}
