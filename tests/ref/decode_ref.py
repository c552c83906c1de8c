#!/usr/bin/python3
"""Reference denoising loop for tests/test_generate.c (lib/diffusion/generate.c).

Decodes the tiny random `dream` and `llada` models of tiny_models.py (the
weights of tests/data/tiny_<arch>_f32.gguf, float64 math) at temperature 0
with deterministic strategies, with soft-masking off and on, and records the
canvas positions committed at every step and the final tokens. Written from
the method's definition (docs/METHOD.md s.1, Dream's diffusion_generate, LLaDA's
generate, Fast-dLLM's threshold rule), not from the C code:
  - input embedding of a still-masked position:
      (1 - lam) E[MASK] + lam * sum_i pi_i E[v_i] over the previous step's
      top-k of p = softmax(logits); lam = 0 at a block's first step;
      lam = scale * sigmoid(steepness * (-H(p) - centre)) (entropy mode) or
      a constant (constant mode), times the window gate (full window here:
      1 for steps 1.. of a block)
  - dream: the row i-1 predicts position i
  - maskgit_plus / entropy: Dream's commit count int(n * (1 - s/t)) with
    torch.linspace(1, eps, steps + 1) in float32; low_confidence: LLaDA's
    even split; threshold: the best, plus all with confidence >= threshold
  - ranking ties go to the lower position; the last step of a block commits
    everything left
  - EOS: stop once an EOS is committed and everything before it decided,
    filling the rest with EOS.
Also prints the smallest logit gap and ranking gap met, so a case whose
decisions sit within float32 noise of a tie would show.

The same loop, generalised, decodes canvases (infilling): the positions to
fill are any positions of the canvas, cut into blocks in canvas order, all
other positions are context; EOS padding works per span of consecutive
positions to fill and never touches context. With SM across blocks, every
still-masked position gets logits at every step and keeps its soft-mask
input across block boundaries (the next block's first step counts as a
step with a prediction). ReMDM (Wang et al. 2025, "Remasking Discrete
Diffusion Models with Inference-Time Scaling"), written from the paper's
posterior: cap and loop schedules, one uniform per masked position then
one per committed position of the block from the sampler's stream (NumPy's
Philox keyed by (seed, 2^40 + global step)); a re-masked position's
soft-mask input is a one-hot of the token it held (entropy 0). MDLM's
cached ancestral sampler (ddpm_cache, Sahoo et al. 2024, with its noise
removal): at every scheduled step each masked position unmasks with
probability (t - s)/t (one uniform per masked position from the same
stream), the last step included; then one more forward pass (with its
soft-mask inputs) and every position still masked takes that pass's
argmax. The soft-mask window then spans the block's passes, steps + 1.

Writes tests/data/decode_ref.txt (prompts) and tests/data/decode_canvas_ref.txt
(canvases, ReMDM, SM across blocks); rerun it whenever tiny_models.py
changes the tiny weights. Run: /usr/bin/python3 tests/ref/decode_ref.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_models as tm  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "decode_ref.txt")


def held_weights(c):
    w = tm.make_weights(c)
    h = {"embed": w["embed"].double(), "norm": w["norm"].double(), "head": w["head"].double(),
         "layers": [{k: v.double() for k, v in lw.items()} for lw in w["layers"]]}
    return h


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def strategy_uniforms(seed, g):
    """The sampler's strategy stream at global step g: Philox4x64-10 keyed by
    (seed, 2^40 + g) (tests/ref/rng_stream.py checks the generator)."""
    return np.random.Generator(np.random.Philox(key=seed + (((1 << 40) + g) << 64)))


def remdm_probs(strat, t, s, o):
    """ReMDM's step t -> s (Wang et al. 2025, log-linear alpha_t = 1 - t):
    a committed token is re-masked with probability sigma, a masked position
    unmasked with probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t).
    cap: sigma = min(eta, (1 - alpha_s) / alpha_t). loop: MDLM from alpha 0
    to alpha_on for t > t_on, alpha held at alpha_on with sigma = eta for
    t_off < t <= t_on, MDLM from alpha_on to 1 for t <= t_off. Both clamped
    to [0, 1]."""
    eta = o["eta"]
    if strat == "remdm_cap":
        at, as_ = 1 - t, 1 - s
        sigma = min(eta, (1 - as_) / at) if at > 0 else eta
    else:
        on, off, a = o["t_on"], o["t_off"], o["alpha_on"]
        if t > on:
            at, as_, sigma = (1 - t) * a / (1 - on), (1 - s) * a / (1 - on), 0.0
        elif t <= off:
            at, as_, sigma = 1 - t * (1 - a) / off, 1 - s * (1 - a) / off, 0.0
        else:
            at, as_, sigma = a, a, eta
    sigma = min(max(sigma, 0.0), 1.0)
    unmask = min(max((as_ - (1 - sigma) * at) / (1 - at), 0.0), 1.0) if at < 1 else 1.0
    return unmask, sigma


def lam_of(sm, ent):
    if sm["mode"] == "constant":
        return sm["const"]
    return sm["scale"] * sigmoid(sm["steep"] * (-ent - sm["centre"]))


def spans_of(fill):
    """Runs of consecutive canvas positions among the positions to fill."""
    out, j = [], 0
    while j < len(fill):
        e = j + 1
        while e < len(fill) and fill[e] == fill[e - 1] + 1:
            e += 1
        out.append(fill[j:e])
        j = e
    return out


def decode(arch, canvas, fill, block, steps, strat, sm, thr=0.9, eps=1e-3, seed=0, across=False,
           remdm=None, eos_stop=True):
    """Fill canvas[p] for p in fill (canvas order). Blocks of `block` of the
    positions to fill are decoded in that order; everything else is context.
    Returns the final canvas, the positions committed and re-masked at each
    global step, and the smallest gaps met (logit, ranking, uniform)."""
    c = tm.CFG[arch]
    w = held_weights(c)
    E = w["embed"]
    mask, eos = c["mask_id"], c["eos"] if eos_stop else -1
    canvas = list(canvas)
    for p in fill:
        canvas[p] = mask
    L, G = len(canvas), len(fill)
    block = block or G
    nb = G // block
    remasks = strat in ("remdm_cap", "remdm_loop")
    family = ("llada" if strat == "low_confidence" else "thr" if strat == "threshold"
              else "remdm" if remasks else "ddpm" if strat == "ddpm_cache" else "dream")
    spb = block if family == "thr" else steps // nb
    passes = spb + 1 if family == "ddpm" else spb
    is_fill = [False] * L
    for p in fill:
        is_fill[p] = True
    lam = np.zeros(L)
    smi = [None] * L
    trace, gaps = [], [1e9, 1e9, 1e9]
    g, stopped = 0, False
    for b in range(nb):
        blk = fill[b * block:(b + 1) * block]
        later = fill[(b + 1) * block:]
        ts = torch.linspace(1, eps, spb + 1)
        if not across:
            for p in blk:
                lam[p] = 0
        if family == "llada":
            base, rem = divmod(block, spb)
            sched = [base + (1 if i < rem else 0) for i in range(spb)]
        for i in range(passes):
            if stopped:
                break
            pos = [p for p in blk if canvas[p] == mask]
            if not pos and not remasks:
                break
            rows_pos = pos + ([p for p in later if canvas[p] == mask] if across else [])
            tok, conf, ent, tops = [], [], [], []
            if rows_pos:
                h = torch.zeros(L, c["d"], dtype=torch.float64)
                for p in range(L):
                    if canvas[p] != mask or not is_fill[p]:
                        h[p] = E[canvas[p]]
                    elif lam[p] > 0:
                        ids, pr = smi[p]
                        pi = pr / pr.sum()
                        h[p] = (1 - lam[p]) * E[mask] + lam[p] * sum(pi[j] * E[ids[j]] for j in range(len(ids)))
                    else:
                        h[p] = E[mask]
                logits = tm.forward(c, w, h).numpy()
                for p in rows_pos:
                    x = logits[p - 1 if c["shift"] else p]
                    pr = np.exp(x - x.max())
                    pr /= pr.sum()
                    o = np.argsort(-x, kind="stable")
                    gaps[0] = min(gaps[0], x[o[0]] - x[o[1]])
                    tok.append(int(o[0]))
                    conf.append(pr[o[0]])
                    ent.append(float(-(pr * np.log(pr)).sum()))
                    tops.append((o[:sm["k"]], pr[o[:sm["k"]]]))
            m = len(pos)
            committed_before = [p for p in blk if canvas[p] != mask]
            score = [-e for e in ent[:m]] if strat == "entropy" else conf[:m]
            order = sorted(range(m), key=lambda j: (-score[j], pos[j]))
            nt, remask = m, []
            if family == "dream":
                t, s = ts[i], ts[i + 1]
                nt = int(torch.tensor(float(m)) * (1 - s / t)) if i < spb - 1 else m
                chosen = order[:nt]
            elif family == "llada":
                nt = sched[i]
                chosen = order[:nt]
            elif family == "ddpm":
                chosen = []
                if i < spb:
                    p_unmask = (float(ts[i]) - float(ts[i + 1])) / float(ts[i])
                    rng = strategy_uniforms(seed, g)
                    for j in range(m):
                        u = rng.random()
                        gaps[2] = min(gaps[2], abs(u - p_unmask))
                        if u < p_unmask:
                            chosen.append(j)
            elif family == "thr":
                chosen = [j for j in range(m) if j == order[0] or conf[j] >= thr]
                for j in range(m):
                    if j != order[0]:
                        gaps[1] = min(gaps[1], abs(conf[j] - thr))
            else:  # ReMDM: one uniform per masked, then per committed position
                unmask, sigma = remdm_probs(strat, float(ts[i]), float(ts[i + 1]), remdm)
                rng = strategy_uniforms(seed, g)
                chosen = []
                for j in range(m):
                    u = rng.random()
                    gaps[2] = min(gaps[2], abs(u - unmask))
                    if u < unmask:
                        chosen.append(j)
                for p in committed_before:
                    u = rng.random()
                    if sigma > 0:
                        gaps[2] = min(gaps[2], abs(u - sigma))
                    if u < sigma:
                        remask.append(p)
            if family in ("dream", "llada") and 0 < nt < m:
                gaps[1] = min(gaps[1], abs(score[order[nt - 1]] - score[order[nt]]))
            last = i == passes - 1
            if last:
                chosen, remask = list(range(m)), []
            com = sorted(pos[j] for j in chosen)
            for j in chosen:
                canvas[pos[j]] = tok[j]
            # soft-mask inputs of the next forward pass (full window: the
            # gate is 1 except after a block's last step; rows of later
            # blocks, once this block is done, use the next block's first
            # step, which with SM across blocks has a prediction)
            gate = 1.0 if (i + 1) / passes < 1.0 else 0.0
            cont = not last and (remasks or any(canvas[p] == mask for p in blk))
            gate_next = gate if cont else 1.0
            for j, p in enumerate(rows_pos):
                lam[p] = 0
                gj = gate if j < m else gate_next
                if canvas[p] != mask or sm["mode"] == "off" or gj == 0:
                    continue
                lam[p] = gj * lam_of(sm, ent[j])
                smi[p] = tops[j]
            # a re-masked position's prediction: the token it held, one-hot
            for p in remask:
                smi[p] = (np.array([canvas[p]] * sm["k"]), np.array([1.0] + [0.0] * (sm["k"] - 1)))
                canvas[p] = mask
                lam[p] = gate * lam_of(sm, 0.0) if sm["mode"] != "off" else 0.0
            trace.append((g, com, sorted(remask)))
            g += 1
            # EOS, per span: an EOS with everything before it in its span
            # decided turns the rest of the span into EOS; stop when nothing
            # is left masked
            if eos >= 0:
                padded = False
                for sp in spans_of(fill):
                    q = 0
                    while q < len(sp) and canvas[sp[q]] != mask and canvas[sp[q]] != eos:
                        q += 1
                    if q < len(sp) and canvas[sp[q]] == eos:
                        for r in sp[q:]:
                            canvas[r] = eos
                        padded = True
                if padded and all(canvas[p] != mask for p in fill):
                    stopped = True
    return canvas, trace, gaps


def decode_prompt(arch, prompt, gen, block, steps, strat, sm, thr=0.9, eps=1e-3):
    """The prompt followed by gen masks: smdiff_generate_tokens's canvas."""
    P = len(prompt)
    canvas, trace, gaps = decode(arch, list(prompt) + [0] * gen, list(range(P, P + gen)), block, steps,
                                 strat, sm, thr, eps)
    eos = tm.CFG[arch]["eos"]
    out = canvas[P:]
    n_out = out.index(eos) if eos in out else gen
    return out, n_out, [(g, com) for g, com, _ in trace], gaps


