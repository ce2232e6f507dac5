#!/usr/bin/env bash
# Makes a busybox bundle in a temp dir and runs a container from it with berth.
set -euo pipefail
BERTH=${BERTH:-$(dirname "$0")/../target/berth}
# The runc face of the same binary (berth-runc is a link to it).
RUNC_FACE=("$BERTH" oci)
BUSYBOX=${BUSYBOX:-/bin/busybox}
dir=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$(mktemp -d /tmp/berth-demo-state.XXXXXX)
people=$(mktemp -d /tmp/berth-demo-people.XXXXXX)
trap 'rm -rf "$dir" "$root" "$people"' EXIT
mkdir -p "$dir/rootfs/bin"
cp "$BUSYBOX" "$dir/rootfs/bin/busybox"
for app in sh echo cat hostname id ls ps sleep uname; do ln -s busybox "$dir/rootfs/bin/$app"; done
"${RUNC_FACE[@]}" spec --bundle "$dir"
# The default spec wants a terminal and runs sh; the demo prints what the container sees.
python3 - "$dir/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo \"hello from $(hostname), pid $$, $(id)\"; echo mounts:; cat /proc/mounts | cut -d' ' -f2,3 | head -12; ps"]
json.dump(c, open(p, "w"), indent=2)
PY
echo "+ berth oci --root $root run --bundle $dir demo"
"${RUNC_FACE[@]}" --root "$root" run --bundle "$dir" "demo-$$"
# The people face: Docker's language, the same rootfs given with --rootfs.
echo "+ berth run --rm --rootfs $dir/rootfs sh -c ..."
"$BERTH" --root "$people/root" --runroot "$people/run" run --rm --rootfs "$dir/rootfs" \
  sh -c 'echo "hello from $(hostname) (berth run), $(id)"'
# An image, offline: the same rootfs imported as a one-layer image, then run by name (the
# container gets its own overlay over the image's layer).
tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
echo "+ berth import --change 'CMD [...]' rootfs.tar demo/busybox:1"
"$BERTH" --root "$people/root" --runroot "$people/run" import \
  --change 'CMD ["sh", "-c", "echo hello from an image: $(uname -s), $(id)"]' \
  "$dir/rootfs.tar" demo/busybox:1
"$BERTH" --root "$people/root" --runroot "$people/run" images
echo "+ berth run --rm demo/busybox:1"
"$BERTH" --root "$people/root" --runroot "$people/run" run --rm demo/busybox:1
