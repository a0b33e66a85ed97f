"""xenbus.sys under speakeasy: the xen.sys imports its DriverEntry, AddDevice and REMOVE
reach, served by stand-ins that record each call. Used by speakeasy_run.py for xenbus.sys.

Lines:
  xencall <name> [argument]   FiltersInstall, FiltersUninstall, ConfigRequestReboot <module>
  log <text>                  text logged through xen.sys's LogPrintf
  pnp <step> key=value...     the bus FDO's PnP run (run_pnp)
"""
import struct

STATUS_SUCCESS = 0
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
REG_SZ = 1
REG_MULTI_SZ = 7
IRP_MN_QUERY_INTERFACE = 0x08
# GUID_BUS_INTERFACE_STANDARD {496B8280-6F25-11D0-BEAF-08002BE2092F} as laid out in memory.
GUID_BUS_INTERFACE_STANDARD = bytes.fromhex("80826b49256fd011beaf08002be2092f")
# GUID_XENFILT_EMULATED_INTERFACE {959027A1-FCCE-4E78-BCF4-637384F499C5}.
GUID_XENFILT_EMULATED_INTERFACE = bytes.fromhex("a1279095cefc784ebcf4637384f499c5")
# XENBUS_EMULATED_ACTIVATION_STATUS of the xenfilt stand-in's IsDevicePresent.
XENFILT_MODES = {"neutral": 0, "force-activated": 1, "force-deactivated": 2}
STATUS_NOT_SUPPORTED = 0xC00000BB
# xen.sys's hypercall wrappers the active FDO reaches first (name, argument count).
HYPERCALLS = [("MemoryDecreaseReservation", 4), ("MemoryPopulatePhysmap", 4),
              ("MemoryAddToPhysmap", 3), ("MemoryRemoveFromPhysmap", 1)]
LOG_LEVEL_ERROR = 1
LOG_LEVEL_WARNING = 2


def parameters(path):
    """The INF's AddReg under Services\\xenbus\\Parameters, as installed."""
    return {
        path + "xenbus\\parameters": {
            "requestkey": (REG_SZ, "SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Request\0"
                           .encode("utf-16le")),
            "consoleloglevel": (REG_MULTI_SZ, "ERROR\0WARNING\0\0".encode("utf-16le")),
        }
    }


