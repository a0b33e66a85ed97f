#!/usr/bin/env python3
"""dom0 side of the rig scenarios.

The guest writes requests to /local/domain/<id>/data/rig/request = "<seq> <command> <args…>"
and waits for /local/domain/<id>/data/rig/reply = "<seq> <answer…>". Commands:
  grant-read <gref> <nbytes>   map the guest's grant through gntdev, answer its bytes (ASCII)
  evtchn-echo <port>           bind to the guest's unbound port, consume the event Xen
                               raises on dom0's new port at bind time, notify the guest,
                               wait for its notification, answer "ok <port> after <s>"
  write <path> <value>         write a key (fires the guest's watches)
  qemu <command…>              answer the device model's human monitor output, one line
  save-restore                 `xl save` the guest (libxl asks it to suspend through
                               control/shutdown), `xl restore` it paused, follow it to its
                               new domain id, answer there, unpause it
"""
import fcntl, mmap, os, select, socket, struct, subprocess, sys, time

def guest_domid():
    """The rig guest's current domain id (a restore gives it a new one)."""
    for _ in range(120):
        out = subprocess.run(["xl", "domid", "rig"], capture_output=True, text=True).stdout.strip()
        if out.isdigit():
            return int(out)
        time.sleep(1)
    raise SystemExit("no domain called rig")


DOMID = guest_domid()
HOME = f"/local/domain/{DOMID}/data/rig"
IOCTL_GNTDEV_MAP_GRANT_REF = (24 << 16) | (ord('G') << 8) | 0
IOCTL_GNTDEV_UNMAP_GRANT_REF = (16 << 16) | (ord('G') << 8) | 1
IOCTL_EVTCHN_BIND_INTERDOMAIN = (8 << 16) | (ord('E') << 8) | 1
IOCTL_EVTCHN_NOTIFY = (4 << 16) | (ord('E') << 8) | 4
# Generous bounds: the rig runs under TCG on machines loaded by other work.
BIND_EVENT_TIMEOUT = 60
GUEST_EVENT_TIMEOUT = 360
SAVE_TIMEOUT = 600
T0 = time.monotonic()


def log(text):
    print(f"{time.monotonic() - T0:8.1f} {text}", flush=True)


def xs(*args):
    return subprocess.run(["xenstore-" + args[0], *args[1:]], capture_output=True, text=True, timeout=60).stdout.strip()


class Store:
    """One connection to xenstored's socket, kept for the helper's life: waiting for the
    guest's request is a watch on it instead of a `xenstore-read` process every poll (dom0
    processes are what QEMU TCG has been seen corrupting, so the helper starts as few as
    it can)."""

    READ, WATCH, WRITE, WATCH_EVENT, ERROR = 2, 4, 11, 15, 16

    def __init__(self, path="/run/xenstored/socket"):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.events = 0
        self.next_id = 1

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise OSError("xenstored closed the connection")
            data += chunk
        return data

    def _message(self):
        kind, req_id, _tx, length = struct.unpack("<IIII", self._recv_exact(16))
        return kind, req_id, self._recv_exact(length)

    def request(self, kind, *parts):
        payload = b"".join(parts)
        req_id = self.next_id
        self.next_id += 1
        self.sock.sendall(struct.pack("<IIII", kind, req_id, 0, len(payload)) + payload)
        while True:
            got, got_id, body = self._message()
            if got == self.WATCH_EVENT:
                self.events += 1
                continue
            if got == self.ERROR:
                raise OSError(body.rstrip(b"\0").decode())
            if got_id != req_id:
                raise OSError(f"xenstored answered request {got_id}, expected {req_id}")
            return body

    def read(self, path):
        try:
            return self.request(self.READ, path.encode(), b"\0").decode("ascii", "replace")
        except OSError as error:
            if str(error) == "ENOENT":
                return ""
            raise

    def write(self, path, value):
        self.request(self.WRITE, path.encode(), b"\0", value.encode())

    def watch(self, path, token):
        self.request(self.WATCH, path.encode(), b"\0", token.encode(), b"\0")

    def wait_event(self, timeout):
        """Wait up to `timeout` seconds for a watch event (True when one came)."""
        if self.events:
            self.events = 0
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        kind, _, _ = self._message()
        if kind != self.WATCH_EVENT:
            raise OSError(f"unexpected xenstored message {kind}")
        return True


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


