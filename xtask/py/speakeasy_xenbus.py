"""xenbus.sys under speakeasy: the xen.sys imports its DriverEntry, AddDevice and REMOVE
reach, served by stand-ins that record each call. Used by speakeasy_run.py for xenbus.sys.

Lines:
  xencall <name> [argument]   FiltersInstall, FiltersUninstall, ConfigRequestReboot <module>
  log <text>                  text logged through xen.sys's LogPrintf
"""
import struct

STATUS_SUCCESS = 0
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
REG_SZ = 1
REG_MULTI_SZ = 7
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

    def lines(self):
        return ["xencall %s" % call for call in self.calls] + ["log %s" % text for text in self.logs]
