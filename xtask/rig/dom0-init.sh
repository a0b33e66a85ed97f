#!/bin/sh
# Per-run dom0 init of the Xen rig (on the data disk): start the toolstack, run the rig
# guest with the requested scenarios, relay its result lines, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
say() { echo "RIGHOST: $*"; }
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /dev/shm
say "dom0 up after $(cut -d' ' -f1 /proc/uptime)s, hypervisor $(cat /sys/hypervisor/type 2>/dev/null)"
for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd; do modprobe $m || say "modprobe $m failed"; done
mount -t xenfs xenfs /proc/xen
mkdir -p /run/xen /run/xenstored /var/log/xen /var/lib/xen
xenstored --pid-file /run/xenstored.pid
xen-init-dom0 >/dev/null
xenconsoled --pid-file /run/xenconsoled.pid --log=none
truncate -s 64M /var/lib/xen/rig-disk.img
SCENARIOS=$(cat /rigdata/scenarios)
TIMEOUT=$(cat /rigdata/guest-timeout)
cat > /root/rig.cfg <<CFG
name = "rig"
type = "hvm"
memory = 64
vcpus = 1
$(if [ "$(cat /rigdata/boot-mode)" = iso ]; then printf 'boot = "d"\ndisk = [ "format=raw,vdev=hda,access=rw,backendtype=qdisk,target=/var/lib/xen/rig-disk.img", "format=raw,vdev=hdc,access=ro,devtype=cdrom,backendtype=qdisk,target=/rigdata/guest.iso" ]'; else printf 'kernel = "/rigdata/guest.elf"\ndisk = [ "format=raw,vdev=hda,access=rw,backendtype=qdisk,target=/var/lib/xen/rig-disk.img" ]'; fi)
serial = "file:/var/log/xen/rig.serial"
vnc = 0
on_poweroff = "preserve"
on_reboot = "preserve"
on_crash = "preserve"
device_model_args_hvm = [ "-device", "e1000,id=rignic,romfile=" ]
vga = "none"
CFG
# libxl's QMP handshake with the device model times out when the host is loaded: retry.
created=no
for attempt in 1 2 3; do
    say "xl create (attempt $attempt)"
    if xl create -p /root/rig.cfg > /var/log/xen/xl-create.log 2>&1; then created=yes; break; fi
    xl destroy rig >/dev/null 2>&1
    sleep 5
done
if [ $created = no ]; then
    say "FAIL xl create"; sed 's/^/RIGHOST: xl: /' /var/log/xen/xl-create.log | tail -30
    for f in /var/log/xen/qemu-dm-*.log; do sed "s|^|RIGHOST: $f: |" "$f" | tail -30; done
    echo o > /proc/sysrq-trigger; sleep 5; poweroff -f
fi
DOMID=$(xl domid rig)
xenstore-write /local/domain/$DOMID/data/rig/scenarios "$SCENARIOS"
xenstore-chmod /local/domain/$DOMID/data/rig n$DOMID
python3 /rigdata/dom0-helper.py $DOMID > /var/log/xen/helper.log 2>&1 &
HELPER=$!
xl unpause rig
say "guest $DOMID running scenarios: $SCENARIOS"
i=0
while [ $i -lt $TIMEOUT ]; do
    state=$(xl list rig 2>/dev/null | awk 'NR==2 {print $5}')
    case "$state" in *s*|*c*|*d*) break;; esac
    xl dmesg | grep -aq "(d$DOMID) RIG: END" && break
    sleep 2; i=$((i+2))
done
[ $i -ge $TIMEOUT ] && say "FAIL guest timed out after ${TIMEOUT}s"
xl dmesg | grep -a "(d$DOMID) " | sed "s/^(d$DOMID) /RIGGUEST: /"
sed 's/^/RIGHELPER: /' /var/log/xen/helper.log
kill $HELPER 2>/dev/null
say "done"
sync; echo o > /proc/sysrq-trigger; sleep 5; poweroff -f
