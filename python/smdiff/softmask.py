"""SoftMask: the soft-masking schedule (docs/DECODING.md, "Soft-masking")."""
from __future__ import annotations

from ctypes import byref, c_double
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from . import _core
from ._core import Family, Handle, Options, option_property, ptr
from ._lib import SM_MODES, lib
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from .model import Model

_MODE_NAMES = {v: k for k, v in SM_MODES.items()}

#: Short names used in the literature, accepted as keyword arguments.
ALIASES = {"k": "topk", "omega_s": "scale", "omega_a": "steepness", "omega_b": "centre"}


def _mode_to_c(mode: Union[str, int]) -> int:
    if isinstance(mode, str):
        if mode not in SM_MODES:
            raise InvalidArgumentError("soft-mask mode must be one of %s, not %r"
                                       % (", ".join(SM_MODES), mode))
        return SM_MODES[mode]
    return mode


class SoftMask(Options):
    """A soft-masking schedule.

    A still-masked position whose previous prediction is p gets the input
    ``(1 - lambda) * E[MASK] + lambda * sum_{i in topk(p)} pi_i E[v_i]``, with
    ``lambda = scale * sigmoid(steepness * (-H(p) - centre))`` in mode
    ``"entropy"``, ``constant_lambda`` in mode ``"constant"`` and 0 in mode
    ``"off"``, gated to ``[window_start, window_end)`` of the steps.

    Options are properties and keyword arguments (the library checks each;
    a bad value raises RangeError and changes nothing); ``k``, ``omega_s``,
    ``omega_a`` and ``omega_b`` are accepted for topk, scale, steepness and
    centre. ``SoftMask()`` starts from the reference defaults,
    :meth:`from_model` from a model's stored parameters.

    Example::

        sm = smdiff.SoftMask(mode="entropy", k=3, omega_s=0.9, omega_a=1.0, omega_b=-5.0)
        text = model.generate("Once", softmask=sm)
    """

    _family = Family("softmask", "soft-mask", lambda p: lib.smdiff_softmask_last_error(p))

    def __init__(self, mode: Union[str, int, None] = None, **options: Any) -> None:
        self._handle = Handle(self, _core.create(lib.smdiff_softmask_create), lib.smdiff_softmask_free,
                              "SoftMask")
        self._configure(mode, options)

    def _configure(self, mode: Union[str, int, None], options: dict) -> None:
        try:
            if mode is not None:
                options = dict(options, mode=mode)
            self.set(**options)
        except BaseException:
            self.close()
            raise

    @classmethod
    def _wrap(cls, raw: int) -> "SoftMask":
        sm = cls.__new__(cls)
        sm._handle = Handle(sm, raw, lib.smdiff_softmask_free, "SoftMask")
        return sm

    @classmethod
    def from_model(cls, model: "Model", mode: Union[str, int, None] = None,
                   **options: Any) -> "SoftMask":
        """The schedule a model stores (``smdiff.softmask.*`` metadata; the
        reference defaults for what it does not store), then ``options``."""
        with model._handle.use() as mp:
            sm = cls._wrap(_core.create(lib.smdiff_softmask_create_from_model, mp))
        sm._configure(mode, options)
        return sm

    def copy(self) -> "SoftMask":
        """An independent copy."""
        with self._handle.use() as p:
            return SoftMask._wrap(_core.create(lib.smdiff_softmask_clone, p))

    def set(self, **options: Any) -> None:
        """Set options by name (aliases k, omega_s, omega_a, omega_b; mode as
        ``"off"``, ``"entropy"``, ``"constant"`` or its number)."""
        resolved = {}
        for name, value in options.items():
            name = ALIASES.get(name, name)
            if name == "mode":
                value = _mode_to_c(value)
            elif name == "fade":
                value = int(value) if isinstance(value, bool) else value
            resolved[name] = value
        super().set(**resolved)

    def close(self) -> None:
        """Free the schedule. Idempotent; samplers hold their own copy."""
        self._handle.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle.closed

    def __enter__(self) -> "SoftMask":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<smdiff.SoftMask (closed)>"
        o = self.options
        o["mode"] = _MODE_NAMES.get(int(o["mode"]), o["mode"])
        return "<smdiff.SoftMask %s>" % " ".join("%s=%s" % kv for kv in o.items())

    def lambda_(self, probs: np.ndarray, step: int, n_steps: int) -> float:
        """lambda for one predicted distribution ``probs`` (a probability row,
        softmax of raw logits) at 0-based ``step`` of ``n_steps``, as the
        sampler would use it; 0 at step 0. A float32 row is not copied."""
        a = _core.float32_array(probs, "probs", 1)
        for v, what in ((step, "step"), (n_steps, "n_steps")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError("%s must be an int, not %s" % (what, type(v).__name__))
            if v < 0:
                raise InvalidArgumentError("%s must be >= 0, not %d" % (what, v))
        out = c_double()
        with self._handle.use() as p:
            _core.check(lib.smdiff_softmask_lambda(p, ptr(a), a.size, int(step), int(n_steps),
                                                   byref(out)),
                        lambda: lib.smdiff_softmask_last_error(p))
        return out.value

    mode = option_property("mode", "``\"off\"``, ``\"entropy\"`` (the paper's rule) or "
                           "``\"constant\"``.", str, lambda v: _MODE_NAMES.get(int(v), int(v)))
    topk = option_property("topk", "k, the top tokens of p mixed per position (1..64).", int)
    k = topk
    scale = option_property("scale", "omega_s in (0, 1): the largest lambda.", float)
    omega_s = scale
    steepness = option_property("steepness", "omega_a > 0: how sharply lambda follows "
                                "the confidence -H(p).", float)
    omega_a = steepness
    centre = option_property("centre", "omega_b < 0: the -H(p) at which lambda is half its "
                             "scale.", float)
    omega_b = centre
    constant_lambda = option_property("constant_lambda", "lambda in mode constant, [0, 1].", float)
    window_start = option_property("window_start", "First active fraction of the steps, [0, 1].", float)
    window_end = option_property("window_end", "Active until this fraction of the steps, [0, 1].", float)
    fade = option_property("fade", "Fade lambda linearly to 0 over the window.", bool, bool, int)