def wait_event(fd, timeout):
    """The next port /dev/xen/evtchn reports within `timeout` seconds (re-enabled for the
    next event), or None."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return None
    port = struct.unpack("<I", os.read(fd, 4))[0]
    os.write(fd, struct.pack("<I", port))
    return port


def evtchn_echo(remote_port):
    fd = os.open("/dev/xen/evtchn", os.O_RDWR)
    try:
        # With a mutable buffer, ioctl() returns the system call's result: the local port.
        local = fcntl.ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, bytearray(struct.pack("<II", DOMID, remote_port)), True)
        # Xen sets the binder's new port pending at bind time ("we may have lost
        # notifications on the remote unbound port"). Consume that event first: taken for
        # the guest's answer, it let this helper answer and close the channel before the
        # guest had even looked at it (the guest then found its port unbound again).
        started = time.monotonic()
        first = wait_event(fd, BIND_EVENT_TIMEOUT)
        log(f"evtchn {local}: bind event {first} after {time.monotonic() - started:.1f}s")
        fcntl.ioctl(fd, IOCTL_EVTCHN_NOTIFY, struct.pack("<I", local))
        started = time.monotonic()
        port = wait_event(fd, GUEST_EVENT_TIMEOUT)
        if port is None:
            return f"timeout waiting {GUEST_EVENT_TIMEOUT}s for the guest's notification on {local}"
        return f"ok {port} after {time.monotonic() - started:.1f}s"
    finally:
        os.close(fd)


def run_logged(args, log_name, timeout):
    with open(f"/var/log/xen/{log_name}", "a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        return subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode


def save_restore(store, seq):
    """Returns the answer when it failed, None when it answered the restored guest itself."""
    global DOMID, HOME
    image = "/var/lib/xen/rig.save"
    open("/run/rig-saving", "w").close()
    try:
        started = time.monotonic()
        rc = run_logged(["xl", "-v", "save", "rig", image], "xl-save.log", SAVE_TIMEOUT)
        log(f"xl save rig -> {rc} after {time.monotonic() - started:.1f}s")
        if rc != 0:
            return f"error xl save exited {rc}"
        started = time.monotonic()
        rc = run_logged(["xl", "-v", "restore", "-p", image], "xl-restore.log", SAVE_TIMEOUT)
        log(f"xl restore -> {rc} after {time.monotonic() - started:.1f}s")
        if rc != 0:
            return f"error xl restore exited {rc}"
        old = DOMID
        DOMID = guest_domid()
        HOME = f"/local/domain/{DOMID}/data/rig"
        log(f"guest restored: domain {old} -> {DOMID}")
        store.write(f"{HOME}/reply", f"{seq} ok restored from dom{old} as dom{DOMID}")
        xs("chmod", "-r", HOME, f"n{DOMID}")
        store.watch(f"{HOME}/request", "request")
        subprocess.run(["xl", "unpause", "rig"], check=True)
        return None
    except Exception as error:  # report every failure to the guest (wherever it is)
        return f"error {error!r}"
    finally:
        os.unlink("/run/rig-saving")


def serve(store, seq, command, args):
    if command == "grant-read":
        return grant_read(int(args[0]), int(args[1]))
    if command == "evtchn-echo":
        return evtchn_echo(int(args[0]))
    if command == "save-restore":
        return save_restore(store, seq)
    if command == "write":
        store.write(args[0], " ".join(args[1:]))
        return "ok"
    if command == "qemu":
        out = subprocess.run(["xl", "qemu-monitor-command", str(DOMID), " ".join(args)], capture_output=True, text=True, timeout=120)
        return " | ".join(line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip())
    return f"unknown command {command}"


def main():
    last = None
    log(f"serving domain {DOMID}")
    store = Store()
    store.watch(f"{HOME}/request", "request")
    deadline = time.time() + 3600
    while time.time() < deadline and not os.path.exists("/run/rig-stop"):
        # The watch fires on every write of the request; the 5 s timeout is a safety net
        # (and how /run/rig-stop is noticed).
        store.wait_event(5)
        request = store.read(f"{HOME}/request")
        if request and request != last:
            last = request
            seq, command, *args = request.split()
            try:
                answer = serve(store, seq, command, args)
            except Exception as error:  # report every failure to the guest
                answer = f"error {error!r}"
            log(f"request {request!r} -> {answer!r}")
            if answer is not None:
                store.write(f"{HOME}/reply", f"{seq} {answer}")


main()
