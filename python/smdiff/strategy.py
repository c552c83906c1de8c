"""Decoder strategies written in Python, registered through the C plug-in
interface (smdiff_decoder.h) and used by name like the built-in ones."""
from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional,
                    Sequence, Tuple, Union)

import numpy as np

from ._core import check
from ._lib import (CONFIDENCES, DECODER_ABI_VERSION, FINALS, NEED_ALL, NEEDS, RELEASE_FN, SCHEDULES,
                   SELECT_FN, UNIFORM_FN, DecoderC, StepViewC, lib)
from .errors import AbortedError, InvalidArgumentError, SmdiffError, StateError

_tls = threading.local()


class CallbackContext:
    """What Python callbacks of one generation report to it: the first
    exception raised in a callback (re-raised by the generating call) and
    whether Ctrl-C arrived. One per run, current on the generating thread."""

    def __init__(self) -> None:
        self.abort = threading.Event()
        self.exception: Optional[BaseException] = None
        self.interrupted = False

    def fail(self, exc: BaseException) -> int:
        """Record ``exc``; the status the C callback returns for it."""
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted = True
        if self.exception is None:
            self.exception = exc
        self.abort.set()
        if isinstance(exc, SmdiffError) and exc.code < 0:
            return exc.code
        return AbortedError.c_code

    @contextmanager
    def current(self) -> Iterator["CallbackContext"]:
        """Make this the generating thread's context for the block."""
        prev = getattr(_tls, "ctx", None)
        _tls.ctx = self
        try:
            yield self
        finally:
            _tls.ctx = prev


def current_context() -> Optional[CallbackContext]:
    """The calling thread's running generation, if any."""
    return getattr(_tls, "ctx", None)


class Selection(NamedTuple):
    """What a strategy's select returns when it also remasks: ``commit``
    holds indices into the view's arrays, ``remask`` canvas positions
    committed at an earlier step of the block to mask again (a strategy
    declared with ``remask=True`` finds them in ``view.committed_position``)."""
    commit: Sequence[int]
    remask: Sequence[int] = ()


@dataclass
class StepView:
    """One denoising step as a strategy sees it (smdiff_step_view).

    Arrays are indexed by the i-th still-masked position of the current
    block, in canvas order; a field the strategy did not declare in
    ``needs`` is None. They are copies, so they may be kept.
    """
    step: int                     #: 0-based step within the block
    n_steps: int                  #: steps budgeted for the block
    block: int                    #: 0-based block index
    n_blocks: int
    n_masked: int                 #: masked positions in the block
    n_masked_total: int           #: masked positions in the whole generation
    n_transfer: int               #: commits the declared schedule asks for
    t: float                      #: Dream timestep of this step
    s: float                      #: the next timestep
    alg_temp: float               #: position-sampling temperature option
    threshold: float              #: confidence threshold option
    position: Optional[np.ndarray]    #: int32 canvas index of each masked position
    token: Optional[np.ndarray]       #: int32 sampled candidate token
    confidence: Optional[np.ndarray]  #: float32 the declared confidence
    top1: Optional[np.ndarray]        #: float32 largest probability of q
    top2: Optional[np.ndarray]        #: float32 second largest of q
    entropy: Optional[np.ndarray]     #: float32 H(q) in nats
    #: Re-masking (filled for a strategy declared with ``remask=True``): the
    #: block's positions committed at earlier steps, in canvas order, the
    #: token each holds and its declared confidence when committed.
    committed_position: Optional[np.ndarray] = None
    committed_token: Optional[np.ndarray] = None
    committed_confidence: Optional[np.ndarray] = None
    remask_capacity: int = 0      #: the most positions select may re-mask
    remdm_eta: float = 0.0        #: ReMDM's eta (sampler option remdm_eta)
    remdm_t_on: float = 0.0       #: remdm_loop's loop start
    remdm_t_off: float = 0.0      #: remdm_loop's loop end
    remdm_alpha_on: float = 0.0   #: remdm_loop's alpha
    factor: float = 1.0           #: the factor rule's f (sampler option factor; experimental)
    _uniform: Any = None
    _rng_state: Any = None
    _live: bool = True

    def uniform(self) -> float:
        """A uniform draw in [0, 1) from the sampler's stream, so runs are
        reproducible. Needs ``"random"`` in the strategy's ``needs``; valid
        only during the select call."""
        if self._uniform is None:
            raise StateError("uniform() needs 'random' in the strategy's needs")
        if not self._live:
            raise StateError("uniform() is valid only during the select call")
        return float(self._uniform(self._rng_state))