class XenStandIn:
    """The xen.sys exports xenbus.sys imports besides XenTouch."""

    def __init__(self, registry):
        self.registry = registry
        self.calls = []
        self.logs = []
        self.work_items = []
        self.work_items_freed = []
        self.work_items_queued = []
        self.identity_queries = 0
        self.power_requests = []
        self.po_calls = []
        self.power_states = []
        self.events = []
        self.completed = []
        self.interrupts = []
        self.threads = []
        self.interrupts_disconnected = []

    def log_printf(self, emu, argv):
        text = emu.read_mem_string(argv[2], 1) if argv[1] and argv[2] else ""
        self.logs.append(text.strip())
        return 0

    def log_cch_printf(self, emu, argv):
        text = emu.read_mem_string(argv[3], 1) if argv[2] and argv[3] else ""
        self.logs.append(text.strip())
        return 0

    def read_log_level(self, emu, argv):
        """LogReadLogLevel(key, name, level): the MULTI_SZ names of the levels in a mask."""
        key, name, out = argv
        path = self.registry.handles.get(key)
        value_name = emu.read_mem_string(name, 1).lower() if name else ""
        value = self.registry.keys.get(path, {}).get(value_name) if path else None
        if value is None:
            return STATUS_OBJECT_NAME_NOT_FOUND
        names = value[1].decode("utf-16le").split("\0")
        mask = 0
        for level in names:
            mask |= {"ERROR": LOG_LEVEL_ERROR, "WARNING": LOG_LEVEL_WARNING}.get(level.upper(), 0)
        emu.mem_write(out, struct.pack("<I", mask))
        return STATUS_SUCCESS

    def request_reboot(self, emu, argv):
        module = emu.read_mem_string(argv[1], 1) if argv[1] else "(null)"
        known = self.registry.handles.get(argv[0]) is not None
        self.calls.append("ConfigRequestReboot %s key=%d" % (module, int(known)))
        return STATUS_SUCCESS

    def install(self, se):
        def xen(name, argc, function):
            se.add_api_hook(lambda emu, api, orig, argv: function(emu, argv), "xen", name, argc=argc)

        xen("LogPrintf", 3, self.log_printf)
        xen("LogCchPrintf", 4, self.log_cch_printf)
        xen("LogReadLogLevel", 3, self.read_log_level)
        xen("FiltersInstall", 0, lambda emu, argv: self.calls.append("FiltersInstall") or 0)
        xen("FiltersUninstall", 0, lambda emu, argv: self.calls.append("FiltersUninstall") or 0)
        xen("ConfigRequestReboot", 2, self.request_reboot)

        def nt(name, argc, function, call_conv=None):
            kwargs = {"call_conv": call_conv} if call_conv is not None else {}
            se.add_api_hook(lambda emu, api, orig, argv: function(emu, argv), "ntoskrnl", name,
                            argc=argc, **kwargs)

        for name in ("ConfigSetActive", "ConfigUpdateActive", "ConfigClearActive",
                     "ConfigQuerySystemStartOption"):
            xen(name, 3, lambda emu, argv, name=name: self.calls.append(name) or STATUS_OBJECT_NAME_NOT_FOUND)
        xen("ConfigFreeSzValue", 1, lambda emu, argv: 0)
        # Hypercalls: the emulated CPU is not on Xen, so xen.sys's hypercall wrappers fail
        # the way they do without a hypercall page (STATUS_NOT_SUPPORTED); each call is
        # recorded.
        for name, argc in HYPERCALLS:
            xen(name, argc, lambda emu, argv, name=name:
                self.calls.append("hypercall " + name) or STATUS_NOT_SUPPORTED)
        nt("IoCreateNotificationEvent", 2, self.named_event)
        nt("IoAllocateWorkItem", 1, self.allocate_work_item)
        nt("IoFreeWorkItem", 1, lambda emu, argv: self.work_items_freed.append(argv[0]) or 0)
        nt("IoQueueWorkItem", 4,
           lambda emu, argv: self.work_items_queued.append((argv[0], argv[1], argv[3])) or 0)
        nt("PoRequestPowerIrp", 6,
           lambda emu, argv: self.power_requests.append((argv[2] & 0xFFFFFFFF, argv[3], argv[4])) or 0)
        nt("PoCallDriver", 2, lambda emu, argv: self.po_calls.append((argv[0], argv[1])) or 0)
        nt("IoInvalidateDeviceState", 1, lambda emu, argv: 0)
        nt("ObfReferenceObject", 1, lambda emu, argv: 1, call_conv=1)
        nt("PoStartNextPowerIrp", 1, lambda emu, argv: 0)
        nt("IofCompleteRequest", 2, lambda emu, argv: self.completed.append(argv[0]) or 0,
           call_conv=1)
        # One processor (the active FDO's per-CPU state; speakeasy has neither routine).
        nt("KeQueryActiveProcessorCountEx", 1, lambda emu, argv: 1)
        nt("KeGetProcessorNumberFromIndex", 2, self.processor_number)
        nt("KeQueryMaximumProcessorCountEx", 1, lambda emu, argv: 1)
        nt("KeGetProcessorIndexFromNumber", 1, lambda emu, argv: 0)
        # The active FDO's system threads are created but never scheduled (their bodies
        # loop on waits, which speakeasy satisfies at once); the handle refers to an
        # object ObReferenceObjectByHandle hands back.
        nt("PsCreateSystemThread", 7, self.create_thread)
        nt("ObReferenceObjectByHandle", 6, self.reference_thread)
        # Physical addresses of pool pages (the active FDO's memory hole): identity.
        nt("MmGetPhysicalAddress", 1, lambda emu, argv: argv[0])
        # The active FDO's interrupts: each connection gets an interrupt object.
        nt("IoConnectInterruptEx", 1, self.connect_interrupt)
        nt("IoDisconnectInterruptEx", 1, lambda emu, argv: self.interrupts_disconnected.append(argv[0]) or 0)
        nt("PoSetPowerState", 3,
           lambda emu, argv: self.power_states.append((argv[1] & 0xFFFFFFFF, argv[2] & 0xFFFFFFFF)) or 0)

    def processor_number(self, emu, argv):
        index, out = argv
        if index & 0xFFFFFFFF != 0:
            return 0xC000000D  # STATUS_INVALID_PARAMETER
        emu.mem_write(out, struct.pack("<HBB", 0, 0, 0))
        return STATUS_SUCCESS

    def create_thread(self, emu, argv):
        handle_out, _, _, _, _, start, context = argv
        self.threads.append((start, context))
        emu.mem_write(handle_out, struct.pack("<Q", 0xA000 + 4 * len(self.threads)))
        return STATUS_SUCCESS

    def reference_thread(self, emu, argv):
        handle, _, _, _, out, _ = argv
        if not 0xA000 < handle <= 0xA000 + 4 * len(self.threads):
            return 0xC0000008  # STATUS_INVALID_HANDLE
        thread = emu.mem_map(0x100, tag="xtask.thread")
        emu.mem_write(out, struct.pack("<Q", thread))
        return STATUS_SUCCESS

    def connect_interrupt(self, emu, argv):
        """IoConnectInterruptEx(CONNECT_FULLY_SPECIFIED[_GROUP]): an interrupt object in
        *FullySpecified.InterruptObject; the vector is recorded."""
        parameters = argv[0]
        version, = struct.unpack("<I", emu.mem_read(parameters, 4))
        out, = struct.unpack("<Q", emu.mem_read(parameters + 16, 8))
        vector, = struct.unpack("<I", emu.mem_read(parameters + 56, 4))
        interrupt = emu.mem_map(0x100, tag="xtask.interrupt")
        emu.mem_write(out, struct.pack("<Q", interrupt))
        self.interrupts.append((version, vector))
        return STATUS_SUCCESS

    def named_event(self, emu, argv):
        """IoCreateNotificationEvent (the balloon's LowMemoryCondition): an event block and
        a handle outside the registry's range."""
        event = emu.mem_map(0x40, tag="xtask.event")
        emu.mem_write(argv[1], struct.pack("<Q", 0x9000 + len(self.work_items)))
        self.events.append(event)
        return event

    def allocate_work_item(self, emu, argv):
        item = emu.mem_map(0x40, tag="xtask.workitem")
        self.work_items.append(item)
        return item

    def lines(self):
        return ["xencall %s" % call for call in self.calls] + ["log %s" % text for text in self.logs]