OFF = dict(mode="off", k=3, scale=0.0, steep=0.0, centre=0.0, const=0.0)
ENT = dict(mode="entropy", k=3, scale=0.9, steep=1.0, centre=-5.0, const=0.0)
CON = dict(mode="constant", k=2, scale=0.0, steep=0.0, centre=0.0, const=0.6)

CASES = [
    ("dream_maskgit_off", "dream", [5, 17, 33, 2], 16, 0, 8, "maskgit_plus", OFF, 0.9),
    ("dream_maskgit_sm", "dream", [5, 17, 33, 2], 16, 0, 8, "maskgit_plus", ENT, 0.9),
    ("dream_entropy_blocks_const", "dream", [9, 40, 77], 16, 8, 8, "entropy", CON, 0.9),
    ("llada_lowconf_off", "llada", [4, 50, 21, 99, 7], 16, 8, 8, "low_confidence", OFF, 0.9),
    ("llada_lowconf_sm", "llada", [4, 50, 21, 99, 7], 16, 8, 8, "low_confidence", ENT, 0.9),
    ("llada_threshold_sm", "llada", [8, 60, 3], 12, 0, 12, "threshold", CON, 0.4),
]

# Canvases (None = a position to fill), ReMDM and SM across blocks:
# tests/data/decode_canvas_ref.txt
M = None
RD = dict(eta=0.02, t_on=0.55, t_off=0.05, alpha_on=0.9)  # the sampler's defaults
R_CAP = dict(RD, eta=0.3)
R_LOOP = dict(eta=0.3, t_on=0.6, t_off=0.2, alpha_on=0.7)
CANVAS_CASES = [
    # name, arch, canvas, block, steps, strategy, SM, threshold, seed, across, ReMDM
    ("dream_infill_maskgit_sm", "dream", [5, 17, 33] + [M] * 8 + [40, 77, 2], 0, 8, "maskgit_plus", ENT, 0.9,
     0, False, RD),
    ("llada_infill_spans_lowconf_blocks", "llada", [M] * 4 + [4, 50] + [M] * 6 + [21, 99] + [M] * 6 + [7], 4, 8,
     "low_confidence", CON, 0.9, 0, False, RD),
    ("dream_infill_entropy_across", "dream", [9, 40] + [M] * 6 + [77, 3] + [M] * 6 + [12], 4, 6, "entropy", ENT,
     0.9, 0, True, RD),
    ("llada_infill_threshold_across", "llada", [8] + [M] * 8 + [60, 3] + [M] * 4, 4, 12, "threshold", CON, 0.4,
     0, True, RD),
    ("llada_lowconf_across", "llada", [4, 50, 21, 99, 7] + [M] * 16, 8, 8, "low_confidence", ENT, 0.9, 0, True,
     RD),
    ("dream_remdm_cap_off", "dream", [5, 17, 33, 2] + [M] * 12, 0, 12, "remdm_cap", OFF, 0.9, 7, False, R_CAP),
    ("dream_remdm_cap_sm_blocks", "dream", [5, 17, 33, 2] + [M] * 12, 6, 12, "remdm_cap", ENT, 0.9, 3, False,
     R_CAP),
    ("llada_remdm_loop_const_steps", "llada", [4, 50, 21] + [M] * 8, 0, 16, "remdm_loop", CON, 0.9, 5, False,
     R_LOOP),
    ("llada_remdm_loop_infill_across", "llada", [M] * 3 + [4, 50] + [M] * 5 + [21], 4, 16, "remdm_loop", ENT,
     0.9, 9, True, R_LOOP),
    ("llada_ddpm_cache_off", "llada", [4, 50, 21] + [M] * 10, 0, 8, "ddpm_cache", OFF, 0.9, 11, False, RD),
    ("dream_ddpm_cache_sm_blocks", "dream", [5, 17, 33, 2] + [M] * 12, 6, 8, "ddpm_cache", ENT, 0.9, 4, False, RD),
]
# the final timestep eps of a case (default 1e-3): 0.3 leaves most positions
# of a ddpm_cache block masked after its last scheduled step (unmasking
# probability (t - s)/t there), so the argmax pass fills them
CASE_EPS = {"llada_ddpm_cache_off": 0.3, "dream_ddpm_cache_sm_blocks": 0.3}
CANVAS_OUT = os.path.join(os.path.dirname(OUT), "decode_canvas_ref.txt")