def _array(p: Any, n: int, ctype: Any, dtype: Any) -> Optional[np.ndarray]:
    if not p:
        return None
    if n == 0:
        return np.zeros(0, dtype)
    return np.ctypeslib.as_array(ctypes.cast(p, ctypes.POINTER(ctype)), shape=(n,)).copy()


def _view(v: StepViewC) -> StepView:
    n, k = v.n_masked, v.n_committed
    return StepView(
        step=v.step, n_steps=v.n_steps, block=v.block, n_blocks=v.n_blocks, n_masked=n,
        n_masked_total=v.n_masked_total, n_transfer=v.n_transfer, t=v.t, s=v.s,
        alg_temp=v.alg_temp, threshold=v.threshold,
        position=_array(v.position, n, ctypes.c_int32, np.int32),
        token=_array(v.token, n, ctypes.c_int32, np.int32),
        confidence=_array(v.confidence, n, ctypes.c_float, np.float32),
        top1=_array(v.top1, n, ctypes.c_float, np.float32),
        top2=_array(v.top2, n, ctypes.c_float, np.float32),
        entropy=_array(v.entropy, n, ctypes.c_float, np.float32),
        committed_position=_array(v.committed_position, k, ctypes.c_int32, np.int32),
        committed_token=_array(v.committed_token, k, ctypes.c_int32, np.int32),
        committed_confidence=_array(v.committed_confidence, k, ctypes.c_float, np.float32),
        remask_capacity=v.remask_capacity, remdm_eta=v.remdm_eta, remdm_t_on=v.remdm_t_on,
        remdm_t_off=v.remdm_t_off, remdm_alpha_on=v.remdm_alpha_on, factor=v.factor,
        _uniform=_uniform_fn(v), _rng_state=v.rng_state)


def _uniform_fn(v: StepViewC) -> Any:
    """The view's uniform() as a function object of its own: a field read
    from the struct would keep pointing into the library's view memory."""
    addr = ctypes.cast(v.uniform, ctypes.c_void_p).value
    return UNIFORM_FN(addr) if addr else None


def _indices(values: Any, n_max: int, what: str) -> np.ndarray:
    a = np.asarray(values)
    if a.size == 0:
        return np.zeros(0, np.int32)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise TypeError("%s must be a 1-D sequence of integers, got %s of shape %s"
                        % (what, a.dtype, a.shape))
    if a.size > n_max:
        raise InvalidArgumentError("%s has %d entries; at most %d (the masked positions)"
                                   % (what, a.size, n_max))
    if int(a.min()) < -2**31 or int(a.max()) >= 2**31:
        raise InvalidArgumentError("%s holds a value beyond 32 bits" % what)
    return np.ascontiguousarray(a, dtype=np.int32)


# Registered Python strategies by name: keeps them (and their C callbacks)
# alive while the library may call them.
_registry: Dict[str, "Strategy"] = {}
_registry_lock = threading.Lock()


