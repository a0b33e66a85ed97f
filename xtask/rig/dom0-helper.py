#!/usr/bin/env python3
"""dom0 side of the rig scenarios.

The guest writes requests to /local/domain/<id>/data/rig/request = "<seq> <command> <args…>"
and waits for /local/domain/<id>/data/rig/reply = "<seq> <answer…>". Commands:
  grant-read <gref> <nbytes>   map the guest's grant through gntdev, answer its bytes (ASCII)
  evtchn-echo <port>           bind to the guest's unbound port, notify it, wait for its
                               notification, answer "ok <local-port>"
  write <path> <value>         write a key (fires the guest's watches)
  qemu <command…>              answer the device model's human monitor output, one line
"""
import fcntl, mmap, os, select, struct, subprocess, sys, time

DOMID = int(sys.argv[1])
HOME = f"/local/domain/{DOMID}/data/rig"
IOCTL_GNTDEV_MAP_GRANT_REF = (24 << 16) | (ord('G') << 8) | 0
IOCTL_GNTDEV_UNMAP_GRANT_REF = (16 << 16) | (ord('G') << 8) | 1
IOCTL_EVTCHN_BIND_INTERDOMAIN = (8 << 16) | (ord('E') << 8) | 1
IOCTL_EVTCHN_NOTIFY = (4 << 16) | (ord('E') << 8) | 4


def xs(*args):
    return subprocess.run(["xenstore-" + args[0], *args[1:]], capture_output=True, text=True).stdout.strip()


def grant_read(gref, nbytes):
    fd = os.open("/dev/xen/gntdev", os.O_RDWR)
    try:
        arg = bytearray(struct.pack("<IIQII", 1, 0, 0, DOMID, gref))
        fcntl.ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, arg)
        index = struct.unpack_from("<Q", arg, 8)[0]
        page = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=index)
        data = bytes(page[:nbytes])
        page[nbytes:nbytes + 5] = b"dom0!"
        page.close()
        fcntl.ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, struct.pack("<QII", index, 1, 0))
        return data.decode("ascii", "replace")
    finally:
        os.close(fd)


def evtchn_echo(remote_port):
    fd = os.open("/dev/xen/evtchn", os.O_RDWR)
    try:
        # With a mutable buffer, ioctl() returns the system call's result: the local port.
        local = fcntl.ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, bytearray(struct.pack("<II", DOMID, remote_port)), True)
        fcntl.ioctl(fd, IOCTL_EVTCHN_NOTIFY, struct.pack("<I", local))
        ready, _, _ = select.select([fd], [], [], 20)
        if not ready:
            return f"timeout waiting for the guest's notification on {local}"
        port = struct.unpack("<I", os.read(fd, 4))[0]
        return f"ok {port}"
    finally:
        os.close(fd)


def serve(seq, command, args):
    if command == "grant-read":
        return grant_read(int(args[0]), int(args[1]))
    if command == "evtchn-echo":
        return evtchn_echo(int(args[0]))
    if command == "write":
        xs("write", args[0], " ".join(args[1:]))
        return "ok"
    if command == "qemu":
        out = subprocess.run(["xl", "qemu-monitor-command", str(DOMID), " ".join(args)], capture_output=True, text=True)
        return " | ".join(line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip())
    return f"unknown command {command}"


def main():
    last = None
    deadline = time.time() + 1800
    while time.time() < deadline:
        request = xs("read", f"{HOME}/request")
        if request and request != last:
            last = request
            seq, command, *args = request.split()
            try:
                answer = serve(seq, command, args)
            except Exception as error:  # report every failure to the guest
                answer = f"error {error!r}"
            print(f"request {request!r} -> {answer!r}", flush=True)
            xs("write", f"{HOME}/reply", f"{seq} {answer}")
        time.sleep(0.2)


main()
