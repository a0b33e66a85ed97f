"""clean.py: removes files git neither tracks nor ignores."""
import subprocess
import sys

import clean
from conftest import ROOT


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("/target/\n*.log\n")
    (repo / "tracked.txt").write_text("keep")
    (repo / "src").mkdir()
    (repo / "src" / "lib.rs").write_text("keep")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "-m", "init")
    (repo / "new.txt").write_text("remove")
    (repo / "src" / "scratch.rs").write_text("remove")
    (repo / "deep" / "er").mkdir(parents=True)
    (repo / "deep" / "er" / "x.tmp").write_text("remove")
    (repo / "target").mkdir()
    (repo / "target" / "out.bin").write_text("ignored: keep")
    (repo / "build.log").write_text("ignored: keep")
    (repo / "tracked.txt").write_text("modified: keep")
    return repo


def test_dry_run_lists_and_keeps(tmp_path):
    repo = make_repo(tmp_path)
    lines = []
    paths = clean.clean(repo, dry_run=True, log=lines.append)
    assert paths == ["deep/er/x.tmp", "new.txt", "src/scratch.rs"]
    assert lines[0] == "would remove deep/er/x.tmp"
    assert (repo / "new.txt").exists() and (repo / "deep" / "er" / "x.tmp").exists()


def test_clean_removes_only_untracked_unignored(tmp_path):
    repo = make_repo(tmp_path)
    r = subprocess.run([sys.executable, str(ROOT / "clean.py"), "-C", str(repo / "src")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "3 file(s) removed" in r.stdout
    assert not (repo / "new.txt").exists()
    assert not (repo / "src" / "scratch.rs").exists()
    assert not (repo / "deep").exists(), "emptied directories go too"
    assert (repo / "src" / "lib.rs").exists()
    assert (repo / "tracked.txt").read_text() == "modified: keep"
    assert (repo / "target" / "out.bin").exists()
    assert (repo / "build.log").exists()


def test_outside_a_repository(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "clean.py"), "--dry-run", "-C", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "not inside a git work tree" in r.stderr
