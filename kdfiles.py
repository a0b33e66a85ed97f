#!/usr/bin/env python3
"""Write WinDbg `.kdfiles` map files for the drivers of the package.

For every `<name>.sys` in `<package>/x86` and `<package>/x64` a block

    map
    \\SystemRoot\\System32\\drivers\\<name>.sys
    <host-root>\\<arch>\\<name>.sys
    <blank line>

goes into kdfiles32.txt (x86) or kdfiles64.txt (x64). `<host-root>` is where the package
directory lives on the debugging host: by default the package directory itself when run on
Windows, and C:\\xenbus (where INSTALL.md copies the package) when the package was built
elsewhere. Load a file in WinDbg with `.kdfiles kdfiles64.txt`.
"""

import argparse
import os
import pathlib
import sys

ARCHES = (("x86", "kdfiles32.txt"), ("x64", "kdfiles64.txt"))
# Where INSTALL.md puts the package on a Windows machine.
DEFAULT_WINDOWS_ROOT = "C:\\xenbus"


def windows_path(path):
    """Render a path with backslashes, as WinDbg on the debugging host expects."""
    return str(path).replace("/", "\\")


def blocks(drivers, host_root, arch):
    """The `.kdfiles` text for the given driver file names."""
    out = []
    for name in sorted(drivers, key=str.lower):
        out.append("map\n")
        out.append("\\SystemRoot\\System32\\drivers\\%s\n" % name)
        out.append("%s\\%s\\%s\n" % (host_root.rstrip("\\"), arch, name))
        out.append("\n")
    return "".join(out)


def write_kdfiles(package, out_dir, host_root=None):
    """Write the map files; return the list of files written."""
    package = pathlib.Path(package)
    out_dir = pathlib.Path(out_dir)
    if host_root is not None:
        root = host_root
    elif os.name == "nt":
        root = windows_path(package.resolve())
    else:
        root = DEFAULT_WINDOWS_ROOT
    written = []
    for arch, file_name in ARCHES:
        arch_dir = package / arch
        if not arch_dir.is_dir():
            continue
        drivers = [p.name for p in arch_dir.iterdir() if p.is_file() and p.suffix.lower() == ".sys"]
        if not drivers:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / file_name
        # CRLF, as WinDbg's own files use; newline="" keeps "\r\n" as written.
        with open(target, "w", encoding="ascii", newline="\r\n") as f:
            f.write(blocks(drivers, root, arch))
        written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="target/dist/xenbus",
                        help="package directory holding x86/ and/or x64/ (default: %(default)s)")
    parser.add_argument("--out-dir", default=None,
                        help="where to write kdfiles32.txt/kdfiles64.txt (default: the package directory)")
    parser.add_argument("--host-root", default=None,
                        help="the package directory's path on the debugging host (default: see above)")
    args = parser.parse_args(argv)
    written = write_kdfiles(args.package, args.out_dir or args.package, args.host_root)
    if not written:
        print("kdfiles.py: no .sys files under %s/x86 or %s/x64" % (args.package, args.package),
              file=sys.stderr)
        return 1
    for path in written:
        print("kdfiles.py: wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
