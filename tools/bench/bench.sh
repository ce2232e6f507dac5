#!/usr/bin/env bash
# make bench: berth, crun and runc side by side; regenerates BENCHMARKS.md.
#
#   tools/bench/bench.sh [--people|--pull] [--quick]        (as root)
#
# Installs what is missing (Debian: runc crun hyperfine busybox-static gcc libc6-dev),
# builds the berth release binary (unless BERTH names berth's runc face, berth-runc), then runs tools/bench/bench.py,
# which builds the bundles, measures, cleans up (containers, cgroups, temp dirs) and writes
# BENCHMARKS.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

if [ "$(id -u)" != 0 ]; then
	echo "bench.sh: must run as root (containers, namespaces, cgroups)" >&2
	exit 1
fi

need=()
for tool in runc crun hyperfine gcc python3 unshare; do
	command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
need=("${need[@]/unshare/util-linux}")
# The rootfs gets a copy of /bin/busybox: it must be the static one.
case "$(ldd /bin/busybox 2>&1)" in
*"not a dynamic"* | *statically*) ;;
*) need+=(busybox-static) ;;
esac
# floor.c and nsexec.c are linked statically: libc.a comes with libc6-dev.
compgen -G '/usr/lib/*/libc.a' >/dev/null || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The release binary as `make release` builds it (static, see the Makefile).
if [ -z "${BERTH:-}" ]; then
	make -C "$repo" -s release
	BERTH=$repo/target/berth-runc
fi
# The people face against podman (tools/bench/people.py) after the runc face's table:
# bench.py rewrites BENCHMARKS.md, people.py replaces its own section at the end.
# Then pulls against podman and the floor (tools/bench/pull.py), whose section follows.
# `--people` runs only the last two, `--pull` only pulls.
people=$(dirname "$BERTH")/berth
only=${1:-}
case $only in
--people | --pull) shift ;;
*) python3 "$here/bench.py" --berth "$BERTH" --out "$repo/BENCHMARKS.md" "$@" ;;
esac
need=()
command -v podman >/dev/null 2>&1 || need+=(podman conmon runc)
[ -x /usr/bin/time ] || need+=(time)
for tool in docker-registry skopeo curl; do
	command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "$only" != --pull ]; then
	python3 "$here/people.py" --berth "$people" --out "$repo/BENCHMARKS.md" "$@"
fi
python3 "$here/pull.py" --berth "$people" --out "$repo/BENCHMARKS.md" "$@"
# How berth's cost grows with 1000 idle containers (a few minutes; GROWTH=0 skips it).
if [ "$only" != --pull ] && [ "${GROWTH:-1}" != 0 ]; then
	exec python3 "$here/growth.py" --berth "$people" --out "$repo/BENCHMARKS.md" "$@"
fi
