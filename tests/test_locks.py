"""Dependencies install from lock files: every package pinned and hashed, agreeing with the .in files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zerotrust.mockrun import PROJECT_DIR

LOCKS = [PROJECT_DIR / "requirements.txt", PROJECT_DIR / "requirements-dev.txt", PROJECT_DIR / "guardrails" / "requirements.txt"]
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def entries(path: Path) -> list[str]:
    """The requirement entries of a lock file, continuation lines joined."""
    return [e.strip() for e in path.read_text().replace("\\\n", " ").splitlines() if e.strip() and not e.lstrip().startswith("#")]


def pins(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line (lock or .in file)."""
    out = {}
    for e in entries(path):
        m = REQUIREMENT.match(e)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.relative_to(PROJECT_DIR).as_posix())
def test_every_locked_requirement_is_pinned_and_hashed(lock):
    found = entries(lock)
    assert found
    for e in found:
        assert REQUIREMENT.match(e) and "--hash=sha256:" in e, e


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.relative_to(PROJECT_DIR).as_posix())
def test_each_lock_keeps_the_versions_its_in_file_asks_for(lock):
    wanted, locked = pins(lock.with_suffix(".in")), pins(lock)
    if lock.name == "requirements-dev.txt":
        wanted |= pins(PROJECT_DIR / "requirements.in")
    assert wanted and {k: locked.get(k) for k in wanted} == wanted


def test_the_install_refuses_anything_unhashed():
    assert "--require-hashes -r requirements-dev.txt" in (PROJECT_DIR / "Makefile").read_text()
