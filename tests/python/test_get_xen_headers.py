"""get_xen_headers.py: imports the Xen public headers with the Windows type rewrites."""
import subprocess
import sys

import pytest

import get_xen_headers as gxh
from conftest import ROOT


def fake_public(root):
    """A xen.git-like tree with every header the script imports."""
    public = root / "xen" / "include" / "public"
    for header in gxh.HEADERS:
        path = public / header
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("/* %s */\r\nunsigned long a;\r\nstruct s { long b; };\r\n"
                          "int f(unsigned long x, long y);\r\nlong long c;\r\nunsigned long long d;\r\n"
                          "#define XEN_LONGISH 1\r\n" % header).encode())
    return public


def test_rewrite_rules():
    assert gxh.rewrite("unsigned long a;\r\n") == "ULONG_PTR a;\n"
    assert gxh.rewrite(" long b; (long)c (unsigned long)d") == " LONG_PTR b; (LONG_PTR)c (ULONG_PTR)d"
    assert gxh.rewrite("long long x; unsigned long long y;") == "long long x; unsigned long long y;"
    assert gxh.rewrite("xen_longword longer") == "xen_longword longer"


def test_import_from_a_local_tree(tmp_path):
    fake_public(tmp_path / "src")
    dest = tmp_path / "include" / "xen"
    written = gxh.import_headers(tmp_path / "src", dest)
    assert len(written) == len(gxh.HEADERS)
    text = (dest / "arch-x86" / "xen-x86_64.h").read_bytes().decode()
    assert "\r" not in text
    assert "ULONG_PTR a;" in text and "struct s { LONG_PTR b; };" in text
    assert "int f(ULONG_PTR x, LONG_PTR y);" in text
    assert "long long c;" in text and "unsigned long long d;" in text


def test_missing_header_is_an_error(tmp_path):
    public = fake_public(tmp_path)
    (public / "io" / "console.h").unlink()
    with pytest.raises(FileNotFoundError, match="io/console.h"):
        gxh.import_headers(tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no xen.h"):
        gxh.import_headers(tmp_path / "nowhere", tmp_path / "out")


def test_import_from_a_tag(tmp_path):
    repo = tmp_path / "xen.git"
    repo.mkdir()
    fake_public(repo)
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)
    run("init", "-q")
    run("add", ".")
    run("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "-m", "headers")
    run("tag", "RELEASE-4.99.0")
    (repo / "xen" / "include" / "public" / "xen.h").write_text("changed after the tag\n")
    run("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "-am", "later")
    dest = tmp_path / "dest"
    r = subprocess.run([sys.executable, str(ROOT / "get_xen_headers.py"), "--tag", "RELEASE-4.99.0",
                        "--repo", repo.as_uri(), "--dest", str(dest)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "/* xen.h */" in (dest / "xen.h").read_text(), "the tagged version is imported"
    r = subprocess.run([sys.executable, str(ROOT / "get_xen_headers.py"), "--tag", "NO-SUCH-TAG",
                        "--repo", repo.as_uri(), "--dest", str(dest)], capture_output=True, text=True)
    assert r.returncode == 1 and "git clone" in r.stderr


@pytest.mark.skipif(not (gxh.pathlib.Path("/usr/include/xen/xen.h").is_file()),
                    reason="Debian libxen-dev headers not installed")
def test_import_debian_headers(tmp_path):
    written = gxh.import_headers("/usr/include/xen", tmp_path)
    assert len(written) == len(gxh.HEADERS)
    assert "ULONG_PTR" in (tmp_path / "xen.h").read_text()
