#!/usr/bin/env python3
"""Import the Xen public headers this package uses into include/xen/.

    get_xen_headers.py --tag RELEASE-4.18.0 [--repo URL]   # from a xen.git tag
    get_xen_headers.py --local /usr/include/xen             # from a local copy (Debian libxen-dev)

The headers land in include/xen/<same relative path> with LF line endings, after the
rewrites that make them build with the Windows DDK types: "unsigned long" becomes ULONG_PTR
and "long" becomes LONG_PTR (both 64-bit on x64 Windows, where C long is 32-bit).
"long long" is kept as it is: it is 64-bit on every ABI and rewriting it would be wrong.
include/xen/ is ignored by git: the imported headers are not committed.
"""

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

DEFAULT_REPO = "https://xenbits.xen.org/git-http/xen.git"

# Relative to xen.git's xen/include/public (or to a directory such as /usr/include/xen).
HEADERS = (
    "xen.h", "physdev.h", "xen-compat.h", "trace.h", "memory.h", "sched.h",
    "event_channel.h", "grant_table.h", "version.h", "features.h", "errno.h",
    "arch-x86/xen.h", "arch-x86/xen-x86_32.h", "arch-x86/xen-x86_64.h",
    "hvm/hvm_op.h", "hvm/params.h", "hvm/hvm_info_table.h",
    "io/xs_wire.h", "io/console.h",
)

_LONG_LONG = "\0LONGLONG\0"


def rewrite(text):
    """Apply the type rewrites and normalise line endings to LF."""
    text = text.replace("\r\n", "\n")
    text = text.replace("long long", _LONG_LONG)
    text = re.sub(r"\bunsigned long\b", "ULONG_PTR", text)
    text = re.sub(r"\blong\b", "LONG_PTR", text)
    return text.replace(_LONG_LONG, "long long")


def public_dir(source):
    """Find the directory holding xen.h: a xen.git checkout, its xen/ dir, or the headers."""
    source = pathlib.Path(source)
    for candidate in (source / "xen" / "include" / "public", source / "include" / "public", source):
        if (candidate / "xen.h").is_file():
            return candidate
    raise FileNotFoundError("no xen.h under %s (expected a xen.git tree or a public header dir)" % source)


def import_headers(source, dest):
    """Copy and rewrite every header; return the written paths. Missing headers are an error."""
    public = public_dir(source)
    missing = [h for h in HEADERS if not (public / h).is_file()]
    if missing:
        raise FileNotFoundError("%s lacks: %s" % (public, ", ".join(missing)))
    dest = pathlib.Path(dest)
    written = []
    for header in HEADERS:
        text = (public / header).read_text(encoding="utf-8", errors="surrogateescape")
        target = dest / header
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
            f.write(rewrite(text))
        written.append(target)
    return written


def fetch_tag(repo, tag, workdir):
    """Shallow-clone `tag` of `repo` into workdir/xen; return the clone's path."""
    clone = pathlib.Path(workdir) / "xen"
    if clone.exists():
        shutil.rmtree(clone)
    out = subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", tag, repo, str(clone)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("git clone of %s at %s failed: %s" % (repo, tag, out.stderr.strip()))
    return clone


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tag", help="a tag of xen.git, e.g. RELEASE-4.18.0")
    source.add_argument("--local", help="a local xen.git tree or public header directory")
    parser.add_argument("--repo", default=DEFAULT_REPO, help="xen.git URL (default: %(default)s)")
    parser.add_argument("--workdir", default=None, help="where to clone (default: a temporary directory)")
    parser.add_argument("--dest", default=str(pathlib.Path(__file__).resolve().parent / "include" / "xen"),
                        help="destination (default: include/xen next to this script)")
    args = parser.parse_args(argv)
    try:
        if args.local:
            written = import_headers(args.local, args.dest)
        elif args.workdir:
            written = import_headers(fetch_tag(args.repo, args.tag, args.workdir), args.dest)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                written = import_headers(fetch_tag(args.repo, args.tag, tmp), args.dest)
    except (OSError, RuntimeError) as e:
        print("get_xen_headers.py: %s" % e, file=sys.stderr)
        return 1
    print("get_xen_headers.py: imported %d headers into %s" % (len(written), args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