class Strategy:
    """A decoder strategy written in Python.

    Subclass it and override :meth:`select`, or pass ``select=``. At each
    step the sampler hands it a :class:`StepView` and it returns the indices
    (into the view's arrays) of the positions to commit -- or a
    :class:`Selection` to also remask. The last step of a block commits
    whatever is left (or, with ``final="argmax"``, one more forward pass
    fills it with its most probable tokens). What it declares decides what the view holds and how
    the steps are scheduled, exactly as for a C strategy; a strategy that
    declares what a built-in declares and selects the same positions gives
    that built-in's tokens.

    Register it (:meth:`register` or a ``with`` block) and pass it, or its
    name, as ``strategy=`` to generation. An exception in :meth:`select`
    stops the run with :class:`AbortedError` (its ``__cause__`` the
    exception), or with the strategy's own :class:`SmdiffError`.

    Args:
        name: unique name, 1-63 of ``[a-z0-9_]``.
        select: the selection function, if not overriding :meth:`select`.
        description: one line.
        schedule: ``"timestep"`` (Dream, default), ``"even"`` (LLaDA) or
            ``"until_done"`` (Fast-dLLM).
        confidence: ``"sampled"`` (q[token], default) or ``"raw"``
            (softmax(logits)[token] at temperature 1).
        needs: view fields read, from ``position``, ``token``, ``confidence``,
            ``top2``, ``entropy``, ``random``; ``"all"`` (default) for all.
        remask: True for a strategy that re-masks committed positions
            (ReMDM): the view lists them, a block runs its whole step budget
            and steps may exceed the positions to fill.
        final: ``"commit_all"`` (default: the block's last step commits
            what is left) or ``"argmax"`` (the last step commits only what
            select chose; one more forward pass follows and the positions
            still masked take its argmax -- MDLM's noise removal).

    Example (LLaDA's low_confidence)::

        def low_confidence(view):
            order = np.lexsort((view.position, -view.confidence.astype(np.float64)))
            return order[:view.n_transfer]

        with smdiff.Strategy("py_low_confidence", low_confidence, schedule="even",
                             confidence="raw", needs=("position", "confidence")) as s:
            text = model.generate("Once", strategy=s)
    """

    def __init__(self, name: str, select: Optional[Callable[[StepView], Any]] = None, *,
                 description: str = "", schedule: str = "timestep", confidence: str = "sampled",
                 needs: Union[str, Iterable[str]] = "all", remask: bool = False,
                 final: str = "commit_all") -> None:
        if not isinstance(name, str):
            raise TypeError("name must be str, not %s" % type(name).__name__)
        if select is not None and not callable(select):
            raise TypeError("select must be callable")
        if schedule not in SCHEDULES:
            raise InvalidArgumentError("schedule must be one of %s, not %r" % (", ".join(SCHEDULES), schedule))
        if final not in FINALS:
            raise InvalidArgumentError("final must be one of %s, not %r" % (", ".join(FINALS), final))
        if confidence not in CONFIDENCES:
            raise InvalidArgumentError("confidence must be one of %s, not %r"
                                       % (", ".join(CONFIDENCES), confidence))
        needs_set = ["all"] if needs == "all" else ([needs] if isinstance(needs, str) else list(needs))
        bits = 0
        for n in needs_set:
            if n == "all":
                bits |= NEED_ALL
            elif n in NEEDS:
                bits |= NEEDS[n]
            else:
                raise InvalidArgumentError("unknown need %r (one of %s, or 'all')" % (n, ", ".join(NEEDS)))
        self.name = name
        self.description = description
        self.schedule = schedule
        self.confidence = confidence
        self.needs = tuple(sorted(n for n, b in NEEDS.items() if bits & b))
        self.remask = bool(remask)
        self.final = final
        self._select_fn = select
        self._bits = bits
        self._cfn: Any = None
        self._runs = 0
        self._lock = threading.Lock()

    def select(self, view: StepView) -> Union[Sequence[int], np.ndarray, Selection]:
        """Choose the positions to commit at this step (override, or pass
        ``select=``). Returns indices into the view's arrays, or a
        :class:`Selection`."""
        if self._select_fn is None:
            raise NotImplementedError("override Strategy.select or pass select=")
        return self._select_fn(view)

    # ---------------------------------------------------------- the C side
    def _select_c(self, view_p: Any, commit_p: Any, n_commit_p: Any, remask_p: Any,
                  n_remask_p: Any, user_data: Any) -> int:
        ctx = current_context()
        view = None
        try:
            v = view_p.contents
            if v.struct_size < ctypes.sizeof(StepViewC):
                raise StateError("the library's step view is smaller than this package expects")
            view = _view(v)
            res = self.select(view)
            commit, remask = (res.commit, res.remask) if isinstance(res, Selection) else (res, ())
            c = _indices(commit, v.n_masked, "commit")
            r = _indices(remask, v.remask_capacity, "remask")
            if c.size:
                ctypes.memmove(commit_p, c.ctypes.data, 4 * c.size)
            if r.size:
                ctypes.memmove(remask_p, r.ctypes.data, 4 * r.size)
            n_commit_p[0] = c.size
            n_remask_p[0] = r.size
            return 0
        except BaseException as e:
            if ctx is None:  # not run from this package: nobody to hand it to
                return AbortedError.c_code
            return ctx.fail(e)
        finally:
            if view is not None:
                view._live = False

    def _declaration(self) -> DecoderC:
        d = DecoderC()
        d.struct_size = ctypes.sizeof(DecoderC)
        d.abi_version = DECODER_ABI_VERSION
        d.name = self.name.encode()
        d.description = self.description.encode() if self.description else None
        d.select = self._cfn
        d.release = RELEASE_FN()
        d.schedule = SCHEDULES[self.schedule]
        d.confidence = CONFIDENCES[self.confidence]
        d.needs = self._bits
        d.scratch_per_position = 0
        d.remask = int(self.remask)
        d.final = FINALS[self.final]
        return d

    @property
    def registered(self) -> bool:
        """True while registered with the library."""
        with _registry_lock:
            return _registry.get(self.name) is self

    def register(self) -> "Strategy":
        """Register with the library (InvalidArgumentError for a bad name,
        StateError if the name is taken). Returns self."""
        with _registry_lock:
            if _registry.get(self.name) is self:
                return self
            self._cfn = SELECT_FN(self._select_c)
            rc = lib.smdiff_decoder_register(ctypes.byref(self._declaration()), None)
            if rc:
                self._cfn = None
                check(rc)
            _registry[self.name] = self
        return self

    def unregister(self) -> None:
        """Remove it from the library. StateError while a generation is using
        it; nothing happens if it is not registered."""
        with _registry_lock:
            if _registry.get(self.name) is not self:
                return
            with self._lock:
                if self._runs:
                    raise StateError("strategy '%s' is in use by %d running generation(s)"
                                     % (self.name, self._runs))
                rc = lib.smdiff_decoder_unregister(self.name.encode())
                if rc:
                    check(rc)
                del _registry[self.name]
                self._cfn = None

    close = unregister

    def __enter__(self) -> "Strategy":
        return self.register()

    def __exit__(self, *exc: Any) -> None:
        self.unregister()

    def __repr__(self) -> str:
        return "<smdiff.Strategy %r schedule=%s confidence=%s needs=%s%s%s%s>" % (
            self.name, self.schedule, self.confidence, ",".join(self.needs),
            " remask" if self.remask else "",
            " final=argmax" if self.final == "argmax" else "",
            "" if self.registered else " (not registered)")


@contextmanager
def in_use(name: str) -> Iterator[None]:
    """Mark the Python strategy ``name`` (if it is one) as used by a run, so
    it cannot be unregistered under it."""
    with _registry_lock:
        s = _registry.get(name)
        if s is not None:
            with s._lock:
                s._runs += 1
    try:
        yield
    finally:
        if s is not None:
            with s._lock:
                s._runs -= 1


def strategies() -> List[Tuple[str, str]]:
    """Every registered strategy as (name, description): the built-ins first,
    then those registered in C or Python, in registration order."""
    n = ctypes.c_size_t()
    check(lib.smdiff_decoder_count(ctypes.byref(n)))
    out = []
    for i in range(n.value):
        name, desc = ctypes.c_char_p(), ctypes.c_char_p()
        check(lib.smdiff_decoder_name(i, ctypes.byref(name), ctypes.byref(desc)))
        out.append((name.value.decode(), (desc.value or b"").decode()))
    return out


