"""Run one kernel image under speakeasy and print what happened, one fact per line.

Used by `cargo xtask verify`. Lines:
  entry <type> ret=<hex> error=<kind or ->     one per emulated entry point, in order
  api <module.name> ret=<hex>                  every API call the image made
  log <text>                                   DbgPrintEx/DbgPrint text
  touch <name>                                 XenTouch calls answered by the xen.sys stand-in
  registry <ZwOpenKey|ZwCreateKey> <path>      keys the image opened or created
  pnp <step> <result>                          the scripted PnP sequence (with --pnp)
  open-handles <n>                             registry handles still open at the end

xenbus.sys and xenfilt.sys import XenTouch from xen.sys, which speakeasy does not model:
--xen-touch-status makes the hook answer with that NTSTATUS (the real xen.sys answers
STATUS_SUCCESS for a matching version, STATUS_INCOMPATIBLE_DRIVER_BLOCKED otherwise).

speakeasy's registry is too thin for xen.sys's DllInitialize (no ZwCreateKey, no relative
opens, ZwOpenKey of a missing key crashes the emulator), so Registry below models the
Zw*Key calls over a dict, with the service key of the driver present as after installation.
Kernel callbacks speakeasy lacks (DbgSetDebugPrintCallback, KeRegisterBugCheckCallback)
are accepted; nothing calls them back in the emulation.
"""
import argparse
import logging
import os
import struct
import sys

import speakeasy

import speakeasy_xenbus

STATUS_SUCCESS = 0
STATUS_BUFFER_OVERFLOW = 0x80000005
STATUS_NO_MORE_ENTRIES = 0x8000001A
STATUS_INVALID_HANDLE = 0xC0000008
STATUS_BUFFER_TOO_SMALL = 0xC0000023
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
STATUS_INVALID_PARAMETER_2 = 0xC00000F0
REG_SZ = 1
MACHINE = "\\registry\\machine\\"


def read_unicode_string(emu, address):
    """The text of the UNICODE_STRING at `address`."""
    length, _, buffer = struct.unpack("<HHxxxxQ", emu.mem_read(address, 16))
    return emu.mem_read(buffer, length).decode("utf-16le", "replace") if buffer else ""


