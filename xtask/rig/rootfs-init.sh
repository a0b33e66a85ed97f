#!/bin/sh
# Fixed dom0 init baked into the rig root filesystem: mount the per-run data disk and hand
# over to the run's own init script, so the root filesystem never changes between runs.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mount -o remount,rw /
mkdir -p /rigdata
if mount -t ext2 /dev/vdb /rigdata && [ -x /rigdata/init.sh ]; then
    exec /rigdata/init.sh
fi
echo "RIGHOST: FAIL no rig data disk"
echo o > /proc/sysrq-trigger; sleep 5; poweroff -f