IRP_SIZE = 0xD0
STACK_LOCATION_SIZE = 0x48
IRP_MJ_PNP = 0x1B
IRP_MN_START_DEVICE = 0x00
IRP_MN_REMOVE_DEVICE = 0x02
IRP_MN_SURPRISE_REMOVAL = 0x17
IRP_MN_QUERY_DEVICE_RELATIONS = 0x07
IRP_MN_QUERY_CAPABILITIES = 0x09
IRP_MN_QUERY_PNP_DEVICE_STATE = 0x14
IRP_MN_QUERY_ID = 0x13
IRP_MJ_POWER = 0x16
IRP_MN_SET_POWER = 0x02
IRP_MN_QUERY_DEVICE_TEXT = 0x0C
# The legacy platform device as PCI.sys names it; xen.sys's record (Pnp.ACTIVE) names
# another device, so this FDO is not the active one.
PLATFORM_IDS = {0: "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01", 3: "3&267a616a&0&18"}
PLATFORM_LOCATION = "PCI bus 0, device 3, function 0"
REMOVABLE = 1 << 4
DRIVER_EXTENSION = 0x30
DRIVER_UNLOAD = 0x68
MAJOR_FUNCTION = 0x70
ADD_DEVICE = 0x08
STACK_SIZE = 0x4C


def resource_list(emu, translated):
    """A CM_RESOURCE_LIST (pack(4)) of a memory BAR, a line and a message interrupt."""
    partials = [
        struct.pack("<BBHQI4x", 3, 1, 0, 0xF2000000, 0x01000000),
        struct.pack("<BBHHHIQ", 2, 3, 0, 9 if translated else 0, 0, 0x81 if translated else 28, 1),
        struct.pack("<BBHHHIQ", 2, 1, 3, 9 if translated else 0, 0, 0x92, 1),
    ]
    data = struct.pack("<IIIHHI", 1, 5, 0, 1, 1, len(partials)) + b"".join(partials)
    block = emu.mem_map(0x1000, tag="xtask.resources")
    emu.mem_write(block, data)
    return block


