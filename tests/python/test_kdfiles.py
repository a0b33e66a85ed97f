"""kdfiles.py: .kdfiles map blocks for the package's drivers."""
import subprocess
import sys

import kdfiles
from conftest import ROOT


def make_package(tmp_path, arches=("x64",)):
    package = tmp_path / "xenbus"
    for arch in arches:
        d = package / arch
        d.mkdir(parents=True)
        for name in ("xenfilt.sys", "xen.sys", "xenbus.sys", "xenbus.inf", "xenbus_monitor.exe"):
            (d / name).write_bytes(b"MZ")
    return package


def test_blocks_for_every_driver_and_nothing_else(tmp_path):
    package = make_package(tmp_path)
    written = kdfiles.write_kdfiles(package, package, host_root="C:\\xenbus")
    assert [p.name for p in written] == ["kdfiles64.txt"]
    raw = (package / "kdfiles64.txt").read_bytes()
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    text = raw.decode("ascii").replace("\r\n", "\n")
    assert text == (
        "map\n\\SystemRoot\\System32\\drivers\\xen.sys\nC:\\xenbus\\x64\\xen.sys\n\n"
        "map\n\\SystemRoot\\System32\\drivers\\xenbus.sys\nC:\\xenbus\\x64\\xenbus.sys\n\n"
        "map\n\\SystemRoot\\System32\\drivers\\xenfilt.sys\nC:\\xenbus\\x64\\xenfilt.sys\n\n"
    )


def test_both_architectures_and_default_host_root(tmp_path):
    package = make_package(tmp_path, ("x86", "x64"))
    out = tmp_path / "out"
    written = kdfiles.write_kdfiles(package, out)
    assert sorted(p.name for p in written) == ["kdfiles32.txt", "kdfiles64.txt"]
    text32 = (out / "kdfiles32.txt").read_text()
    assert "\\x86\\xenbus.sys" in text32
    assert "/" not in text32.split("\n")[2], "host paths use backslashes"
    if kdfiles.os.name != "nt":
        # Built off Windows: the map points where INSTALL.md copies the package.
        assert "C:\\xenbus\\x86\\xen.sys\n" in text32


def test_cli_fails_without_drivers(tmp_path):
    (tmp_path / "x64").mkdir()
    r = subprocess.run([sys.executable, str(ROOT / "kdfiles.py"), "--package", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "no .sys files" in r.stderr
    make_package(tmp_path / "p")
    r = subprocess.run([sys.executable, str(ROOT / "kdfiles.py"), "--package", str(tmp_path / "p" / "xenbus"),
                        "--host-root", "D:\\pkg"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "D:\\pkg\\x64\\xen.sys" in (tmp_path / "p" / "xenbus" / "kdfiles64.txt").read_text()
