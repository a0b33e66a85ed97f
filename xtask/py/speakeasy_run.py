"""Run one kernel image under speakeasy and print what happened, one fact per line.

Used by `cargo xtask verify`. Lines:
  entry <type> ret=<hex> error=<kind or ->     one per emulated entry point, in order
  api <module.name> ret=<hex>                  every API call the image made
  log <text>                                   DbgPrintEx/DbgPrint text
  touch <name>                                 XenTouch calls answered by the xen.sys stand-in

xenbus.sys and xenfilt.sys import XenTouch from xen.sys, which speakeasy does not model:
--xen-touch-status makes the hook answer with that NTSTATUS (the real xen.sys answers
STATUS_SUCCESS for a matching version, STATUS_INCOMPATIBLE_DRIVER_BLOCKED otherwise).
"""
import argparse
import logging
import sys

import speakeasy


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
