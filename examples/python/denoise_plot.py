#!/usr/bin/env python3
"""Watch the denoising: stream the steps of one generation and draw them.

One row per step, one column per generated position. A masked cell is shaded
by the soft-mask weight lambda it will use at the next step (white = 0, plain
[MASK]); a cell turns orange at the step its token is committed, labelled with
the token, and stays grey afterwards.

    python3 examples/python/denoise_plot.py --out denoising.png
    python3 examples/python/denoise_plot.py --softmask entropy --sm-scale 0.9 \
        --sm-steepness 1 --sm-centre -5 --out docs/denoising.png    # the picture in docs/

By default the model's own soft-mask schedule is used; the bundled model's
learned gate gives lambda > 0.01 to only a few percent of masked positions
(docs/RESULTS.md), so its shading is faint -- the options above set a wider
gate to make the feedback visible.

Needs matplotlib (Debian: python3-matplotlib).
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

import smdiff  # noqa: E402
from generate import default_model  # noqa: E402


def collect(model: smdiff.Model, prompt: str, **kw):
    """Per step: the generated canvas and lambda; the commit step of each cell."""
    canvases, lambdas = [], []
    with model.generate_steps(prompt, **kw) as stream:
        for ev in stream:
            canvases.append(ev.generated.copy())
            lambdas.append(ev.lambda_[ev.n_prompt:].copy())
            mask_id = ev.mask_id
    return np.array(canvases), np.array(lambdas), mask_id, stream.text


def draw(model: smdiff.Model, canvases, lambdas, mask_id, title: str, out: str) -> None:
    n_steps, n = canvases.shape
    masked = canvases == mask_id
    commit_step = np.argmax(~masked, axis=0)  # first step where the cell is decided
    fig, ax = plt.subplots(figsize=(max(8, 0.42 * n), max(4, 0.3 * n_steps)), dpi=110)
    lam_max = max(float(lambdas.max()), 0.05)
    shade = np.where(masked, lambdas / lam_max, np.nan)
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    done = np.where(~masked, 1.0, np.nan)
    ax.imshow(done, cmap=ListedColormap(["#e6e6e6"]), aspect="auto", interpolation="nearest")
    tok = model.tokenizer
    for j in range(n):
        i = commit_step[j]
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="#f28e2b"))
        piece = tok.piece(int(canvases[-1, j])).decode("utf-8", "replace").replace("\n", "\\n")
        ax.text(j, i, piece.strip() or repr(piece)[1:-1], ha="center", va="center", fontsize=7,
                rotation=90 if len(piece) > 3 else 0)
    tok.close()
    ax.set_xlabel("generated position")
    ax.set_ylabel("step")
    ax.set_title(title, fontsize=9)
    sm = plt.cm.ScalarMappable(cmap="Blues", norm=plt.Normalize(0, lam_max))
    fig.colorbar(sm, ax=ax, fraction=0.025, pad=0.01, label="lambda of a masked position")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", default=default_model())
    ap.add_argument("-p", "--prompt", default="It was a dark and stormy night, and")
    ap.add_argument("--gen-len", type=int, default=32)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--softmask", default=None, choices=["off", "entropy", "constant"],
                    help="mode (default: the model's stored schedule)")
    ap.add_argument("--sm-scale", type=float, help="omega_s")
    ap.add_argument("--sm-steepness", type=float, help="omega_a")
    ap.add_argument("--sm-centre", type=float, help="omega_b")
    ap.add_argument("--sm-lambda", type=float, help="lambda of mode constant")
    ap.add_argument("--out", default="denoising.png")
    a = ap.parse_args()
    with smdiff.Model(a.model) as model:
        given = dict(scale=a.sm_scale, steepness=a.sm_steepness, centre=a.sm_centre,
                     constant_lambda=a.sm_lambda)
        sm = smdiff.SoftMask.from_model(model, mode=a.softmask,
                                        **{k: v for k, v in given.items() if v is not None})
        canvases, lambdas, mask_id, text = collect(
            model, a.prompt, gen_len=a.gen_len, steps=a.steps, temperature=a.temperature,
            seed=a.seed, softmask=sm)
        what = ("constant lambda %.3g" % sm.constant_lambda if sm.mode == "constant" else
                "k=%d omega=(%.3g, %.3g, %.3g)" % (sm.k, sm.scale, sm.steepness, sm.centre))
        title = ("%r ...  (%d steps, temperature %g, seed %d; soft-masking %s %s)"
                 % (a.prompt, a.steps, a.temperature, a.seed, sm.mode, what))
        draw(model, canvases, lambdas, mask_id, title, a.out)
    print(a.prompt + text)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
