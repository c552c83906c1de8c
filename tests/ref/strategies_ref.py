#!/usr/bin/env python3
"""Reference traces of the decoder strategies for tests/test_strategies.c.

For a synthetic denoising run -- each masked position has, at every step, a
confidence, q top-1/top-2 and entropy drawn here -- replays the selection
rules of the published algorithms and records which canvas positions commit
at each step:
  Dream diffusion_generate: origin, maskgit_plus, topk_margin, entropy
    (timesteps torch.linspace(1, eps, steps + 1) in float32, commits
    int(n_masked * (1 - s/t)) in float32, everything at the last step;
    alg_temp > 0: draws without replacement from softmax(conf / alg_temp)),
  LLaDA generate: low_confidence and random, block-wise, with
    get_num_transfer_tokens,
  Fast-dLLM threshold: the best always, others with confidence >= threshold;
  Fast-dLLM factor (get_transfer_index_dynamic): sorted confidences c_k
    against 1 - factor / (k + 1) (k 1-based; the first always passes), the
    leading run that passes commits (smdiff leaves out the reference's
    increment when only the last-ranked one fails; see decoder_builtin.c).
    The scenario's threshold field holds the factor.
Ties in a ranking go to the lower position. Random numbers come from
NumPy's Philox(key = seed + (stream << 64)), stream = 1000 + global step, the
generator lib/core/rng.c reproduces.

Writes tests/data/strategies_ref.txt:
  scenario NAME strategy P gen block steps alg_temp threshold seed eps
  values   S  (rows: step pos conf top1 top2 entropy), S*(P+gen) rows
  step g k pos... (positions committed at global step g)
  end
Run: /usr/bin/python3 tests/ref/strategies_ref.py
"""
import os
import numpy as np
import torch


def uniforms(seed, g):
    return np.random.Generator(np.random.Philox(key=seed + ((1000 + g) << 64)))


def rank(scores, pos):
    order = sorted(range(len(pos)), key=lambda i: (-scores[i], pos[i]))
    return order


def run(name, strat, P, gen, block, steps, alg_temp, thr, seed, eps, vals):
    n_blocks = gen // block
    spb = steps // n_blocks
    family = "llada" if strat in ("low_confidence", "random") else (
        "threshold" if strat in ("threshold", "factor") else "dream")
    if family == "threshold":
        spb = block
    masked = set(range(P, P + gen))
    trace = []
    g = 0
    for b in range(n_blocks):
        lo, hi = P + b * block, P + (b + 1) * block
        ts = torch.linspace(1, eps, spb + 1)
        if family == "llada":
            nm0 = len([p for p in masked if lo <= p < hi])
            base, rem = divmod(nm0, spb)
            sched = [base + (1 if i < rem else 0) for i in range(spb)]
        for i in range(spb):
            pos = sorted(p for p in masked if lo <= p < hi)
            if not pos:
                break
            rng = uniforms(seed, g)
            conf = [vals[g][p][0] for p in pos]
            top1 = [vals[g][p][1] for p in pos]
            top2 = [vals[g][p][2] for p in pos]
            ent = [vals[g][p][3] for p in pos]
            m = len(pos)
            t, s = ts[i], ts[i + 1]
            if family == "dream":
                nt = int(torch.tensor(float(m)) * (1 - s / t)) if i < spb - 1 else m
            elif family == "llada":
                nt = sched[i]
            else:
                nt = m
            chosen = []
            if strat == "origin":
                p_tr = (1 - s / t).item() if i < spb - 1 else 1.0
                p_tr = np.float32(p_tr)
                for j in range(m):
                    if rng.random() < p_tr:
                        chosen.append(j)
            elif strat == "threshold":
                best = rank(conf, pos)[0]
                chosen = [j for j in range(m) if j == best or conf[j] >= thr]
            elif strat == "factor":
                order = rank(conf, pos)
                threshs = [1 - thr / (k + 1) for k in range(1, m + 1)]
                threshs[0] = -1
                top = m
                for k in range(m):
                    if float(conf[order[k]]) < threshs[k]:
                        top = k
                        break
                chosen = order[:top]
            else:
                if strat in ("maskgit_plus", "low_confidence"):
                    sc = [float(c) for c in conf]
                elif strat == "topk_margin":
                    sc = [float(a) - float(b_) for a, b_ in zip(top1, top2)]
                elif strat == "entropy":
                    sc = [-float(e) for e in ent]
                else:
                    sc = [rng.random() for _ in range(m)]
                if nt > 0:
                    if alg_temp > 0 and family == "dream":
                        idx = list(range(m))
                        mx = max(sc)
                        w = [np.exp((x - mx) / alg_temp) for x in sc]
                        for k in range(min(nt, m)):
                            total = sum(w[idx[i2]] for i2 in range(k, m))
                            u = rng.random() * total
                            acc, pick = 0.0, m - 1
                            for i2 in range(k, m):
                                acc += w[idx[i2]]
                                if acc > u:
                                    pick = i2
                                    break
                            idx[k], idx[pick] = idx[pick], idx[k]
                        chosen = idx[:min(nt, m)]
                    else:
                        chosen = rank(sc, pos)[:nt]
            if i == spb - 1:
                chosen = list(range(m))  # the loop commits what is left
            com = sorted(pos[j] for j in set(chosen))
            for p in com:
                masked.discard(p)
            trace.append((g, com))
            g += 1
    return trace


