#!/bin/sh
# Build the dom0 root filesystem of the Xen rig into $1 (a directory under target/rig).
# Runs as root; needs debootstrap and network access to the Debian mirror of this machine.
set -eu
out=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
export DEBIAN_FRONTEND=noninteractive
rm -rf "$out/rootfs.tmp"
mkdir -p "$out"
echo "rig: debootstrap (about 2 minutes)"
debootstrap --variant=minbase \
  --include=linux-image-amd64,xen-utils-4.17,xen-utils-common,xenstore-utils,qemu-system-xen,seabios,kmod,udev,iproute2,procps,python3,e2fsprogs \
  bookworm "$out/rootfs.tmp" "$mirror" > "$out/debootstrap.log" 2>&1 || { tail -20 "$out/debootstrap.log"; exit 1; }
# The tools must match the hypervisor the host boots (bookworm-security).
echo "deb $security bookworm-security main" >> "$out/rootfs.tmp/etc/apt/sources.list"
cp /etc/resolv.conf "$out/rootfs.tmp/etc/resolv.conf"
echo "rig: upgrading the Xen tools in the chroot to the hypervisor's version"
chroot "$out/rootfs.tmp" apt-get update > "$out/chroot-apt.log" 2>&1
chroot "$out/rootfs.tmp" apt-get install -y --no-install-recommends xen-utils-4.17 xen-utils-common xenstore-utils >> "$out/chroot-apt.log" 2>&1
chroot "$out/rootfs.tmp" apt-get clean
rm -rf "$out/rootfs.tmp/var/lib/apt/lists/"*
mkdir -p "$out/rootfs.tmp/rig"
rm -rf "$out/rootfs"
mv "$out/rootfs.tmp" "$out/rootfs"
echo "rig: rootfs ready"
