"""Decoder strategies written in Python, through the C plug-in interface:
re-written built-ins with the built-in's declaration give its tokens and
steps exactly; bad selections and exceptions become smdiff errors."""
from __future__ import annotations

import ctypes
import itertools

import numpy as np
import pytest

import smdiff
from smdiff._lib import StepViewC


def ranked(view, scores):
    """The n_transfer best by score, ties to the lower canvas position (as
    decoder_builtin.c's take_best)."""
    order = np.lexsort((view.position, -np.asarray(scores, np.float64)))
    return order[:view.n_transfer]


def low_confidence(view):
    return ranked(view, view.confidence)


def random_rank(view):
    return ranked(view, [view.uniform() for _ in range(view.n_masked)])


def topk_margin(view):
    return ranked(view, view.top1.astype(np.float64) - view.top2.astype(np.float64))


def entropy(view):
    return ranked(view, -view.entropy.astype(np.float64))


def maskgit_plus(view):  # at alg_temp 0
    return ranked(view, view.confidence)


def origin(view):
    # Dream: commit with probability 1 - s/t (float32), 1 at the last step
    p = np.float32(1) - np.float32(view.s) / np.float32(view.t) if view.step + 1 < view.n_steps else 1.0
    return [i for i in range(view.n_masked) if view.uniform() < float(p)]


def ancestral(view):
    # MDLM: unmask with probability (t - s)/t at every step, the last too
    p = (view.t - view.s) / view.t
    return [i for i in range(view.n_masked) if view.uniform() < p]


def threshold(view):
    if view.n_masked == 0:
        return []
    best = np.lexsort((view.position, -view.confidence.astype(np.float64)))[0]
    return [i for i in range(view.n_masked) if i == best or view.confidence[i] >= view.threshold]


def remdm_cap(view):
    """ReMDM-cap (decoder_remdm.c's order of draws: the masked positions,
    then the committed ones)."""
    def clamp(x):
        return 0.0 if x < 0 else 1.0 if x > 1 else x
    alpha_t, alpha_s, eta = 1 - view.t, 1 - view.s, view.remdm_eta
    sigma = clamp(min(eta, (1 - alpha_s) / alpha_t) if alpha_t > 0 else eta)
    p = clamp((alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)) if alpha_t < 1 else 1.0
    commit = [i for i in range(view.n_masked) if view.uniform() < p]
    remask = []
    for pos in view.committed_position:
        if view.uniform() < sigma and len(remask) < view.remask_capacity:
            remask.append(int(pos))
    return smdiff.Selection(commit, remask)


# (python select, built-in it re-writes, declaration copied from DECODING.md)
REWRITES = [
    (low_confidence, "low_confidence", dict(schedule="even", confidence="raw",
                                            needs=("position", "confidence"))),
    (random_rank, "random", dict(schedule="even", confidence="raw", needs=("position", "random"))),
    (topk_margin, "topk_margin", dict(schedule="timestep", confidence="sampled",
                                      needs=("position", "top2", "random"))),
    (entropy, "entropy", dict(schedule="timestep", confidence="sampled",
                              needs=("position", "entropy", "random"))),
    (maskgit_plus, "maskgit_plus", dict(schedule="timestep", confidence="sampled",
                                        needs=("position", "confidence", "random"))),
    (origin, "origin", dict(schedule="timestep", confidence="sampled", needs=("random",))),
    (threshold, "threshold", dict(schedule="until_done", confidence="raw",
                                  needs=("position", "confidence"))),
    (ancestral, "ddpm_cache", dict(schedule="timestep", confidence="sampled", needs=("random",),
                                   final="argmax")),
]


