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
# The helper is restarted should it die (Python has been seen crashing in dom0 on a loaded
# host); a restarted helper finds the guest by name and serves the pending request again.
( while [ ! -e /run/rig-stop ]; do
      python3 /rigdata/dom0-helper.py >> /var/log/xen/helper.log 2>&1
      echo "helper exited with $? at $(cut -d' ' -f1 /proc/uptime)s" >> /var/log/xen/helper.log
      sleep 1
  done ) &
xl unpause rig
say "guest $DOMID running scenarios: $SCENARIOS"
# Wait for the guest's END (or PANIC) line, whichever domain id it has by then (a
# save/restore gives it a new one), a crash, or the time limit. A shut-down domain ends the
# wait too, except while the helper is saving it (/run/rig-saving).
uptime_s() { cut -d. -f1 /proc/uptime; }
start=$(uptime_s); gone=0; stopped=0; result=timeout
while [ $(( $(uptime_s) - start )) -lt $TIMEOUT ]; do
    if xl dmesg | grep -aqE '^\(d[0-9]+\) RIG: (END|PANIC)'; then result=end; break; fi
    state=$(xl list rig 2>/dev/null | awk 'NR==2 {print $5}')
    case "$state" in
        *c*) result=crashed; break;;
        *s*) if [ -e /run/rig-saving ]; then stopped=0; else stopped=$((stopped+1)); fi
             [ $stopped -ge 5 ] && { result=shutdown; break; };;
        "") if [ -e /run/rig-saving ]; then gone=0; else gone=$((gone+1)); fi
            [ $gone -ge 30 ] && { result=gone; break; };;
        *) gone=0; stopped=0;;
    esac
    sleep 2
done
case $result in
    end) ;;
    timeout) say "FAIL guest timed out after ${TIMEOUT}s";;
    *) say "FAIL guest $result without its END line";;
esac
say "guest finished ($result) after $(( $(uptime_s) - start ))s"
xl dmesg | grep -aE '^\(d[0-9]+\) ' | sed -E 's/^\(d[0-9]+\) /RIGGUEST: /'
touch /run/rig-stop
sed 's/^/RIGHELPER: /' /var/log/xen/helper.log
for f in /var/log/xen/*.log; do
    case "$f" in */helper.log) continue;; esac
    sed "s|^|RIGDOM0: ${f##*/}: |" "$f"
done
say "done"
sync; echo o > /proc/sysrq-trigger; sleep 5; poweroff -f
