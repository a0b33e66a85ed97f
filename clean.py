#!/usr/bin/env python3
"""Remove every file that git neither tracks nor ignores (new files you have not added),
then the directories that this leaves empty. `--dry-run` only lists them.

Ignored files (build output under target/, imported Xen headers) are kept; use
`git clean -X` for those.
"""

import argparse
import os
import pathlib
import subprocess
import sys


def repository_root(start):
    """The top of the git work tree containing `start`."""
    out = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("%s is not inside a git work tree: %s" % (start, out.stderr.strip()))
    return pathlib.Path(out.stdout.strip())


def untracked_files(root):
    """Paths (relative to root) that are neither tracked nor ignored."""
    out = subprocess.run(["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "-z"],
                         capture_output=True, check=True)
    return sorted(p for p in out.stdout.decode("utf-8", "surrogateescape").split("\0") if p)


def clean(root, dry_run=False, log=print):
    """Remove the untracked files below root; return the list of relative paths."""
    root = pathlib.Path(root)
    paths = untracked_files(root)
    parents = set()
    for rel in paths:
        log(("would remove %s" if dry_run else "removing %s") % rel)
        if not dry_run:
            target = root / rel
            if target.is_symlink() or target.is_file():
                target.unlink()
            parents.update(pathlib.Path(rel).parents)
    if not dry_run:
        # Deepest first, so nested empty directories go too; never the root itself.
        for rel in sorted((p for p in parents if str(p) != "."), key=lambda p: len(p.parts), reverse=True):
            directory = root / rel
            try:
                if directory.is_dir() and not any(directory.iterdir()):
                    directory.rmdir()
            except OSError:
                pass
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", "-n", action="store_true", help="list, do not remove")
    parser.add_argument("-C", dest="directory", default=os.getcwd(), help="work tree (default: cwd)")
    args = parser.parse_args(argv)
    try:
        root = repository_root(args.directory)
    except RuntimeError as e:
        print("clean.py: %s" % e, file=sys.stderr)
        return 2
    paths = clean(root, args.dry_run)
    print("clean.py: %d file(s) %s" % (len(paths), "would be removed" if args.dry_run else "removed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
