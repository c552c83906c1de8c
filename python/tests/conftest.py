"""Fixtures of the smdiff Python tests (run by `make check-python`).

The tests read the repository's tests/data (tiny random models, fixtures made
by tests/ref/ scripts) and, where a test compares with the command-line
tool, the CLI named by $SMDIFF_CLI (the Makefile sets it and SMDIFF_LIB to
the build's library). They import the *installed* package: the Makefile
installs it into a throwaway virtual environment first.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

import smdiff

REPO = Path(os.environ.get("SMDIFF_REPO", Path(__file__).resolve().parents[2]))
DATA = REPO / "tests" / "data"
BUNDLED = REPO / "models" / "smdiff-gutenberg-18m-sm.gguf"


def tiny_path(arch: str, typ: str = "f32") -> str:
    return str(DATA / ("tiny_%s_%s.gguf" % (arch, typ)))


def sanitized() -> bool:
    """True when the library runs under AddressSanitizer (make check SAN=1):
    resident-memory checks are meaningless then (freed memory is held in
    ASan's quarantine)."""
    return "asan" in os.environ.get("LD_PRELOAD", "")


def run_python(code: str, env_extra: dict = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the same one, same environment)."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)


def cli() -> str:
    path = os.environ.get("SMDIFF_CLI")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("SMDIFF_CLI is not set to the smdiff command-line tool (make check-python sets it)")
    return path


def run_cli(args: List[str]) -> str:
    r = subprocess.run([cli()] + args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def dream() -> Iterator:
    with smdiff.Model(tiny_path("dream"), threads=1) as m:
        yield m


@pytest.fixture(scope="module")
def llada() -> Iterator:
    with smdiff.Model(tiny_path("llada"), threads=1) as m:
        yield m


@pytest.fixture(scope="module")
def bundled() -> Iterator:
    if not BUNDLED.is_file():
        pytest.skip("the bundled model %s is missing" % BUNDLED)
    with smdiff.Model(str(BUNDLED)) as m:
        yield m