class Registry:
    """Keys (lower-case full paths) with their values {lower-case name: (type, bytes)}."""

    def __init__(self, service):
        self.keys = {}
        self.handles = {}
        self.next_handle = 0x7000
        self.calls = []
        path = MACHINE + "system\\currentcontrolset\\services\\"
        for part in ("system", "system\\currentcontrolset", "system\\currentcontrolset\\services"):
            self.keys[MACHINE + part] = {}
        self.keys[path + service.lower()] = {}
        if service.lower() == "xenbus":
            self.keys.update(speakeasy_xenbus.parameters(path))
        if service.lower() == "xenfilt":
            # The INF's AddReg: the PCI root bus is a filtered bus.
            self.keys[path + "xenfilt\\parameters"] = {
                "*pnp0a03": (REG_SZ, "PCI\0".encode("utf-16le")),
                "internal_ide_channel": (REG_SZ, "IDE\0".encode("utf-16le")),
            }

    def path_of(self, emu, attributes):
        root, name = struct.unpack("<8xQQ", emu.mem_read(attributes, 24))
        text = read_unicode_string(emu, name).lower()
        if root:
            parent = self.handles.get(root)
            if parent is None:
                return None
            return parent + "\\" + text
        return text

    def new_handle(self, path):
        self.next_handle += 4
        self.handles[self.next_handle] = path
        return self.next_handle

    def open(self, emu, argv, create):
        out, _access, attributes = argv[0], argv[1], argv[2]
        path = self.path_of(emu, attributes)
        if path is None:
            return STATUS_INVALID_HANDLE
        self.calls.append(("ZwCreateKey" if create else "ZwOpenKey", path))
        if path not in self.keys:
            if not create:
                return STATUS_OBJECT_NAME_NOT_FOUND
            self.keys[path] = {}
        emu.mem_write(out, struct.pack("<Q", self.new_handle(path)))
        return STATUS_SUCCESS

    def close(self, emu, argv):
        return STATUS_SUCCESS if self.handles.pop(argv[0], None) else STATUS_INVALID_HANDLE

    def query(self, emu, argv):
        key, name, _cls, out, length, needed = argv
        path = self.handles.get(key)
        if path is None:
            return STATUS_INVALID_HANDLE
        value = self.keys[path].get(read_unicode_string(emu, name).lower())
        if value is None:
            return STATUS_OBJECT_NAME_NOT_FOUND
        kind, data = value
        reply = struct.pack("<III", 0, kind, len(data)) + data
        emu.mem_write(needed, struct.pack("<I", len(reply)))
        if length < len(reply):
            return STATUS_BUFFER_OVERFLOW
        emu.mem_write(out, reply)
        return STATUS_SUCCESS

    def set(self, emu, argv):
        key, name, _title, kind, data, size = argv
        path = self.handles.get(key)
        if path is None:
            return STATUS_INVALID_HANDLE
        self.keys[path][read_unicode_string(emu, name).lower()] = (kind, bytes(emu.mem_read(data, size)))
        return STATUS_SUCCESS

    def delete_value(self, emu, argv):
        path = self.handles.get(argv[0])
        if path is None:
            return STATUS_INVALID_HANDLE
        name = read_unicode_string(emu, argv[1]).lower()
        return STATUS_SUCCESS if self.keys[path].pop(name, None) else STATUS_OBJECT_NAME_NOT_FOUND

    def enumerate(self, emu, argv):
        key, index, _cls, out, length, needed = argv
        path = self.handles.get(key)
        if path is None:
            return STATUS_INVALID_HANDLE
        children = sorted(k[len(path) + 1:] for k in self.keys if k.startswith(path + "\\")
                           and "\\" not in k[len(path) + 1:])
        if index >= len(children):
            return STATUS_NO_MORE_ENTRIES
        name = children[index].encode("utf-16le")
        reply = struct.pack("<qII", 0, 0, len(name)) + name
        emu.mem_write(needed, struct.pack("<I", len(reply)))
        if length < len(reply):
            return STATUS_BUFFER_OVERFLOW
        emu.mem_write(out, reply)
        return STATUS_SUCCESS


DRIVER_EXTENSION = 0x30    # DRIVER_OBJECT.DriverExtension
DRIVER_UNLOAD = 0x68       # DRIVER_OBJECT.DriverUnload
MAJOR_FUNCTION = 0x70      # DRIVER_OBJECT.MajorFunction[28]
ADD_DEVICE = 0x08          # DRIVER_EXTENSION.AddDevice
DEVICE_EXTENSION = 0x40    # DEVICE_OBJECT.DeviceExtension
STACK_SIZE = 0x4C          # DEVICE_OBJECT.StackSize
DEVICE_OBJECT_SIZE = 0x150
DO_DEVICE_INITIALIZING = 0x80
IRP_SIZE = 0xD0
STACK_LOCATION_SIZE = 0x48
IRP_MJ_PNP = 0x1B
IRP_MN_REMOVE_DEVICE = 0x02
IRP_MN_QUERY_DEVICE_RELATIONS = 0x07
IRP_MN_QUERY_DEVICE_TEXT = 0x0C
IRP_MN_QUERY_ID = 0x13
IRP_MN_QUERY_INTERFACE = 0x08
STATUS_NOT_SUPPORTED = 0xC00000BB