class PowerRun:
    """The power manager and the lower drivers around the FDO's power IRPs: runs the work
    items the driver queues, completes what it sends down (calling the completion routine
    it set, as IoCompleteRequest would), delivers the device IRPs it requests with
    PoRequestPowerIrp to the FDO (the top of the stack) and calls their callback once they
    complete."""

    def __init__(self, se, emu, fdo, dispatch, pdo, stand_in, new_irp):
        self.se, self.emu, self.fdo, self.dispatch = se, emu, fdo, dispatch
        self.pdo, self.stand_in, self.new_irp = pdo, stand_in, new_irp
        self.work_done = len(stand_in.work_items_queued)
        self.sent = len(stand_in.po_calls)
        self.request_done = len(stand_in.power_requests)
        self.requested = []  # (state, device IRP)
        self.waiting = []  # (device IRP, state, callback, context)

    def irp(self, kind, state, action):
        irp = self.new_irp(self.emu, IRP_MN_SET_POWER, struct.pack("<IiII", 0, kind, state, action))
        self.emu.mem_write(irp + IRP_SIZE + STACK_LOCATION_SIZE, bytes([IRP_MJ_POWER]))
        return irp

    def send(self, kind, state, action):
        """SET_POWER (kind 0 = system, 1 = device) to the FDO; returns it and the number of
        work items that ran until nothing was left to do."""
        irp = self.irp(kind, state, action)
        before = self.work_done
        self.se.call(self.dispatch, [self.fdo, irp])
        self.pump()
        return irp, self.work_done - before

    def pump(self):
        for _ in range(64):
            progressed = False
            queued = self.stand_in.work_items_queued
            while self.work_done < len(queued):
                _, routine, context = queued[self.work_done]
                self.work_done += 1
                self.se.call(routine, [self.fdo, context])
                progressed = True
            calls = self.stand_in.po_calls
            while self.sent < len(calls):
                _, irp = calls[self.sent]
                self.sent += 1
                self.complete_down(irp)
                progressed = True
            requests = self.stand_in.power_requests
            while self.request_done < len(requests):
                state, callback, context = requests[self.request_done]
                self.request_done += 1
                device_irp = self.irp(1, state, 0)
                self.requested.append((state, device_irp))
                self.waiting.append((device_irp, state, callback, context))
                self.se.call(self.dispatch, [self.fdo, device_irp])
                progressed = True
            for entry in list(self.waiting):
                device_irp, state, callback, context = entry
                if device_irp in self.stand_in.completed:
                    self.waiting.remove(entry)
                    status_block = self.emu.mem_map(0x10, tag="xtask.iosb")
                    self.emu.mem_write(status_block, self.emu.mem_read(device_irp + 0x30, 0x10))
                    self.se.call(callback, [self.pdo, IRP_MN_SET_POWER, state, context, status_block])
                    progressed = True
            if not progressed:
                return

    def complete_down(self, irp):
        """The lower driver completes `irp` with success: the completion routine set in the
        location below the driver's (if any) runs, and is cleared as the I/O manager does."""
        read_ptr = lambda address: struct.unpack("<Q", self.emu.mem_read(address, 8))[0]
        self.emu.mem_write(irp + 0x30, struct.pack("<I", STATUS_SUCCESS))
        below = read_ptr(irp + 0xB8) - STACK_LOCATION_SIZE
        routine, context = read_ptr(below + 0x38), read_ptr(below + 0x40)
        if routine:
            self.emu.mem_write(below + 0x38, bytes(16))
            self.se.call(routine, [self.fdo, irp, context])

    def sent_down(self, irp):
        return len([c for c in self.stand_in.po_calls if c[1] == irp])

    def status(self, irp):
        return struct.unpack("<I", self.emu.mem_read(irp + 0x30, 4))[0]


