"""The installed package, finding the library, the version check, help()."""
from __future__ import annotations

import os
import pydoc
from pathlib import Path

import pytest

import smdiff
from smdiff import _lib
from conftest import run_python


def test_imported_from_the_install():
    """`make check-python` installs the package with pip into a virtual
    environment and says where: the tests must use that copy, not the
    source folder."""
    env = os.environ.get("SMDIFF_PY_INSTALLED")
    if not env:
        pytest.skip("SMDIFF_PY_INSTALLED is not set (make check-python sets it)")
    assert Path(smdiff.__file__).resolve().is_relative_to(Path(env).resolve())
    from importlib import metadata
    assert metadata.version("smdiff") == smdiff.__version__
    assert (Path(smdiff.__file__).parent / "py.typed").is_file()
    assert metadata.requires("smdiff") == ["numpy"]


def test_versions_agree():
    major, minor, _ = smdiff.library_version().split(".")
    assert (int(major), int(minor)) == _lib.API_VERSION
    assert tuple(int(x) for x in smdiff.__version__.split(".")[:2]) == _lib.API_VERSION


def test_version_check():
    _lib.check_version(201)       # 0.2.1
    _lib.check_version(200)
    for bad, text in ((300, "0.3.0"), (100, "0.1.0"), (10200, "1.2.0")):
        with pytest.raises(ImportError, match="version %s but this Python package needs 0.2" % text):
            _lib.check_version(bad)
    _lib.check_version(10300, wanted=(1, 2))  # from 1.0, a newer minor is compatible
    with pytest.raises(ImportError):
        _lib.check_version(10100, wanted=(1, 2))


def test_lookup_order_and_messages(tmp_path):
    assert _lib.candidates({"SMDIFF_LIB": "/x/libsmdiff.so"}) == ["/x/libsmdiff.so"]
    assert _lib.candidates({})[0] == "libsmdiff.so.%d" % _lib.API_VERSION[0]
    with pytest.raises(ImportError) as info:
        _lib.load(env={}, names=["libsmdiff-none.so.0", "libsmdiff-nothing.so.0"])
    msg = str(info.value)
    assert "libsmdiff-none.so.0" in msg and "libsmdiff-nothing.so.0" in msg and "SMDIFF_LIB" in msg
    missing = str(tmp_path / "libsmdiff.so.0")
    r = run_python("import smdiff", {"SMDIFF_LIB": missing})
    assert r.returncode != 0 and "ImportError" in r.stderr and missing in r.stderr
    assert "only that file was tried" in r.stderr


def test_found_through_the_loader_path():
    """Without SMDIFF_LIB, the dynamic loader finds the SONAME through
    LD_LIBRARY_PATH (as it would in an installed prefix)."""
    lib_file = os.environ.get("SMDIFF_LIB")
    if not lib_file:
        pytest.skip("SMDIFF_LIB is not set; nothing to point LD_LIBRARY_PATH at")
    folder = str(Path(lib_file).resolve().parent)
    if not (Path(folder) / _lib.SONAME).exists():
        pytest.skip("%s has no %s link" % (folder, _lib.SONAME))
    env = dict(os.environ)
    env.pop("SMDIFF_LIB")
    env["LD_LIBRARY_PATH"] = folder + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", "import smdiff; print(smdiff.library_path(), "
                        "smdiff.library_version())"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [_lib.SONAME, smdiff.library_version()]


def test_not_a_smdiff_library():
    r = run_python("import smdiff", {"SMDIFF_LIB": "libm.so.6"})
    assert r.returncode != 0 and "is not libsmdiff" in r.stderr


def test_help_reads_well():
    text = pydoc.render_doc(smdiff.Model, renderer=pydoc.plaintext)
    for needle in ("generate(", "generate_steps(", "logits(", "Ctrl-C", "vocab_size", "tokenizer"):
        assert needle in text, needle
    for obj in (smdiff, smdiff.Model, smdiff.Sampler, smdiff.SoftMask, smdiff.Tokenizer,
                smdiff.Strategy, smdiff.StepEvent, smdiff.StepView, smdiff.StepStream,
                smdiff.SmdiffError, smdiff.Model.generate, smdiff.Sampler.generate_tokens,
                smdiff.SoftMask.lambda_, smdiff.Tokenizer.chat_template):
        assert obj.__doc__ and len(obj.__doc__.strip()) > 20, obj
    public = [n for n in smdiff.__all__ if not n.startswith("__")]
    assert all(getattr(smdiff, n).__doc__ for n in public)
