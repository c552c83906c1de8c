"""Generation from Python gives the tokens of the independent reference
loop (tests/ref/decode_ref.py, the fixture the C tests check too) and of
the CLI, greedy and sampled, with soft-masking off and on; text in and out;
step events; sampler options."""
from __future__ import annotations

import numpy as np
import pytest

import smdiff
from conftest import BUNDLED, DATA, run_cli, tiny_path

SM_MODE = {0: "off", 1: "entropy", 2: "constant"}


def reference_cases():
    """tests/data/decode_ref.txt: name, settings, prompt, tokens, commits per step."""
    cases, lines = [], iter((DATA / "decode_ref.txt").read_text().split("\n"))
    for line in lines:
        f = line.split()
        if not f:
            continue
        assert f[0] == "case"
        name, arch, strat = f[1], f[2], f[3]
        gen, block, steps = int(f[4]), int(f[5]), int(f[6])
        thr, mode, k = float(f[7]), int(f[8]), int(f[9])
        scale, steep, centre, cst = map(float, f[10:14])
        prompt = [int(x) for x in next(lines).split()[2:]]
        t = next(lines).split()
        n_want, tokens = int(t[1]), [int(x) for x in t[2:]]
        steps_ref = []
        for s in lines:
            if s == "end":
                break
            g = s.split()
            steps_ref.append([int(x) for x in g[3:]])
        cases.append(dict(name=name, arch=arch, strategy=strat, gen=gen, block=block, steps=steps,
                          threshold=thr, mode=mode, k=k, scale=scale, steep=steep, centre=centre,
                          cst=cst, prompt=prompt, n_out=n_want, tokens=tokens, commits=steps_ref))
    return cases


CASES = reference_cases()


def schedule(c) -> smdiff.SoftMask:
    sm = smdiff.SoftMask(mode=SM_MODE[c["mode"]], k=c["k"])
    if c["mode"] == 1:
        sm.set(omega_s=c["scale"], omega_a=c["steep"], omega_b=c["centre"])
    if c["mode"] == 2:
        sm.constant_lambda = c["cst"]
    return sm


def test_reference_cases_present():
    assert len(CASES) == 6


@pytest.mark.parametrize("c", CASES, ids=[c["name"] for c in CASES])
def test_reference_decoding(c):
    """Committed positions at every step and the final tokens equal the
    PyTorch reference loop's, through Sampler and through Model.generate."""
    with smdiff.Model(tiny_path(c["arch"]), threads=1) as m, schedule(c) as sm:
        events = []
        with smdiff.Sampler(strategy=c["strategy"], softmask=sm, gen_length=c["gen"],
                            block_length=c["block"], steps=c["steps"],
                            threshold=c["threshold"]) as s:
            out = np.empty(c["gen"], np.int32)
            got = s.generate_tokens(m, c["prompt"], on_step=events.append, out=out)
        assert len(got) == c["n_out"]
        assert out.tolist() == c["tokens"]
        assert [e.committed.tolist() for e in events] == c["commits"]
        lam = max(float(e.lambda_.max()) for e in events)
        assert lam == 0.0 if c["mode"] == 0 else lam > 0.1
        decided = set()
        for e in events:  # each event's own canvas: decided exactly where committed so far
            decided |= set(e.committed.tolist())
            gen = e.canvas[len(c["prompt"]):]
            assert set((np.flatnonzero(gen != m.mask_id) + len(c["prompt"])).tolist()) == decided
            assert np.all(e.canvas[e.lambda_ > 0] == m.mask_id)  # lambda only where masked
        again = m.generate_tokens(c["prompt"], strategy=c["strategy"], softmask=sm,
                                  gen_len=c["gen"], block_len=c["block"], steps=c["steps"],
                                  threshold=c["threshold"])
        assert again.tolist() == c["tokens"][:c["n_out"]]


def cli_ids(model, ids, args):
    out = run_cli(["generate", "-q", "-m", model, "--ids", " ".join(map(str, ids))] + args)
    return [int(x) for x in out.split()]