class Pnp:
    """Drives AddDevice and an IRP_MN_REMOVE_DEVICE through the image, as the PnP manager
    would, with a stand-in PDO below it; records what reaches the lower device."""

    def __init__(self):
        self.pdo = 0
        self.other = 0
        self.children = []
        self.present = None
        self.unplugs = []
        self.created = []
        self.pool = set()
        self.dereferenced = []
        self.invalidated = []
        self.attached = []
        self.calls = []
        self.detached = []
        self.deleted = []

    def attach(self, emu, argv):
        source, target = argv
        self.attached.append((source, target))
        return target if target in [self.pdo, self.other] + self.children else 0

    def device_property(self, emu, argv):
        """IoGetDeviceProperty on the stand-in PDO: the IDs of a PCI root bus."""
        device, prop, length, buffer, needed = argv
        if device == self.pdo:
            ids = {1: ["ACPI\\PNP0A03", "*PNP0A03"], 2: []}.get(prop & 0xFFF)
        elif device == self.other:
            ids = {1: ["PCI\\VEN_8086&DEV_7010"], 2: ["PCI\\CC_0101"]}.get(prop & 0xFFF)
        else:
            ids = None
        if ids is None:
            return STATUS_INVALID_PARAMETER_2
        data = "".join(i + "\0" for i in ids).encode("utf-16le") + b"\0\0"
        emu.mem_write(needed, struct.pack("<I", len(data)))
        if length < len(data):
            return STATUS_BUFFER_TOO_SMALL
        emu.mem_write(buffer, data)
        return STATUS_SUCCESS

    def pool_block(self, emu, data):
        block = emu.mem_map(max(len(data), 0x10), tag="xtask.reply")
        emu.mem_write(block, data)
        self.pool.add(block)
        return block

    def allocate_irp(self, emu, argv):
        """IoAllocateIrp as the I/O manager lays it out: positioned above the top location."""
        count = argv[0] & 0xFF
        irp = emu.mem_map(IRP_SIZE + count * STACK_LOCATION_SIZE, tag="xtask.irp")
        emu.mem_write(irp, bytes(IRP_SIZE + count * STACK_LOCATION_SIZE))
        emu.mem_write(irp + 0x42, struct.pack("<bb", count, count + 1))
        emu.mem_write(irp + 0xB8, struct.pack("<Q", irp + IRP_SIZE + count * STACK_LOCATION_SIZE))
        return irp

    def create_device(self, emu, argv):
        """IoCreateDevice (speakeasy's own fails on a driver's second device)."""
        driver, extension_size, _name, kind, characteristics, _exclusive, out = argv
        # 32-bit arguments arrive in 64-bit registers/slots with stale upper halves.
        extension_size &= 0xFFFFFFFF
        kind &= 0xFFFFFFFF
        characteristics &= 0xFFFFFFFF
        device = emu.mem_map(DEVICE_OBJECT_SIZE + extension_size, tag="xtask.device")
        emu.mem_write(device, bytes(DEVICE_OBJECT_SIZE + extension_size))
        emu.mem_write(device + 0x08, struct.pack("<Q", driver))
        emu.mem_write(device + 0x30, struct.pack("<II", DO_DEVICE_INITIALIZING, characteristics))
        emu.mem_write(device + DEVICE_EXTENSION, struct.pack("<QI", device + DEVICE_OBJECT_SIZE, kind))
        emu.mem_write(device + STACK_SIZE, bytes([1]))
        emu.mem_write(out, struct.pack("<Q", device))
        self.created.append(device)
        return STATUS_SUCCESS

    # The active platform device xenbus recorded (xen.sys Config*): the first child, whose
    # stored instance differs from the one the bus reports now (it moved slot).
    ACTIVE = {"DeviceID": "PCI\\VEN_8086&DEV_7010", "InstanceID": "3&267a616a&0&18"}

    def config_get_active(self, emu, argv):
        key = emu.read_mem_string(argv[0], 1) if argv[0] else ""
        value = self.ACTIVE.get(key)
        if value is None:
            return STATUS_OBJECT_NAME_NOT_FOUND
        emu.mem_write(argv[1], struct.pack("<Q", self.pool_block(emu, value.encode() + b"\0")))
        return STATUS_SUCCESS

    def free_pool(self, emu, argv, orig):
        if argv[0] in self.pool:
            self.pool.discard(argv[0])
            return 0
        return orig(argv)

    def answer(self, emu, device, irp, lower):
        """The bus driver below: BusRelations of the stand-in bus PDO, identity of its
        children. Returns the Information to hand back, or None to leave it."""
        major, minor = struct.unpack("<BB", emu.mem_read(lower, 2))
        argument, = struct.unpack("<I", emu.mem_read(lower + 8, 4))
        if major != IRP_MJ_PNP:
            return None
        if device == self.pdo and minor == IRP_MN_QUERY_DEVICE_RELATIONS and argument == 0:
            present = self.present if self.present is not None else self.children
            data = struct.pack("<I4x", len(present)) + b"".join(
                struct.pack("<Q", child) for child in present)
            return self.pool_block(emu, data)
        if device in self.children:
            index = self.children.index(device)
            text = None
            if minor == IRP_MN_QUERY_ID:
                text = {0: "PCI\\VEN_8086&DEV_7010\0",
                        3: "3&267a616a&0&%02X\0" % (index + 8),
                        2: "PCI\\VEN_8086&DEV_7010&REV_00\0PCI\\CC_0101\0\0"}.get(argument)
            elif minor == IRP_MN_QUERY_DEVICE_TEXT and argument == 1:
                text = "PCI bus 0, device %d, function 0\0" % (index + 1)
            if text is not None:
                return self.pool_block(emu, text.encode("utf-16le"))
        return None

    def call_driver(self, emu, argv):
        device, irp = argv
        location, = struct.unpack("<b", emu.mem_read(irp + 0x43, 1))
        current, = struct.unpack("<Q", emu.mem_read(irp + 0xB8, 8))
        self.calls.append((device, irp, location, current))
        # IofCallDriver moves one location down before the next driver runs.
        information = self.answer(emu, device, irp, current - STACK_LOCATION_SIZE)
        emu.mem_write(irp + 0x30, struct.pack("<I", STATUS_SUCCESS))
        if information is not None:
            emu.mem_write(irp + 0x38, struct.pack("<Q", information))
        return STATUS_SUCCESS