def test_python_remdm_cap_gives_the_builtin_tokens(llada):
    """Re-masking through the plug-in interface: ReMDM-cap written in Python
    with the built-in's declaration (remask=True) gives its tokens, steps
    and re-maskings; more steps than positions (inference-time scaling)."""
    with smdiff.Strategy("py_remdm_cap", remdm_cap, needs=("random",), remask=True) as mine:
        remasked = 0
        for seed, sm in ((1, "off"), (2, "entropy"), (3, "constant")):
            kw = dict(gen_len=8, steps=24, temperature=0.9, seed=seed, remdm_eta=0.4,
                      softmask=sm, stop_at_eos=False)
            want_ev, got_ev = [], []
            want = llada.generate_tokens([4, 5], strategy="remdm_cap", on_step=want_ev.append, **kw)
            got = llada.generate_tokens([4, 5], strategy=mine, on_step=got_ev.append, **kw)
            assert got.tolist() == want.tolist()
            assert [e.canvas.tolist() for e in got_ev] == [e.canvas.tolist() for e in want_ev]
            for a, b in zip(got_ev, got_ev[1:]):  # a decided position masked again
                remasked += int(np.sum((a.canvas != llada.mask_id) & (b.canvas == llada.mask_id)))
        assert len(got_ev) == 24 and remasked > 0


@pytest.mark.parametrize("fn,builtin,decl", REWRITES, ids=[r[1] for r in REWRITES])
def test_python_rewrite_gives_the_builtin_tokens(llada, dream, fn, builtin, decl):
    with smdiff.Strategy("py_" + builtin, fn, **decl) as mine:
        cases = itertools.product((llada, dream), (0.0, 0.8), ("off", "entropy"), (1, 2))
        n = 0
        for model, temp, sm, seed in cases:
            kw = dict(gen_len=16, steps=8, block_len=8, temperature=temp, seed=seed, top_p=0.95,
                      softmask=smdiff.SoftMask(mode=sm, omega_s=0.9, omega_a=1.0, omega_b=-5.0),
                      threshold=0.3)
            want_ev, got_ev = [], []
            want = model.generate_tokens([4, 5, 17], strategy=builtin, on_step=want_ev.append, **kw)
            got = model.generate_tokens([4, 5, 17], strategy=mine, on_step=got_ev.append, **kw)
            assert got.tolist() == want.tolist()
            assert [e.committed.tolist() for e in got_ev] == [e.committed.tolist() for e in want_ev]
            n += 1
        assert n == 16


def test_a_different_selection_gives_different_steps(llada):
    """The comparison above can fail: committing the *least* confident
    positions first changes the steps."""
    def least(view):
        return ranked(view, -view.confidence.astype(np.float64))
    with smdiff.Strategy("py_least", least, schedule="even", confidence="raw",
                         needs=("position", "confidence")) as s:
        mine, want = [], []
        kw = dict(gen_len=16, steps=8)
        llada.generate_tokens([4, 5], strategy=s, on_step=mine.append, **kw)
        llada.generate_tokens([4, 5], strategy="low_confidence", on_step=want.append, **kw)
        assert [e.committed.tolist() for e in mine] != [e.committed.tolist() for e in want]


def test_view_holds_declared_fields_only(llada):
    seen = []

    class Recorder(smdiff.Strategy):
        def select(self, view):
            seen.append(view)
            return [0] if view.n_masked else []

    with Recorder("py_recorder", needs=("confidence",)) as s:
        llada.generate_tokens([4, 5], strategy=s, gen_len=4, steps=4)
    v = seen[0]
    assert v.confidence is not None and v.confidence.dtype == np.float32
    assert v.position is None and v.token is None and v.top1 is None and v.entropy is None
    assert v.n_masked == 4 and v.step == 0 and v.n_steps == 4 and v.n_blocks == 1
    with pytest.raises(smdiff.StateError, match="random"):
        v.uniform()
    assert len(seen) == 4


def test_view_struct_size_matches(llada):
    """The library's smdiff_step_view is exactly the size of StepViewC."""
    sizes = []

    class SizeProbe(smdiff.Strategy):
        def _select_c(self, view_p, *rest):
            sizes.append(view_p.contents.struct_size)
            return super()._select_c(view_p, *rest)

    with SizeProbe("py_size", low_confidence, schedule="even", confidence="raw") as s:
        llada.generate_tokens([4, 5], strategy=s, gen_len=4, steps=4)
    assert len(sizes) == 4 and set(sizes) == {ctypes.sizeof(StepViewC)}