SETTINGS = [
    ("greedy_sm_off", dict(softmask="off"), ["--softmask", "off"]),
    ("greedy_sm_on", dict(sm=dict(scale=0.9, steepness=1.0, centre=-5.0)),
     ["--softmask", "entropy", "--sm-scale", "0.9", "--sm-steepness", "1", "--sm-centre", "-5"]),
    ("sampled_sm_off", dict(softmask="off", temperature=0.8, top_p=0.9, seed=7),
     ["--softmask", "off", "--temp", "0.8", "--top-p", "0.9", "--seed", "7"]),
    ("sampled_sm_on", dict(sm=dict(scale=0.9, steepness=1.0, centre=-5.0), temperature=0.8,
                           top_p=0.9, seed=7),
     ["--softmask", "entropy", "--sm-scale", "0.9", "--sm-steepness", "1", "--sm-centre", "-5",
      "--temp", "0.8", "--top-p", "0.9", "--seed", "7"]),
    ("sampled_blocks_lowconf", dict(softmask="constant", temperature=1.0, seed=3, block_len=8,
                                    strategy="low_confidence"),
     ["--softmask", "constant", "--temp", "1", "--seed", "3", "--block-len", "8",
      "--strategy", "low_confidence"]),
]


@pytest.mark.parametrize("arch", ["dream", "llada"])
@pytest.mark.parametrize("name,py,args", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_same_tokens_as_cli(arch, name, py, args):
    """The same model, prompt, seed and settings give the CLI's tokens."""
    prompt = [4, 5, 17, 33]
    common = ["--gen-len", "16", "--steps", "16", "--threads", "1"]
    want = cli_ids(tiny_path(arch), prompt, common + args)
    py = dict(py)
    with smdiff.Model(tiny_path(arch)) as m:
        if "sm" in py:
            py["softmask"] = smdiff.SoftMask.from_model(m, mode="entropy", **py.pop("sm"))
        got = m.generate_tokens(prompt, gen_len=16, steps=16, threads=1, **py)
    assert got.tolist() == want
    assert len(want) > 0


def test_text_same_as_cli(bundled):
    """Text in, text out with the bundled model: tokenized, generated and
    detokenized as the CLI does (sampled, with the model's learned SM)."""
    prompt = "It was a dark and stormy night, and"
    args = ["--gen-len", "16", "--steps", "8", "--temp", "0.7", "--top-p", "0.9", "--seed", "11",
            "--threads", "1"]
    want = run_cli(["generate", "-q", "-m", str(BUNDLED), "-p", prompt] + args)
    got = bundled.generate(prompt, gen_len=16, steps=8, temperature=0.7, top_p=0.9, seed=11,
                           threads=1)
    assert want == got + "\n"
    assert got.strip()


def test_steps_stream_matches_callback(llada):
    """generate_steps yields the events on_step sees, then the same tokens."""
    kw = dict(gen_len=12, steps=6, temperature=0.9, seed=5, softmask="constant")
    seen = []
    tokens = llada.generate_tokens([4, 5, 6], on_step=seen.append, **kw)
    with llada.generate_steps([4, 5, 6], **kw) as stream:
        events = list(stream)
    assert stream.tokens.tolist() == tokens.tolist()
    assert len(events) == len(seen) == 6
    for a, b in zip(events, seen):
        assert a.step == b.step and a.n_steps == 6 and a.n_prompt == 3
        assert a.canvas.tolist() == b.canvas.tolist()
        assert a.committed.tolist() == b.committed.tolist()
        assert a.lambda_.tolist() == b.lambda_.tolist()
    # every generated position is committed exactly once
    committed = np.concatenate([e.committed for e in events])
    assert sorted(committed.tolist()) == list(range(3, 15))
    assert events[-1].masked.size == 0
    assert events[-1].generated.tolist()[:len(tokens)] == tokens.tolist()


def test_stream_text(bundled):
    kw = dict(gen_len=8, steps=8, seed=2, threads=1)
    with bundled.generate_steps("Once upon a time", **kw) as st:
        n = sum(1 for _ in st)
    assert n == 8
    assert st.text == bundled.generate("Once upon a time", **kw)
    with pytest.raises(smdiff.StateError):
        bundled.generate_steps("x", gen_len=4, steps=4).text


def test_sampler_reuse_and_options(dream):
    with smdiff.Sampler(steps=4, gen_length=8, seed=3, temperature=0.5) as s:
        a = s.generate_tokens(dream, [4, 5]).tolist()
        assert s.generate_tokens(dream, [4, 5]).tolist() == a
        assert s.steps == 4 and s.gen_length == 8 and s.temperature == 0.5
        s.seed = 4
        s.stop_at_eos = False
        assert s.get("seed") == 4 and s.stop_at_eos is False
        assert set(smdiff.Sampler.option_names()) >= {"steps", "gen_length", "top_p", "eps"}
        info = smdiff.Sampler.option_info("temperature")
        assert info.type is float and info.min == 0 and info.default == 0
        assert s.options["gen_length"] == 8
        s.strategy = "entropy"
        assert s.strategy == "entropy"


def test_softmask_properties(dream):
    sm = smdiff.SoftMask()
    assert sm.mode == "entropy" and sm.k == 3 and sm.topk == 3
    assert sm.scale == pytest.approx(1e-6) and sm.omega_a == pytest.approx(6.66)
    sm.mode = "constant"
    sm.constant_lambda = 0.25
    sm.fade = True
    assert sm.mode == "constant" and sm.fade is True
    p = np.full(8, 1 / 8, np.float32)
    assert sm.lambda_(p, 0, 4) == 0.0  # no previous prediction at step 0
    assert sm.lambda_(p, 1, 4) > 0
    c = sm.copy()
    sm.close()
    assert c.constant_lambda == 0.25
    # entropy rule, by hand: scale * sigmoid(steepness * (-H - centre))
    e = smdiff.SoftMask(mode="entropy", omega_s=0.5, omega_a=2.0, omega_b=-1.0)
    h = np.log(8.0)
    want = 0.5 / (1 + np.exp(-2.0 * (-h + 1.0)))
    assert e.lambda_(p, 1, 4) == pytest.approx(want, rel=1e-5)
    stored = dream.softmask
    assert stored.mode == "entropy" and stored.scale == pytest.approx(1e-6)


def test_bundled_model_stores_learned_softmask(bundled):
    sm = bundled.softmask
    assert sm.scale > 0.1  # trained: far from the 1e-6 it starts at
    assert bundled.architecture == "llada" and bundled.context == 128


# ----------------------------------------------------------------- infilling
def c_infill_text(model, sampler, prefix, suffix):
    """The C API's text infilling (smdiff_generate_infill_text) with the
    sampler's options, called directly."""
    import ctypes
    lib = smdiff._lib.lib
    with sampler._handle.use() as sp, model._handle.use() as mp:
        n = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(4096)
        rc = lib.smdiff_generate_infill_text(sp, mp, prefix.encode(), suffix.encode(), buf, 4096,
                                             ctypes.byref(n))
        assert rc == 0, lib.smdiff_sampler_last_error(sp)
        return buf.raw[:n.value].decode("utf-8", "replace")


@pytest.mark.parametrize("kw", [dict(temperature=0.0), dict(temperature=0.8, top_p=0.9, seed=4),
                                dict(softmask="off", strategy="low_confidence", block_len=4)])
def test_infill_text_same_as_c_api_and_cli(bundled, kw):
    prefix, suffix = "It was a cold night, and", " and she never came back."
    common = dict(gen_len=8, steps=8, threads=1)
    got = bundled.generate(prefix, suffix=suffix, **common, **kw)
    names = dict(gen_len="gen_length", block_len="block_length")
    opts = {names.get(k, k): v for k, v in dict(common, **kw).items() if k not in ("softmask", "strategy")}
    with smdiff.Sampler(strategy=kw.get("strategy"), softmask=kw.get("softmask"), model=bundled,
                        **opts) as s:
        assert got == c_infill_text(bundled, s, prefix, suffix)
    # the CLI prints the whole text, prompt and suffix around the filled span
    args = ["--gen-len", "8", "--steps", "8", "--threads", "1", "--temp", str(kw.get("temperature", 0))]
    args += ["--top-p", str(kw["top_p"]), "--seed", str(kw["seed"])] if "seed" in kw else []
    args += ["--softmask", "off", "--strategy", "low_confidence", "--block-len", "4"] if "strategy" in kw else []
    want = run_cli(["generate", "-q", "-m", str(BUNDLED), "-p", prefix, "--suffix", suffix] + args)
    span = bundled.generate_tokens(prefix, suffix=suffix, **common, **kw)
    with bundled.tokenizer as t:
        whole = t.decode(t.encode(prefix, parse_special=True) + span.tolist()
                         + t.encode(suffix, parse_special=True))
    assert want == whole + "\n"
    assert whole.startswith(prefix) and whole.endswith(suffix)


def test_infill_default_span_is_what_the_context_leaves(bundled):
    """gen_len left unset: the span is what the context leaves beside the
    prefix and the suffix, as in the C API's text infilling."""
    prefix, suffix = "The door opened", " and the dog ran out."
    got = bundled.generate_tokens(prefix, suffix=suffix, steps=4, threads=1, stop_at_eos=False)
    with bundled.tokenizer as t:
        n_ctx = len(t.encode(prefix, parse_special=True)) + len(t.encode(suffix, parse_special=True))
        text = t.decode(got)
    assert len(got) == bundled.context - n_ctx
    with smdiff.Sampler(steps=4, threads=1, stop_at_eos=False) as s:
        assert text == c_infill_text(bundled, s, prefix, suffix)


@pytest.mark.parametrize("arch", ["dream", "llada"])
def test_fill_a_prompt_then_masks_is_generate(arch):
    """A canvas that is a prompt followed by masks decodes as generation."""
    with smdiff.Model(tiny_path(arch)) as m:
        kw = dict(steps=8, temperature=0.7, seed=9, softmask="entropy", stop_at_eos=False)
        want = m.generate_tokens([4, 5, 17], gen_len=16, **kw)
        canvas = np.array([4, 5, 17] + [m.mask_id] * 16, np.int32)
        events = []
        got = m.fill(canvas, on_step=events.append, **kw)
        assert got is canvas  # filled in place
        assert canvas[3:].tolist() == want.tolist()
        assert len(events) == 8 and events[0].n_prompt == 0


def test_fill_spans_keeps_context(llada):
    mask = llada.mask_id
    canvas = [4, mask, mask, mask, 9, 10, mask, mask, 11]
    out = llada.fill(canvas, steps=5, stop_at_eos=False)
    assert isinstance(out, np.ndarray) and out.dtype == np.int32
    assert [out[i] for i in (0, 4, 5, 8)] == [4, 9, 10, 11]
    assert mask not in out.tolist()
    assert canvas.count(mask) == 5  # a list is copied, not changed
    with pytest.raises(smdiff.InvalidArgumentError):
        llada.fill([4, 5, 6], steps=1)  # nothing to fill
    with pytest.raises(TypeError):
        llada.fill(canvas, suffix=[1])


def test_infill_tokens_and_steps(llada):
    kw = dict(gen_len=6, steps=6, seed=1, temperature=0.5, stop_at_eos=False)
    span = llada.generate_tokens([4, 5], suffix=[9, 10], **kw)
    assert len(span) == 6
    with llada.generate_steps([4, 5], suffix=[9, 10], **kw) as stream:
        events = list(stream)
    assert stream.tokens.tolist() == span.tolist()
    assert events[0].n_prompt == 2 and events[0].n_gen == 6 and len(events[0].generated) == 6
    assert events[-1].canvas[-2:].tolist() == [9, 10]
    with pytest.raises(smdiff.RangeError, match="prompt and the suffix fill the context of 64"):
        llada.generate_tokens([4] * 34, suffix=[9] * 30, steps=1)
    with pytest.raises(TypeError):
        llada.generate_tokens([4, 5], suffix=[9], chat=True)