def give_drivers_an_extension():
    """speakeasy's DRIVER_OBJECT has no DRIVER_EXTENSION (where AddDevice is registered):
    allocate one, as the I/O manager does before DriverEntry."""
    from speakeasy.windows import objman

    original = objman.Driver.init_driver_object

    def init_driver_object(self, *args, **kwargs):
        original(self, *args, **kwargs)
        extension = self.emu.mem_map(0x40, tag="xtask.driver_extension")
        self.emu.mem_write(extension, struct.pack("<Q", self.address) + bytes(0x38))
        self.object.DriverExtension = extension
        self.emu.mem_write(self.address, self.get_bytes())

    objman.Driver.init_driver_object = init_driver_object


def new_pnp_irp(emu, minor, parameters):
    """A PnP IRP with two stack locations positioned for the top driver, its status
    STATUS_NOT_SUPPORTED as the PnP manager sends it."""
    irp = emu.mem_map(IRP_SIZE + 2 * STACK_LOCATION_SIZE, tag="xtask.irp")
    emu.mem_write(irp, bytes(IRP_SIZE + 2 * STACK_LOCATION_SIZE))
    top = irp + IRP_SIZE + STACK_LOCATION_SIZE
    emu.mem_write(irp + 0x30, struct.pack("<I", STATUS_NOT_SUPPORTED))
    emu.mem_write(irp + 0x42, struct.pack("<bb", 2, 2))
    emu.mem_write(irp + 0xB8, struct.pack("<Q", top))
    emu.mem_write(top, bytes([IRP_MJ_PNP, minor]))
    emu.mem_write(top + 8, parameters)
    return irp


def read_wide(emu, address):
    data = b""
    while len(data) < 1024:
        unit = bytes(emu.mem_read(address + len(data), 2))
        if unit == b"\0\0":
            break
        data += unit
    return data.decode("utf-16le", "replace")