def run_pnp(se, emu, driver, pnp, stand_in, out, new_irp, xenfilt_mode=None):
    """The bus FDO's life: AddDevice over a stand-in platform PCI PDO, START_DEVICE,
    QUERY_CAPABILITIES, BusRelations, QUERY_PNP_DEVICE_STATE, REMOVE_DEVICE, DriverUnload.
    new_irp(emu, minor, parameters) lays out a PnP IRP for the top driver."""
    read_ptr = lambda address: struct.unpack("<Q", emu.mem_read(address, 8))[0]
    extension = read_ptr(driver + DRIVER_EXTENSION)
    add_device = read_ptr(extension + ADD_DEVICE) if extension else 0
    dispatch = read_ptr(driver + MAJOR_FUNCTION + 8 * IRP_MJ_PNP)
    unload = read_ptr(driver + DRIVER_UNLOAD)
    out.append("pnp registered add_device=%d dispatch=%d unload=%d" % (
        bool(add_device), bool(dispatch), bool(unload)))
    if not (add_device and dispatch):
        if unload:
            se.call(unload, [driver])
        return
    pnp.pdo = emu.mem_map(0x200, tag="xtask.pdo")
    emu.mem_write(pnp.pdo, bytes(0x200))
    emu.mem_write(pnp.pdo + STACK_SIZE, bytes([1]))
    # The platform PCI PDO answers its identity (PCI.sys's QUERY_ID/QUERY_DEVICE_TEXT).
    bus_answer = pnp.answer
    # PCI.sys's BUS_INTERFACE_STANDARD (v1, 64 bytes): every routine a `ret`, the
    # InterfaceDereference calls counted.
    bus_stub = emu.mem_map(0x1000, tag="xtask.bus_interface")
    emu.mem_write(bus_stub, bytes([0xC3]) * 0x10)
    bus = {"answered": 0, "dereferenced": 0}

    def dereferenced(emu, address, size, ctx):
        bus["dereferenced"] += 1

    se.add_code_hook(dereferenced, begin=bus_stub + 1, end=bus_stub + 1)
    # xenfilt's filter on the PCI PDO (xenfilt_mode set): XENFILT_EMULATED v3 whose
    # IsDevicePresent knows the platform device and reports the mode's activation status.
    # Acquire (xor eax,eax; ret) at +0, Release (ret) at +0x10, IsDevicePresent
    # (mov dword [r9], status; mov eax, 1; ret) at +0x20, IsDiskPresent at +0x40.
    emulated = {"answered": 0, "acquired": 0, "released": 0, "asked": []}
    emulated_stub = 0
    if xenfilt_mode is not None:
        emulated_stub = emu.mem_map(0x1000, tag="xtask.emulated_interface")
        code = bytearray(0x60)
        code[0x00:0x03] = b"\x31\xc0\xc3"
        code[0x10] = 0xC3
        code[0x20:0x2E] = b"\x41\xc7\x01" + struct.pack("<I", XENFILT_MODES[xenfilt_mode]) \
            + b"\xb8\x01\x00\x00\x00\xc3"
        code[0x40:0x43] = b"\x31\xc0\xc3"
        emu.mem_write(emulated_stub, bytes(code))

        def counted(key):
            def hook(emu, address, size, ctx):
                emulated[key] += 1
            return hook

        def asked(emu, address, size, ctx):
            device_id = emu.reg_read("rdx")
            emulated["asked"].append(emu.read_mem_string(device_id, 1) if device_id else "")

        se.add_code_hook(counted("acquired"), begin=emulated_stub, end=emulated_stub)
        se.add_code_hook(counted("released"), begin=emulated_stub + 0x10, end=emulated_stub + 0x10)
        se.add_code_hook(asked, begin=emulated_stub + 0x20, end=emulated_stub + 0x20)

    def answer(emu, device, irp, lower):
        major, minor = struct.unpack("<BB", emu.mem_read(lower, 2))
        argument, = struct.unpack("<I", emu.mem_read(lower + 8, 4))
        if device == pnp.pdo and major == IRP_MJ_PNP and minor == IRP_MN_QUERY_INTERFACE:
            guid, size, version, buffer = struct.unpack("<QHH4xQ", emu.mem_read(lower + 8, 24))
            if bytes(emu.mem_read(guid, 16)) == GUID_BUS_INTERFACE_STANDARD and size >= 64 \
                    and version >= 1 and buffer:
                emu.mem_write(buffer, struct.pack("<HH4x7Q", 64, 1, 0x5C1BC0DE, bus_stub,
                                                  bus_stub + 1, bus_stub, bus_stub, bus_stub,
                                                  bus_stub))
                bus["answered"] += 1
            elif bytes(emu.mem_read(guid, 16)) == GUID_XENFILT_EMULATED_INTERFACE and emulated_stub \
                    and version == 3 and size >= 64 and buffer:
                # INTERFACE {Size, Version, Context, Reference, Dereference} + 4 methods.
                emu.mem_write(buffer, struct.pack("<HH4x7Q", 64, 3, 0x0E0C0DE, 0, 0, emulated_stub,
                                                  emulated_stub + 0x10, emulated_stub + 0x20,
                                                  emulated_stub + 0x40))
                emulated["answered"] += 1
                emu.mem_write(irp + 0x30, struct.pack("<I", STATUS_SUCCESS))
                return 0
            return None
        if device == pnp.pdo and major == IRP_MJ_PNP:
            text = None
            if minor == IRP_MN_QUERY_ID:
                text = PLATFORM_IDS.get(argument)
            elif minor == IRP_MN_QUERY_DEVICE_TEXT and argument == 1:
                text = PLATFORM_LOCATION
            if text is not None:
                stand_in.identity_queries += 1
                return pnp.pool_block(emu, (text + "\0").encode("utf-16le"))
        return bus_answer(emu, device, irp, lower)

    pnp.answer = answer
    se.call(add_device, [driver, pnp.pdo])
    devices = [source for source, target in pnp.attached if target == pnp.pdo]
    out.append("pnp add_device attached=%d filters_installed=%d work_items=%d identity_queries=%d bus_interface=%d" % (
        len(devices), stand_in.calls.count("FiltersInstall"), len(stand_in.work_items),
        stand_in.identity_queries, bus["answered"]))
    if xenfilt_mode is not None:
        out.append("pnp emulated mode=%s answered=%d acquired=%d released=%d asked=%s set_active=%d update_active=%d" % (
            xenfilt_mode, emulated["answered"], emulated["acquired"], emulated["released"],
            ",".join(emulated["asked"]) or "-", stand_in.calls.count("ConfigSetActive"),
            stand_in.calls.count("ConfigUpdateActive")))
    if not devices:
        return
    fdo = devices[0]
    active = xenfilt_mode == "force-activated"

    def send(name, minor, parameters=b""):
        calls = len(pnp.calls)
        irp = new_irp(emu, minor, parameters)
        se.call(dispatch, [fdo, irp])
        status, = struct.unpack("<I", emu.mem_read(irp + 0x30, 4))
        information, = struct.unpack("<Q", emu.mem_read(irp + 0x38, 8))
        lower = [c for c in pnp.calls[calls:] if c[1] == irp]
        return status, information, lower

    # START_DEVICE with PCI.sys's resources: a memory BAR, the line interrupt and one
    # message interrupt (as if added at FILTER_RESOURCE_REQUIREMENTS), raw and translated.
    raw, translated = resource_list(emu, False), resource_list(emu, True)
    status, _, lower = send("start", IRP_MN_START_DEVICE, struct.pack("<QQ", raw, translated))
    # forward_and_wait copies the location to the next one: the lower driver sees its own.
    kinds = lambda list: [emu.mem_read(list + 20 + 20 * i, 1)[0] for i in range(3)]
    out.append("pnp start status=%#x passed_down=%d raw_types=%s translated_types=%s" % (
        status, len(lower), "/".join("%x" % k for k in kinds(raw)),
        "/".join("%x" % k for k in kinds(translated))))
    if active:
        # The active FDO's START connects its interrupts, creates its threads and reaches
        # Xen in D3->D0 (the first hypercall), which the emulator is not: START fails with
        # the hypercall's status after undoing all of it; PnP then removes the device.
        out.append("pnp active_start status=%#x interrupts=%d disconnected=%d threads=%d hypercalls=%s" % (
            status, len(stand_in.interrupts), len(stand_in.interrupts_disconnected),
            len(stand_in.threads),
            ",".join(c.split(" ", 1)[1] for c in stand_in.calls if c.startswith("hypercall ")) or "-"))
        pnp.calls = []
        status, _, lower = send("remove", IRP_MN_REMOVE_DEVICE)
        out.append("pnp active_remove status=%#x passed_down=%d detached=%d deleted=%d clear_active=%d filters_uninstalled=%d" % (
            status, len(lower), pnp.detached.count(pnp.pdo), int(fdo in pnp.deleted),
            stand_in.calls.count("ConfigClearActive"), stand_in.calls.count("FiltersUninstall")))
        if unload:
            se.call(unload, [driver])
        return
    capabilities = emu.mem_map(0x1000, tag="xtask.caps")
    # DeviceState[]: S0 -> D0, S1..S5 -> D3 (as PCI.sys reports the platform device).
    emu.mem_write(capabilities, struct.pack("<HHIII7I", 0x40, 1, REMOVABLE | 1, 0, 0, 0, 1, 4, 4, 4, 4, 4)
                  + bytes(0x14))
    status, _, lower = send("capabilities", IRP_MN_QUERY_CAPABILITIES, struct.pack("<Q", capabilities))
    _, _, bits = struct.unpack("<HHI", emu.mem_read(capabilities, 8))
    out.append("pnp capabilities status=%#x passed_down=%d removable=%d d1=%d" % (
        status, len(lower), int(bool(bits & REMOVABLE)), bits & 1))
    pnp.children = []
    status, information, lower = send("relations", IRP_MN_QUERY_DEVICE_RELATIONS, struct.pack("<I", 0))
    count = struct.unpack("<I", emu.mem_read(information, 4))[0] if information else -1
    out.append("pnp relations status=%#x passed_down=%d reported=%d" % (status, len(lower), count))
    status, information, lower = send("state", IRP_MN_QUERY_PNP_DEVICE_STATE)
    out.append("pnp device_state passed_down=%d information=%#x" % (len(lower), information))
    power = PowerRun(se, emu, fdo, dispatch, pnp.pdo, stand_in, new_irp)
    # Device power to D3: D0->D3 in the device power work item, then the IRP goes down
    # (with a completion routine) and is completed in the work item after it comes back.
    states = len(stand_in.power_states)
    irp, work = power.send(1, 4, 0)
    out.append("pnp power_d3 queued=%d passed_down=%d completed=%d status=%#x state=%s" % (
        work, power.sent_down(irp), stand_in.completed.count(irp), power.status(irp),
        ":".join("%d" % v for v in (stand_in.power_states[-1] if len(stand_in.power_states) > states else ()))))
    # System power to S4 (hibernate): the device IRP first (DeviceState[S4] from the lower
    # capabilities, delivered to the FDO), then S3->S4, then the IRP goes down.
    requests = len(power.requested)
    irp, work = power.send(0, 5, 3)
    requested = power.requested[requests:]
    out.append("pnp hibernate requested=%s device_irps_completed=%d queued=%d passed_down=%d completed=%d status=%#x" % (
        ",".join("D%d" % (r[0] - 1) for r in requested) or "-",
        sum(stand_in.completed.count(r[1]) for r in requested), work, power.sent_down(irp),
        stand_in.completed.count(irp), power.status(irp)))
    # Back to S0: the lower drivers first, then the device IRP to DeviceState[S0] = D0,
    # whose D3->D0 runs after the lower drivers; the system IRP completes after it.
    requests, states = len(power.requested), len(stand_in.power_states)
    irp, work = power.send(0, 1, 0)
    requested = power.requested[requests:]
    out.append("pnp wake requested=%s device_irps_completed=%d queued=%d passed_down=%d completed=%d status=%#x state=%s" % (
        ",".join("D%d" % (r[0] - 1) for r in requested) or "-",
        sum(stand_in.completed.count(r[1]) for r in requested), work, power.sent_down(irp),
        stand_in.completed.count(irp), power.status(irp),
        ":".join("%d" % v for v in (stand_in.power_states[-1] if len(stand_in.power_states) > states else ()))))
    # Shutdown: no device IRP, the system IRP just goes down.
    requests = len(power.requested)
    irp, work = power.send(0, 6, 6)
    out.append("pnp shutdown requested=%d passed_down=%d" % (
        len(power.requested) - requests, power.sent_down(irp)))
    # SURPRISE_REMOVAL: the children are missing, the IRP goes down with success (the
    # subsystems stay up until REMOVE_DEVICE).
    status, _, lower = send("surprise", IRP_MN_SURPRISE_REMOVAL)
    out.append("pnp surprise status=%#x passed_down=%d" % (status, len(lower)))
    pnp.calls = []
    irp = new_irp(emu, IRP_MN_REMOVE_DEVICE, b"")
    top = irp + IRP_SIZE + STACK_LOCATION_SIZE
    se.call(dispatch, [fdo, irp])
    lower_saw_top = any(c[1] == irp and c[3] == top + STACK_LOCATION_SIZE for c in pnp.calls)
    out.append("pnp remove passed_down=%d skipped=%d detached=%d deleted=%d filters_uninstalled=%d work_items_freed=%d bus_dereferenced=%d" % (
        len(pnp.calls), int(lower_saw_top), pnp.detached.count(pnp.pdo), int(fdo in pnp.deleted),
        stand_in.calls.count("FiltersUninstall"), len(stand_in.work_items_freed),
        bus["dereferenced"]))
    if unload:
        se.call(unload, [driver])