def main():
    rng = np.random.default_rng(5)
    P = 3
    scen = [
        ("dream_origin", "origin", 12, 12, 6, 0.0, 0.9, 77, 1e-3),
        ("dream_maskgit", "maskgit_plus", 12, 12, 6, 0.0, 0.9, 77, 1e-3),
        ("dream_margin", "topk_margin", 12, 12, 6, 0.0, 0.9, 77, 1e-3),
        ("dream_entropy", "entropy", 12, 12, 6, 0.0, 0.9, 77, 1e-3),
        ("dream_algtemp", "maskgit_plus", 12, 12, 6, 0.5, 0.9, 77, 1e-3),
        ("dream_blocks", "entropy", 12, 6, 6, 0.0, 0.9, 78, 1e-3),
        ("dream_many", "maskgit_plus", 40, 40, 7, 0.0, 0.9, 79, 0.01),
        ("llada_lowconf", "low_confidence", 12, 4, 6, 0.0, 0.9, 80, 1e-3),
        ("llada_random", "random", 12, 4, 6, 0.0, 0.9, 81, 1e-3),
        ("llada_uneven", "low_confidence", 10, 10, 4, 0.0, 0.9, 82, 1e-3),
        ("fast_threshold", "threshold", 8, 8, 8, 0.0, 0.5, 83, 1e-3),
        ("fast_factor", "factor", 12, 12, 12, 0.0, 1.0, 84, 1e-3),
        ("fast_factor_blocks", "factor", 12, 6, 12, 0.0, 2.5, 85, 1e-3),
    ]
    out = os.path.join(os.path.dirname(__file__), "..", "data", "strategies_ref.txt")
    with open(out, "w") as f:
        for name, strat, gen, block, steps, at, thr, seed, eps in scen:
            n = P + gen
            S = max(steps, gen)
            vals = []
            for g in range(S):
                rows = []
                for p in range(n):
                    conf = np.float32(round(rng.uniform(0.05, 1.0), 1))  # ties on purpose
                    top1 = np.float32(max(conf, np.float32(rng.uniform(0.3, 1.0))))
                    top2 = np.float32(rng.uniform(0, 1 - top1))
                    ent = np.float32(rng.uniform(0, 3))
                    rows.append((conf, top1, top2, ent))
                vals.append(rows)
            tr = run(name, strat, P, gen, block, steps, at, thr, seed, eps, vals)
            f.write(f"scenario {name} {strat} {P} {gen} {block} {steps} {at!r} {thr!r} {seed} {eps!r}\n")
            f.write(f"values {S}\n")
            for g in range(S):
                for p in range(n):
                    c, a, b, e = vals[g][p]
                    f.write(f"{g} {p} {c:.9g} {a:.9g} {b:.9g} {e:.9g}\n")
            for g, com in tr:
                f.write(f"step {g} {len(com)} " + " ".join(map(str, com)) + "\n")
            f.write("end\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