def run_pnp(se, emu, driver, pnp, out):
    """AddDevice, then a REMOVE_DEVICE IRP, then DriverUnload; print one line per step."""
    read_ptr = lambda address: struct.unpack("<Q", emu.mem_read(address, 8))[0]
    extension = read_ptr(driver + DRIVER_EXTENSION)
    add_device = read_ptr(extension + ADD_DEVICE) if extension else 0
    dispatch = read_ptr(driver + MAJOR_FUNCTION + 8 * IRP_MJ_PNP)
    unload = read_ptr(driver + DRIVER_UNLOAD)
    out.append("pnp registered add_device=%d dispatch=%d unload=%d" % (bool(add_device), bool(dispatch), bool(unload)))
    if not (add_device and dispatch):
        # An inert driver (XenTouch refused) still unloads cleanly.
        if unload:
            se.call(unload, [driver])
        return
    pnp.pdo = emu.mem_map(0x200, tag="xtask.pdo")
    emu.mem_write(pnp.pdo, bytes(0x200))
    emu.mem_write(pnp.pdo + STACK_SIZE, bytes([1]))
    se.call(add_device, [driver, pnp.pdo])
    devices = [source for source, target in pnp.attached if target == pnp.pdo]
    out.append("pnp add_device attached=%d" % len(devices))
    if not devices:
        return
    fdo = devices[0]
    # Two BusRelations queries with two emulated children below the bus (a filter with an
    # attach policy hides them the first time and reports them the second).
    for _ in range(2):
        pdo = emu.mem_map(0x200, tag="xtask.child")
        emu.mem_write(pdo, bytes(0x200))
        emu.mem_write(pdo + STACK_SIZE, bytes([1]))
        pnp.children.append(pdo)
    for query in (1, 2):
        before = (len(pnp.dereferenced), len(pnp.invalidated), len(pnp.unplugs))
        irp = emu.mem_map(IRP_SIZE + 2 * STACK_LOCATION_SIZE, tag="xtask.irp")
        emu.mem_write(irp, bytes(IRP_SIZE + 2 * STACK_LOCATION_SIZE))
        top = irp + IRP_SIZE + STACK_LOCATION_SIZE
        emu.mem_write(irp + 0x42, struct.pack("<bb", 2, 2))
        emu.mem_write(irp + 0xB8, struct.pack("<Q", top))
        emu.mem_write(top, bytes([IRP_MJ_PNP, IRP_MN_QUERY_DEVICE_RELATIONS]))
        se.call(dispatch, [fdo, irp])
        status, = struct.unpack("<I", emu.mem_read(irp + 0x30, 4))
        information, = struct.unpack("<Q", emu.mem_read(irp + 0x38, 8))
        count = struct.unpack("<I", emu.mem_read(information, 4))[0] if information else 0
        filters = len([s for s, t in pnp.attached if t in pnp.children])
        out.append("pnp relations%d status=%#x reported=%d dereferenced=%d invalidated=%d child_filters=%d unplugged=%d" % (
            query, status, count, len(pnp.dereferenced) - before[0],
            len(pnp.invalidated) - before[1], filters, len(pnp.unplugs) - before[2]))
    # The child filter over the first child: DeviceID answered from what it stored, and
    # the EMULATED interface (v3) filled while the status is still STATUS_NOT_SUPPORTED.
    filters = [source for source, target in pnp.attached if target == pnp.children[0]]
    if filters:
        child = filters[0]
        calls = len(pnp.calls)
        irp = new_pnp_irp(emu, IRP_MN_QUERY_ID, struct.pack("<I", 0))
        se.call(dispatch, [child, irp])
        status, = struct.unpack("<I", emu.mem_read(irp + 0x30, 4))
        information, = struct.unpack("<Q", emu.mem_read(irp + 0x38, 8))
        text = read_wide(emu, information) if information else ""
        out.append("pnp child_device_id status=%#x passed_down=%d id=%s" % (
            status, len(pnp.calls) - calls, text.replace(" ", "_") or "-"))
        irp = new_pnp_irp(emu, IRP_MN_QUERY_ID, struct.pack("<I", 3))
        se.call(dispatch, [child, irp])
        information, = struct.unpack("<Q", emu.mem_read(irp + 0x38, 8))
        out.append("pnp child_instance_id id=%s" % (read_wide(emu, information) if information else "-"))
        guid = emu.mem_map(0x1000, tag="xtask.interface")
        emu.mem_write(guid, struct.pack("<IHH", 0x959027A1, 0xFCCE, 0x4E78) + bytes.fromhex("BCF4637384F499C5"))
        interface = guid + 0x100
        calls = len(pnp.calls)
        irp = new_pnp_irp(emu, IRP_MN_QUERY_INTERFACE, struct.pack("<QHHxxxxQQ", guid, 0x40, 3, interface, 0))
        se.call(dispatch, [child, irp])
        size, version, _, context = struct.unpack("<HHIQ", emu.mem_read(interface, 16))
        out.append("pnp child_interface size=%d version=%d context=%d passed_down=%d" % (
            size, version, int(context != 0), len(pnp.calls) - calls))
    # The second child vanishes from the bus after it was reported: it is left out and
    # marked missing; REMOVE_DEVICE then deletes its filter.
    if len(pnp.children) == 2:
        pnp.present = pnp.children[:1]
        before = len(pnp.dereferenced)
        irp = new_pnp_irp(emu, IRP_MN_QUERY_DEVICE_RELATIONS, struct.pack("<I", 0))
        se.call(dispatch, [fdo, irp])
        information, = struct.unpack("<Q", emu.mem_read(irp + 0x38, 8))
        count = struct.unpack("<I", emu.mem_read(information, 4))[0] if information else 0
        out.append("pnp relations3 reported=%d dereferenced=%d" % (count, len(pnp.dereferenced) - before))
        filters = [source for source, target in pnp.attached if target == pnp.children[1]]
        if filters:
            calls = len(pnp.calls)
            irp = new_pnp_irp(emu, IRP_MN_REMOVE_DEVICE, b"")
            se.call(dispatch, [filters[0], irp])
            out.append("pnp child_remove passed_down=%d detached=%d deleted=%d" % (
                len(pnp.calls) - calls, pnp.detached.count(pnp.children[1]),
                int(filters[0] in pnp.deleted)))
    pnp.calls = []
    # An IRP with two stack locations, positioned for the top driver (location 2).
    irp = emu.mem_map(IRP_SIZE + 2 * STACK_LOCATION_SIZE, tag="xtask.irp")
    emu.mem_write(irp, bytes(IRP_SIZE + 2 * STACK_LOCATION_SIZE))
    top = irp + IRP_SIZE + STACK_LOCATION_SIZE
    emu.mem_write(irp + 0x42, struct.pack("<bb", 2, 2))        # StackCount, CurrentLocation
    emu.mem_write(irp + 0xB8, struct.pack("<Q", top))           # CurrentStackLocation
    emu.mem_write(top, bytes([IRP_MJ_PNP, IRP_MN_REMOVE_DEVICE]))
    se.call(dispatch, [fdo, irp])
    lower_saw_top = any(c[1] == irp and c[3] == top + STACK_LOCATION_SIZE for c in pnp.calls)
    out.append("pnp remove passed_down=%d skipped=%d detached=%d deleted=%d children_detached=%d" % (
        len(pnp.calls), int(lower_saw_top), pnp.detached.count(pnp.pdo), int(fdo in pnp.deleted),
        len([d for d in pnp.detached if d in pnp.children])))
    # A second PDO whose IDs name no filtered bus (an IDE controller): a filter driver with
    # an attach policy leaves it alone.
    pnp.other = emu.mem_map(0x200, tag="xtask.pdo2")
    emu.mem_write(pnp.other, bytes(0x200))
    emu.mem_write(pnp.other + STACK_SIZE, bytes([1]))
    se.call(add_device, [driver, pnp.other])
    out.append("pnp add_device_other attached=%d" % len(
        [source for source, target in pnp.attached if target == pnp.other]))
    if unload:
        se.call(unload, [driver])