def write_canvas_cases():
    modes = {"off": 0, "entropy": 1, "constant": 2}
    with open(CANVAS_OUT, "w") as f:
        for name, arch, cv, block, steps, strat, sm, thr, seed, across, rd in CANVAS_CASES:
            mask = tm.CFG[arch]["mask_id"]
            fill = [p for p, x in enumerate(cv) if x is None]
            canvas = [mask if x is None else x for x in cv]
            eps = CASE_EPS.get(name, 1e-3)
            out, trace, gaps = decode(arch, canvas, fill, block, steps, strat, sm, thr, eps=eps, seed=seed,
                                      across=across, remdm=rd)
            n_rm = sum(len(r) for _, _, r in trace)
            print(f"{name}: {len(trace)} steps, {n_rm} re-masked, canvas {out} min logit gap {gaps[0]:.2e} "
                  f"min ranking gap {gaps[1]:.2e} min uniform gap {gaps[2]:.2e}", file=sys.stderr)
            f.write(f"case {name} {arch} {strat} {block} {steps} {thr!r} {modes[sm['mode']]} {sm['k']} "
                    f"{sm['scale']!r} {sm['steep']!r} {sm['centre']!r} {sm['const']!r} {seed} {int(across)} "
                    f"{rd['eta']!r} {rd['t_on']!r} {rd['t_off']!r} {rd['alpha_on']!r} {eps!r}\n")
            f.write(f"canvas {len(canvas)} " + " ".join(map(str, canvas)) + "\n")
            f.write(f"tokens {len(out)} " + " ".join(map(str, out)) + "\n")
            for g, com, rm in trace:
                f.write(f"step {g} {len(com)} " + "".join(f"{p} " for p in com) + f"{len(rm)}" +
                        "".join(f" {p}" for p in rm) + "\n")
            f.write("end\n")
    print("wrote", CANVAS_OUT, file=sys.stderr)


def main():
    torch.set_grad_enabled(False)
    write_canvas_cases()
    with open(OUT, "w") as f:
        for name, arch, prompt, gen, block, steps, strat, sm, thr in CASES:
            toks, n_out, trace, gaps = decode_prompt(arch, prompt, gen, block, steps, strat, sm, thr)
            print(f"{name}: n_out {n_out} tokens {toks} min logit gap {gaps[0]:.2e} "
                  f"min ranking gap {gaps[1]:.2e}", file=sys.stderr)
            modes = {"off": 0, "entropy": 1, "constant": 2}
            f.write(f"case {name} {arch} {strat} {gen} {block} {steps} {thr!r} {modes[sm['mode']]} "
                    f"{sm['k']} {sm['scale']!r} {sm['steep']!r} {sm['centre']!r} {sm['const']!r}\n")
            f.write(f"prompt {len(prompt)} " + " ".join(map(str, prompt)) + "\n")
            f.write(f"tokens {n_out} " + " ".join(map(str, toks)) + "\n")
            for g, com in trace:
                f.write(f"step {g} {len(com)} " + " ".join(map(str, com)) + "\n")
            f.write("end\n")
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
