"""The busybox root filesystem the benches import as their image: one static busybox,
the applets a bench runs linked to it, and a passwd for root, as a tar in `work`."""

import os
import shutil
import subprocess


def busybox_tar(work, applets, name="rootfs"):
    root = os.path.join(work, name)
    shutil.rmtree(root, ignore_errors=True)
    for d in ["bin", "etc", "tmp", "proc", "dev", "sys"]:
        os.makedirs(os.path.join(root, d))
    shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
    for a in applets:
        os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    tar = os.path.join(work, name + ".tar")
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    return tar
