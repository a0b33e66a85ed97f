"""Run one kernel image under speakeasy and print what happened, one fact per line.

Used by `cargo xtask verify`. Lines:
  entry <type> ret=<hex> error=<kind or ->     one per emulated entry point, in order
  api <module.name> ret=<hex>                  every API call the image made
  log <text>                                   DbgPrintEx/DbgPrint text
  touch <name>                                 XenTouch calls answered by the xen.sys stand-in
  registry <ZwOpenKey|ZwCreateKey> <path>      keys the image opened or created
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
import struct
import sys

import speakeasy

STATUS_SUCCESS = 0
STATUS_BUFFER_OVERFLOW = 0x80000005
STATUS_NO_MORE_ENTRIES = 0x8000001A
STATUS_INVALID_HANDLE = 0xC0000008
STATUS_BUFFER_TOO_SMALL = 0xC0000023
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
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


def hook(se, name, argc, function):
    """Serve ntoskrnl!name with function(emu, argv) (argv has argc arguments)."""
    se.add_api_hook(lambda emu, api, orig, argv: function(emu, argv), "ntoskrnl", name, argc=argc)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("--xen-touch-status", type=lambda s: int(s, 0), default=None)
    parser.add_argument("--timeout", type=int, default=60)
    args = parser.parse_args()

    logging.disable(logging.CRITICAL)
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
    hook(se, "ZwOpenKey", 3, lambda emu, argv: registry.open(emu, argv, False))
    hook(se, "ZwCreateKey", 7, lambda emu, argv: registry.open(emu, argv, True))
    hook(se, "ZwClose", 1, registry.close)
    hook(se, "ZwQueryValueKey", 6, registry.query)
    hook(se, "ZwSetValueKey", 6, registry.set)
    hook(se, "ZwDeleteValueKey", 2, registry.delete_value)
    hook(se, "ZwEnumerateKey", 6, registry.enumerate)
    hook(se, "DbgSetDebugPrintCallback", 2, lambda emu, argv: STATUS_SUCCESS)
    hook(se, "KeRegisterBugCheckCallback", 5, lambda emu, argv: 1)
    hook(se, "KeDeregisterBugCheckCallback", 1, lambda emu, argv: 1)
    module = se.load_module(args.image)
    se.run_module(module, all_entrypoints=True)
    report = se.get_report()
    for ep in report.get("entry_points", []):
        error = ep.get("error") or {}
        print("entry %s ret=%s error=%s" % (ep.get("ep_type"), ep.get("ret_val"), error.get("type", "-")))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
