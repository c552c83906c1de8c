"""The Python examples run (small settings) and produce what they promise."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import BUNDLED, REPO

EXAMPLES = REPO / "examples" / "python"


def run_example(name, *args):
    if not BUNDLED.is_file():
        pytest.skip("the bundled model %s is missing" % BUNDLED)
    env = dict(os.environ, SMDIFF_MODEL=str(BUNDLED))
    r = subprocess.run([sys.executable, str(EXAMPLES / name)] + list(args), env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_generate_example():
    out = run_example("generate.py", "-p", "Once upon a time", "--gen-len", "8", "--steps", "4",
                      "--show-steps")
    assert out.count("step ") == 4 and "Once upon a time" in out
    out = run_example("generate.py", "-p", "It was a cold night,", "--suffix", " and then.",
                      "--gen-len", "6", "--steps", "3")
    assert out.startswith("It was a cold night,") and out.rstrip().endswith("and then.")


def test_denoise_plot_example(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "d.png"
    out = run_example("denoise_plot.py", "--gen-len", "8", "--steps", "4", "--softmask", "constant",
                      "--out", str(png))
    assert "wrote" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_softmask_compare_example():
    out = run_example("softmask_compare.py", "--seeds", "1", "--gen-len", "8", "--steps", "4")
    assert "soft-masking off" in out and "soft-masking learned" in out
    assert "soft-masking constant" in out and "lambda > 0.01 at 100.0%" in out


def test_threshold_steps_script(tmp_path):
    """examples/code/threshold_steps.py counts the steps of each block: at
    threshold 0 a block commits at once (1 step), at threshold 1 one
    position a step (the block's length)."""
    if not BUNDLED.is_file():
        pytest.skip("the bundled model %s is missing" % BUNDLED)
    (tmp_path / "held").mkdir()
    (tmp_path / "held" / "a.py").write_text("def f(x):\n    return x + 1\n\nprint(f(2))\n")
    script = REPO / "examples" / "code" / "threshold_steps.py"
    for thr, want in (("0", 1), ("1", 16)):
        r = subprocess.run([sys.executable, str(script), str(BUNDLED), str(tmp_path / "held"), "--gen", "32",
                            "--block", "16", "--threshold", thr], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "a.py [%d, %d]" % (want, want) in r.stdout, r.stdout
        assert "mean %.2f" % want in r.stdout
