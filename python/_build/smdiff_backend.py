"""The PEP 517 build backend of the smdiff Python package (pyproject.toml).

Why hand-written: pip builds a package in an isolated environment into
which it installs the build requirements from a package index. setuptools
or flit as the backend would make ``pip install ./python`` fail on a
machine without network access, and the package is a few pure-Python files
that need no build step. This backend needs only the standard library
(tomllib; tomli before Python 3.11): it writes the wheel (a zip with the
package and its .dist-info: METADATA, WHEEL, RECORD -- the wheel format of
PEP 427 / the binary distribution format spec), the sdist, and an editable
wheel (PEP 660) holding a .pth file that points at this folder.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed zip timestamps: reproducible wheels


def _config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _version(cfg: dict) -> str:
    text = (ROOT / cfg["tool"]["smdiff-build"]["version-file"]).read_text()
    m = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not m:
        raise RuntimeError("no __version__ in the version file")
    return m.group(1)


def _license() -> Optional[Path]:
    for p in (ROOT / "LICENSE", ROOT.parent / "LICENSE"):
        if p.is_file():
            return p
    return None


def _metadata(cfg: dict) -> str:
    p = cfg["project"]
    lines = ["Metadata-Version: 2.1", "Name: %s" % p["name"], "Version: %s" % _version(cfg),
             "Summary: %s" % p["description"], "Requires-Python: %s" % p["requires-python"]]
    if "license" in p:
        lines.append("License: %s" % p["license"]["text"])
    lines += ["Classifier: %s" % c for c in p.get("classifiers", [])]
    lines += ["Requires-Dist: %s" % d for d in p.get("dependencies", [])]
    readme = ROOT / p["readme"]
    lines.append("Description-Content-Type: text/markdown")
    return "\n".join(lines) + "\n\n" + readme.read_text(encoding="utf-8")


def _package_files(cfg: dict) -> List[Tuple[str, Path]]:
    out = []
    for pkg in cfg["tool"]["smdiff-build"]["packages"]:
        for path in sorted((ROOT / pkg).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                out.append((path.relative_to(ROOT).as_posix(), path))
    return out


def _dist_name(cfg: dict) -> str:
    return "%s-%s" % (re.sub(r"[-_.]+", "_", cfg["project"]["name"]).lower(), _version(cfg))


def _write_wheel(directory: str, files: Dict[str, bytes], cfg: dict) -> str:
    name = _dist_name(cfg)
    info = "%s.dist-info" % name
    files = dict(files)
    files["%s/METADATA" % info] = _metadata(cfg).encode("utf-8")
    files["%s/WHEEL" % info] = (b"Wheel-Version: 1.0\nGenerator: smdiff-backend\n"
                                b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    lic = _license()
    if lic is not None:
        files["%s/LICENSE" % info] = lic.read_bytes()
    record = []
    for arcname, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))
    record.append("%s/RECORD,," % info)
    files["%s/RECORD" % info] = ("\n".join(record) + "\n").encode()
    wheel = "%s-py3-none-any.whl" % name
    with zipfile.ZipFile(os.path.join(directory, wheel), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files.items():
            zi = zipfile.ZipInfo(arcname, EPOCH)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return wheel


# ------------------------------------------------------------ PEP 517 hooks
def get_requires_for_build_wheel(config_settings=None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings=None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings=None) -> List[str]:
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    cfg = _config()
    return _write_wheel(wheel_directory, {a: p.read_bytes() for a, p in _package_files(cfg)}, cfg)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    cfg = _config()
    pth = ("%s\n" % ROOT).encode()
    return _write_wheel(wheel_directory, {"_smdiff_editable.pth": pth}, cfg)


def build_sdist(sdist_directory, config_settings=None) -> str:
    cfg = _config()
    name = _dist_name(cfg)
    members = [("pyproject.toml", ROOT / "pyproject.toml"), ("README.md", ROOT / cfg["project"]["readme"]),
               ("_build/smdiff_backend.py", ROOT / "_build" / "smdiff_backend.py")] + _package_files(cfg)
    lic = _license()
    if lic is not None:
        members.append(("LICENSE", lic))
    path = os.path.join(sdist_directory, "%s.tar.gz" % name)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        pkg_info = _metadata(cfg).encode("utf-8")
        for arcname, data in [("PKG-INFO", pkg_info)] + [(a, p.read_bytes()) for a, p in members]:
            ti = tarfile.TarInfo("%s/%s" % (name, arcname))
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1577836800
            tar.addfile(ti, io.BytesIO(data))
    return os.path.basename(path)