def test_remasking_through_selection(llada):
    """A strategy that remasks: the library masks the position again (seen
    in the step events) and decodes it later."""
    def fn(view):
        if view.step == 1:
            return smdiff.Selection(commit=[0], remask=[remasked[0]])
        if view.step == 0:
            remasked.append(int(view.position[0]))
        return [0]
    remasked = []
    events = []
    with smdiff.Strategy("py_remask", fn, schedule="even", confidence="raw") as s:
        out = llada.generate_tokens([4, 5], strategy=s, gen_len=4, steps=4, on_step=events.append,
                                    stop_at_eos=False)
    p = remasked[0]
    assert events[0].canvas[p] != llada.mask_id
    assert events[1].canvas[p] == llada.mask_id
    assert events[-1].canvas[p] != llada.mask_id and len(out) == 4


@pytest.mark.parametrize("result,cls,cause", [
    ([99], smdiff.InvalidArgumentError, None),            # outside the masked positions
    ([0, 0], smdiff.InvalidArgumentError, None),          # repeated
    (list(range(50)), smdiff.InvalidArgumentError, smdiff.InvalidArgumentError),  # too many
    ([0.5], smdiff.AbortedError, TypeError),              # not integers
    (None, smdiff.AbortedError, TypeError),
    (smdiff.Selection([0], [2]), smdiff.InvalidArgumentError, None),  # remask a prompt position
])
def test_bad_selections_are_errors(llada, result, cls, cause):
    with smdiff.Strategy("py_bad", lambda view: result) as s:
        with pytest.raises(cls) as info:
            llada.generate_tokens([4, 5, 6], strategy=s, gen_len=8, steps=8)
        assert type(info.value) is cls
        if cause is None:
            assert info.value.__cause__ is None
        else:
            assert isinstance(info.value.__cause__, cause)
        assert "py_bad" in info.value.message
    assert len(llada.generate_tokens([4, 5, 6], gen_len=8, steps=8)) >= 0


def test_exception_in_select(llada):
    def fn(view):
        return 1 / 0
    with smdiff.Strategy("py_raises", fn) as s:
        with pytest.raises(smdiff.AbortedError) as info:
            llada.generate_tokens([4, 5], strategy=s, gen_len=4, steps=4)
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        assert "py_raises" in info.value.message


def test_registration_rules(llada):
    with pytest.raises(smdiff.InvalidArgumentError):
        smdiff.Strategy("Bad Name!", low_confidence).register()
    with pytest.raises(smdiff.StateError, match="already registered"):
        smdiff.Strategy("maskgit_plus", low_confidence).register()
    with pytest.raises(smdiff.InvalidArgumentError):
        smdiff.Strategy("py_x", low_confidence, schedule="sometimes")
    with pytest.raises(smdiff.InvalidArgumentError):
        smdiff.Strategy("py_x", low_confidence, needs=("everything",))
    with pytest.raises(smdiff.InvalidArgumentError, match="final"):
        smdiff.Strategy("py_x", low_confidence, final="greedy")
    with pytest.raises(TypeError):
        smdiff.Strategy("py_x", select=42)
    s = smdiff.Strategy("py_listed", low_confidence, description="listed")
    with pytest.raises(smdiff.StateError, match="not registered"):
        llada.generate_tokens([4, 5], strategy=s, gen_len=4, steps=4)
    with s:
        assert s.registered and ("py_listed", "listed") in smdiff.strategies()
        # by name works too, like a built-in
        assert len(llada.generate_tokens([4, 5], strategy="py_listed", gen_len=4, steps=4)) >= 0
    assert not s.registered and "py_listed" not in dict(smdiff.strategies())
    with pytest.raises(smdiff.NotFoundError):
        llada.generate_tokens([4, 5], strategy="py_listed", gen_len=4, steps=4)
    s.unregister()  # idempotent


def test_unregister_while_running_is_refused(llada):
    """Unregistering a strategy while a generation runs it is refused (the
    library must not lose it mid-run)."""
    with smdiff.Strategy("py_busy", low_confidence, schedule="even", confidence="raw") as s:
        errs = []

        def on_step(ev):
            try:
                s.unregister()
            except smdiff.StateError as e:
                errs.append(e)

        llada.generate_tokens([4, 5], strategy=s, gen_len=4, steps=4, on_step=on_step)
        assert len(errs) == 4 and s.registered