class Irql:
    """The processor's IRQL across the run: the drivers' locks raise with KfRaiseIrql and
    restore with KeLowerIrql (common::wdm::irql); a raise below the current level or a
    lower above it is what the kernel bug-checks."""

    def __init__(self):
        self.level = 0
        self.raises = 0
        self.lowers = 0
        self.highest = 0
        self.violations = []

    def current(self, emu, argv):
        return self.level

    def raise_(self, emu, argv):
        new = argv[0] & 0xFF
        old = self.level
        if new < old:
            self.violations.append("KfRaiseIrql(%d) at %d" % (new, old))
        self.level = new
        self.raises += 1
        self.highest = max(self.highest, new)
        return old

    def lower(self, emu, argv):
        new = argv[0] & 0xFF
        if new > self.level:
            self.violations.append("KeLowerIrql(%d) at %d" % (new, self.level))
        self.level = new
        self.lowers += 1
        return 0

    def line(self):
        return "irql raises=%d lowers=%d level=%d highest=%d violations=%s" % (
            self.raises, self.lowers, self.level, self.highest,
            ",".join(v.replace(" ", "_") for v in self.violations) or "-")


def hook(se, name, argc, function):
    """Serve ntoskrnl!name with function(emu, argv) (argv has argc arguments)."""
    se.add_api_hook(lambda emu, api, orig, argv: function(emu, argv), "ntoskrnl", name, argc=argc)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("--xen-touch-status", type=lambda s: int(s, 0), default=None)
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--pnp", action="store_true",
                        help="run AddDevice, IRP_MN_REMOVE_DEVICE and DriverUnload after DriverEntry")
    parser.add_argument("--xenfilt", choices=sorted(speakeasy_xenbus.XENFILT_MODES), default=None,
                        help="xenbus.sys: xenfilt below the FDO answers XENFILT_EMULATED v3 with this activation")
    args = parser.parse_args()

    logging.disable(logging.CRITICAL)
    # speakeasy calls only the first 10 exports of an image; xen.sys has 66, and every one
    # must survive a call (with speakeasy's dummy arguments: pointers to zeroed memory).
    import speakeasy.windows.kernel
    speakeasy.windows.kernel.MAX_EXPORTS_TO_EMULATE = 1 << 16
    se = speakeasy.Speakeasy()
    touches = []

    def xen_touch(emu, api_name, func, params):
        name = emu.read_mem_string(params[0], 1) if params[0] else "(null)"
        touches.append(name)
        return args.xen_touch_status & 0xFFFFFFFF

    if args.xen_touch_status is not None:
        se.add_api_hook(xen_touch, "xen", "XenTouch", argc=5)
    service = args.image.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    registry = Registry(service)
    xen_stand_in = speakeasy_xenbus.XenStandIn(registry)
    if service.lower() == "xenbus":
        xen_stand_in.install(se)
    hook(se, "ZwOpenKey", 3, lambda emu, argv: registry.open(emu, argv, False))
    hook(se, "ZwCreateKey", 7, lambda emu, argv: registry.open(emu, argv, True))
    hook(se, "ZwClose", 1, registry.close)
    hook(se, "ZwQueryValueKey", 6, registry.query)
    hook(se, "ZwSetValueKey", 6, registry.set)
    hook(se, "ZwDeleteValueKey", 2, registry.delete_value)
    hook(se, "ZwEnumerateKey", 6, registry.enumerate)
    irql = Irql()
    hook(se, "KeGetCurrentIrql", 0, irql.current)
    hook(se, "KfRaiseIrql", 1, irql.raise_)
    hook(se, "KeLowerIrql", 1, irql.lower)
    hook(se, "DbgSetDebugPrintCallback", 2, lambda emu, argv: STATUS_SUCCESS)
    hook(se, "KeRegisterBugCheckCallback", 5, lambda emu, argv: 1)
    hook(se, "KeDeregisterBugCheckCallback", 1, lambda emu, argv: 1)
    pnp = Pnp()
    pnp_lines = []
    if args.pnp:
        give_drivers_an_extension()
        se.add_api_hook(lambda emu, api, orig, argv: pnp.attach(emu, argv), "ntoskrnl",
                        "IoAttachDeviceToDeviceStack", argc=2)
        se.add_api_hook(lambda emu, api, orig, argv: pnp.call_driver(emu, argv), "ntoskrnl",
                        "IofCallDriver", argc=2, call_conv=1)
        hook(se, "IoGetDeviceProperty", 5, pnp.device_property)
        hook(se, "IoAllocateIrp", 2, pnp.allocate_irp)
        hook(se, "IoFreeIrp", 1, lambda emu, argv: 0)
        se.add_api_hook(lambda emu, api, orig, argv: pnp.free_pool(emu, argv, orig),
                        "ntoskrnl", "ExFreePoolWithTag", argc=2)
        se.add_api_hook(lambda emu, api, orig, argv: pnp.dereferenced.append(argv[0]) or 0,
                        "ntoskrnl", "ObfDereferenceObject", argc=1, call_conv=1)
        hook(se, "IoInvalidateDeviceRelations", 2,
             lambda emu, argv: pnp.invalidated.append(argv[0]) or 0)
        se.add_api_hook(lambda emu, api, orig, argv: pnp.config_get_active(emu, argv),
                        "xen", "ConfigGetActive", argc=2)
        se.add_api_hook(lambda emu, api, orig, argv: 0, "xen", "ConfigFreeActive", argc=1)
        se.add_api_hook(lambda emu, api, orig, argv: pnp.unplugs.append(1) or 0,
                        "xen", "UnplugDevices", argc=0)
        hook(se, "IoDetachDevice", 1, lambda emu, argv: pnp.detached.append(argv[0]) or 0)
        hook(se, "IoCreateDevice", 7, pnp.create_device)
        hook(se, "IoDeleteDevice", 1, lambda emu, argv: pnp.deleted.append(argv[0]) or 0)
    module = se.load_module(args.image)
    se.run_module(module, all_entrypoints=not args.pnp)
    if args.pnp:
        entry = next((e for e in se.get_report().get("entry_points", []) if e.get("ep_type") == "entry_point"), None)
        if entry and int(entry.get("ret_val") or "0x1", 16) == 0 and not entry.get("error"):
            driver = int(entry["ep_args"][0], 16)
            if service.lower() == "xenbus":
                speakeasy_xenbus.run_pnp(se, se.emu, driver, pnp, xen_stand_in, pnp_lines, new_pnp_irp,
                                         args.xenfilt)
            else:
                run_pnp(se, se.emu, driver, pnp, pnp_lines)
    report = se.get_report()
    for ep in report.get("entry_points", []):
        error = ep.get("error") or {}
        print("entry %s ret=%s error=%s" % (ep.get("ep_type"), ep.get("ret_val"), error.get("type", "-")))
        if error and os.environ.get("XTASK_SPEAKEASY_DEBUG"):
            print("debug %r" % (error,))
        for api in ep.get("apis", []):
            name = api.get("api_name", "?")
            print("api %s ret=%s" % (name, api.get("ret_val")))
            if name.endswith(".DbgPrintEx") or name.endswith(".DbgPrint"):
                text = api.get("args", [""])[-1]
                print("log %s" % str(text).strip().strip('"').replace("\\n", ""))
    for name in touches:
        print("touch %s" % name)
    for call, path in registry.calls:
        print("registry %s %s" % (call, path))
    print("open-handles %d" % len(registry.handles))
    print(irql.line())
    for line in pnp_lines:
        print(line)
    for line in xen_stand_in.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
