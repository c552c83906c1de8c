"""Sampler (the denoising loop's options and callbacks), step events and
the streaming iterator."""
from __future__ import annotations

import queue
import signal
import threading
import weakref
from contextlib import contextmanager
from ctypes import byref, c_char_p, c_size_t
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union)

import numpy as np

from . import _core
from ._core import Family, Handle, Options, check, int32_array, option_property, ptr
from ._lib import ABORT_FN, STEP_FN, lib
from ._lib import has as _lib_has
from .errors import StateError, UnsupportedError, error_class
from .softmask import SoftMask
from .strategy import CallbackContext, Strategy, in_use

if TYPE_CHECKING:  # pragma: no cover
    from .model import Model


@dataclass(frozen=True)
class StepEvent:
    """One finished denoising step (the step callback's arguments, copied).

    Attributes:
        step: 0-based global step index (across blocks).
        n_steps: the steps planned for the run.
        n_prompt: prompt length (the prefix when infilling; 0 for
            :meth:`Sampler.fill`).
        n_gen: length of the generated span, ``canvas[n_prompt:n_prompt +
            n_gen]`` (the masked span before a suffix when infilling).
        mask_id: the model's mask token id.
        canvas: int32 ids of the whole canvas after the step (mask_id where
            still masked).
        committed: int32 canvas positions committed at this step.
        lambda_: float32 per canvas position, the soft-mask weight each
            still-masked position will use at the next step (0 elsewhere).
    """
    step: int
    n_steps: int
    n_prompt: int
    n_gen: int
    mask_id: int
    canvas: np.ndarray
    committed: np.ndarray
    lambda_: np.ndarray

    @property
    def masked(self) -> np.ndarray:
        """Canvas positions still masked after this step."""
        return np.flatnonzero(self.canvas == self.mask_id).astype(np.int32)

    @property
    def generated(self) -> np.ndarray:
        """The generated span of the canvas."""
        return self.canvas[self.n_prompt:self.n_prompt + self.n_gen]


def _event(step: int, n_steps: int, canvas: Any, committed: Any, lam: Any, n: int,
           n_prompt: int, n_gen: int, mask_id: int) -> StepEvent:
    c = np.ctypeslib.as_array(canvas, shape=(n,)).copy()
    k = np.flatnonzero(np.ctypeslib.as_array(committed, shape=(n,))).astype(np.int32)
    lam_a = np.ctypeslib.as_array(lam, shape=(n,)).copy()
    return StepEvent(step, n_steps, n_prompt, n_gen, mask_id, c, k, lam_a)


@contextmanager
def _ctrl_c_aborts(ctx: CallbackContext) -> Iterator[None]:
    """While a generation runs on the main thread, Ctrl-C only raises a flag
    that the abort callback (polled between steps and layers) reports; the
    KeyboardInterrupt is raised once the library has returned. Left alone
    when another SIGINT handler is installed or off the main thread (signal
    handlers run on the main thread only)."""
    swapped = False
    old: Any = None
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                def on_sigint(signum: int, frame: Any) -> None:
                    ctx.interrupted = True
                    ctx.abort.set()
                old = signal.signal(signal.SIGINT, on_sigint)
                swapped = True
        except (ValueError, OSError):  # not the main interpreter
            swapped = False
    try:
        yield
    finally:
        if swapped:
            signal.signal(signal.SIGINT, old)


class Sampler(Options):
    """Runs the denoising loop, one generation at a time, for any model.

    Options are keyword arguments and properties, named as in the library
    (``steps``, ``gen_length``, ``block_length``, ``temperature``, ``top_k``,
    ``top_p``, ``seed``, ``alg_temp``, ``threshold``, ``eps``, ``threads``,
    ``stop_at_eos``, ``sm_across_blocks``, ``remdm_eta``, ``remdm_t_on``,
    ``remdm_t_off``, ``remdm_alpha_on``, and the experimental ``cache``,
    ``cache_refresh``, ``factor``; :meth:`option_names` lists them, :meth:`option_info`
    gives bounds and defaults). A sampler belongs to one thread at a time
    (a second concurrent call raises StateError); give each thread its own.

    Args:
        strategy: a strategy name or a registered :class:`Strategy`
            (default ``"maskgit_plus"``).
        softmask: None (the model's stored schedule), a :class:`SoftMask`, or
            ``"off"``/False, ``"entropy"``, ``"constant"``, True -- the stored
            parameters of ``model`` (the reference defaults without one) in
            that mode.
        model: the model whose stored soft-mask parameters a mode name uses.
        **options: sampler options by name.
    """

    _family = Family("sampler", "sampler", lambda p: lib.smdiff_sampler_last_error(p))

    def __init__(self, *, strategy: Union[str, Strategy, None] = None,
                 softmask: Union[SoftMask, str, bool, None] = None,
                 model: Optional["Model"] = None, **options: Any) -> None:
        self._handle = Handle(self, _core.create(lib.smdiff_sampler_create), lib.smdiff_sampler_free,
                              "Sampler")
        self._busy = threading.Lock()
        self._ctx: Optional[CallbackContext] = None
        self._softmask: Optional[SoftMask] = None
        try:
            self.set(**options)
            if strategy is not None:
                self.strategy = strategy  # type: ignore[assignment]
            if softmask is not None:
                self.set_softmask(softmask, model=model)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Free the sampler (after a run in progress in another thread ends).
        Idempotent."""
        self._handle.close()
        if self._softmask is not None:
            self._softmask.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle.closed

    def __enter__(self) -> "Sampler":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<smdiff.Sampler (closed)>"
        return "<smdiff.Sampler strategy=%s %s>" % (
            self.strategy, " ".join("%s=%s" % kv for kv in self.options.items()))

    def _message(self, p: int) -> bytes:
        return lib.smdiff_sampler_last_error(p)

    # --------------------------------------------------- strategy, schedule
    @property
    def strategy(self) -> str:
        """The decoder strategy's name; set a name or a registered
        :class:`Strategy`. NotFoundError for an unknown one."""
        out = c_char_p()
        with self._handle.use() as p:
            check(lib.smdiff_sampler_get_strategy(p, byref(out)), lambda: self._message(p))
        return out.value.decode()

    @strategy.setter
    def strategy(self, value: Union[str, Strategy]) -> None:
        if isinstance(value, Strategy):
            if not value.registered:
                raise StateError("strategy '%s' is not registered: call .register() or use it in "
                                 "a with block" % value.name)
            value = value.name
        name = _core.text(value, "strategy")
        with self._handle.use() as p:
            check(lib.smdiff_sampler_set_strategy(p, name), lambda: self._message(p))

    @property
    def softmask(self) -> Optional[SoftMask]:
        """A copy of the schedule set with :meth:`set_softmask`, or None while
        runs use the model's stored one."""
        return None if self._softmask is None else self._softmask.copy()

    @softmask.setter
    def softmask(self, value: Union[SoftMask, str, bool]) -> None:
        self.set_softmask(value)

    def set_softmask(self, value: Union[SoftMask, str, bool], *, model: Optional["Model"] = None) -> None:
        """Use this schedule from now on (copied). A mode name or bool takes
        the stored parameters of ``model``, or the reference defaults."""
        if isinstance(value, SoftMask):
            sm = value.copy()
        elif isinstance(value, (str, bool)):
            mode = ("entropy" if value else "off") if isinstance(value, bool) else value
            if value is True:
                mode = None  # the stored mode itself
            sm = SoftMask.from_model(model, mode=mode) if model is not None else SoftMask(mode=mode)
        else:
            raise TypeError("softmask must be a SoftMask, a mode name or a bool, not %s"
                            % type(value).__name__)
        try:
            with self._handle.use() as p, sm._handle.use() as q:
                check(lib.smdiff_sampler_set_softmask(p, q), lambda: self._message(p))
        except BaseException:
            sm.close()
            raise
        if self._softmask is not None:
            self._softmask.close()
        self._softmask = sm

    # ------------------------------------------------------------- running
    def abort(self) -> None:
        """Stop the generation running on this sampler (from any thread); it
        raises AbortedError within one step. Does nothing when idle."""
        ctx = self._ctx
        if ctx is not None:
            ctx.abort.set()

    def generate_tokens(self, model: "Model", prompt: Union[Sequence[int], np.ndarray], *,
                        on_step: Optional[Callable[[StepEvent], Any]] = None,
                        out: Optional[np.ndarray] = None) -> np.ndarray:
        """Generate after the token ids ``prompt`` and return the generated
        ids up to the first EOS (int32; a view of ``out`` when given).

        Args:
            model: the model (shared models are fine; the GIL is released
                while the library runs).
            prompt: token ids; an int32 array is passed without copying.
            on_step: called with a :class:`StepEvent` after every step, on
                this thread; return True to stop (AbortedError).
            out: optional int32 array receiving all gen_length ids (padded
                with EOS after it); BufferTooSmallError if shorter.

        Ctrl-C stops the run within one step (KeyboardInterrupt); the sampler
        and model stay usable.
        """
        ids = int32_array(prompt, "prompt")
        buf = _core.out_array(out, (int(self.get("gen_length")),), np.int32, "out")
        n_out = c_size_t()
        self._running(model, lambda sp, mp: lib.smdiff_generate_tokens(
            sp, mp, ptr(ids), ids.size, ptr(buf), buf.size, byref(n_out)), on_step, ids.size, None)
        return buf[:n_out.value]

    def fill(self, model: "Model", canvas: Union[Sequence[int], np.ndarray], *,
             on_step: Optional[Callable[[StepEvent], Any]] = None, n_prompt: int = 0,
             n_gen: Optional[int] = None) -> np.ndarray:
        """Fill every position of ``canvas`` that holds the model's mask id
        (infilling: context anywhere, one span or several) and return the
        canvas. A writable int32 C-contiguous array is filled in place;
        anything else is copied first. The options apply with the masked
        positions in the role of the generation (``block_length`` divides
        their number; ``gen_length`` is not used). Events report
        ``n_prompt`` and ``n_gen`` as given (default: the whole canvas).
        Experimental in the C library (``smdiff_generate_canvas``).
        """
        if not _lib_has("smdiff_generate_canvas"):
            raise UnsupportedError("this libsmdiff has no infilling API (smdiff_generate_canvas)")
        c = int32_array(canvas, "canvas")
        if not c.flags.writeable:
            c = c.copy()

        def call(sp: int, mp: int) -> int:
            return lib.smdiff_generate_canvas(sp, mp, ptr(c), c.size)

        self._running(model, call, on_step, n_prompt, c.size - n_prompt if n_gen is None else n_gen)
        return c

    def _running(self, model: "Model", call: Callable[[int, int], int],
                 on_step: Optional[Callable[[StepEvent], Any]], n_prompt: int,
                 n_gen: Optional[int]) -> None:
        """Run ``call(sampler_ptr, model_ptr)`` -- one generation -- with this
        sampler held, the callbacks installed and errors raised."""
        if on_step is not None and not callable(on_step):
            raise TypeError("on_step must be callable")
        if not self._busy.acquire(blocking=False):
            raise StateError("this Sampler is already generating in another thread; use one "
                             "sampler per thread")
        try:
            with self._handle.use() as sp, model._handle.use() as mp, in_use(self.strategy):
                self._run(sp, mp, call, on_step, model, n_prompt, n_gen)
        finally:
            self._busy.release()

    def _run(self, sp: int, mp: int, call: Callable[[int, int], int],
             on_step: Optional[Callable[[StepEvent], Any]], model: "Model", n_prompt: int,
             n_gen: Optional[int]) -> None:
        ctx = CallbackContext()
        mask_id = model.mask_id if on_step is not None else -1

        def step_c(step: int, n_steps: int, canvas: Any, committed: Any, lam: Any, n: int,
                   ud: Any) -> int:
            try:
                ev = _event(step, n_steps, canvas, committed, lam, n, n_prompt,
                            n - n_prompt if n_gen is None else n_gen, mask_id)
                return 1 if on_step(ev) else 0
            except BaseException as e:
                ctx.fail(e)
                return 1

        def abort_c(ud: Any) -> int:
            try:
                return 1 if ctx.abort.is_set() else 0
            except BaseException as e:  # a signal handler of the user's raised here
                ctx.fail(e)
                return 1

        step_fn = STEP_FN(step_c) if on_step is not None else STEP_FN()
        abort_fn = ABORT_FN(abort_c)
        lib.smdiff_sampler_set_step_callback(sp, step_fn, None)
        lib.smdiff_sampler_set_abort_callback(sp, abort_fn, None)
        self._ctx = ctx
        try:
            with ctx.current(), _ctrl_c_aborts(ctx):
                rc = call(sp, mp)
        finally:
            self._ctx = None
            lib.smdiff_sampler_set_step_callback(sp, STEP_FN(), None)
            lib.smdiff_sampler_set_abort_callback(sp, ABORT_FN(), None)
        if ctx.interrupted:
            raise KeyboardInterrupt
        if rc:
            err = error_class(rc)(self._message(sp).decode("utf-8", "replace"), rc)
            if ctx.exception is not None:
                raise err from ctx.exception
            raise err

    # -------------------------------------------------------------- options
    steps = option_property("steps", "Denoising steps (default 64, at most gen_length).", int)
    gen_length = option_property("gen_length", "Tokens to generate (default 128, clamped to "
                                 "the context left after the prompt when not set).", int)
    block_length = option_property("block_length", "Semi-autoregressive block length "
                                   "(0 = one block).", int)
    temperature = option_property("temperature", "Sampling temperature (0 = greedy).", float)
    top_k = option_property("top_k", "Keep the k most probable tokens (0 = off).", int)
    top_p = option_property("top_p", "Nucleus sampling mass in (0, 1] (1 = off).", float)
    seed = option_property("seed", "Seed of the random streams.", int)
    alg_temp = option_property("alg_temp", "Dream's position-sampling temperature.", float)
    threshold = option_property("threshold", "Confidence threshold of the threshold strategy.", float)
    eps = option_property("eps", "Dream's final timestep.", float)
    threads = option_property("threads", "Threads for the sampling statistics (0 = all CPUs).", int)
    sm_across_blocks = option_property("sm_across_blocks", "Also feed soft-mask predictions to "
                                       "masked positions outside the current block.", bool, bool,
                                       int)
    remdm_eta = option_property("remdm_eta", "ReMDM's eta (remdm_cap's cap, remdm_loop's "
                                "remasking probability).", float)
    remdm_t_on = option_property("remdm_t_on", "remdm_loop's loop start.", float)
    remdm_t_off = option_property("remdm_t_off", "remdm_loop's loop end.", float)
    remdm_alpha_on = option_property("remdm_alpha_on", "remdm_loop's alpha in the loop.", float)
    cache = option_property("cache", "Block caches of keys and values (experimental): 0 off, "
                            "1 prefix, 2 dual (docs/DECODING.md, \"Caches\").", int)
    cache_refresh = option_property("cache_refresh", "With a cache, also recompute every row every "
                                    "N steps of a block (0: at block starts only; 1: exact).", int)
    factor = option_property("factor", "f of the factor strategy, Fast-dLLM's factor rule "
                             "(experimental).", float)
    stop_at_eos = option_property("stop_at_eos", "Finish once EOS is committed and everything "
                                  "before it is decided.", bool, bool, int)


class _StreamState:
    """Shared by a StepStream and its worker thread (the worker holds no
    reference to the stream, so an abandoned stream is collected and its
    finaliser stops the worker)."""

    def __init__(self) -> None:
        self.q: "queue.Queue[tuple]" = queue.Queue(maxsize=4)
        self.closing = threading.Event()

    def put(self, item: tuple) -> bool:
        """Hand an item to the consumer; False once the stream is closing."""
        while not self.closing.is_set():
            try:
                self.q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


def _stop(state: _StreamState, sampler: Sampler, thread: Optional[threading.Thread],
          own_sampler: bool) -> None:
    state.closing.set()
    sampler.abort()
    if thread is not None and thread is not threading.current_thread():
        thread.join()
    if own_sampler:
        sampler.close()


class StepStream(Iterator[StepEvent]):
    """An iterator of :class:`StepEvent` while a generation runs in a worker
    thread (returned by :meth:`Model.generate_steps`).

    After the last event, :attr:`tokens` holds the generated ids and
    :attr:`text` their text. :meth:`close` (or leaving a ``with`` block,
    breaking out of a loop and dropping the stream, or Ctrl-C while waiting)
    stops the generation within one step.
    """

    def __init__(self, job: Callable[[Callable[[StepEvent], Any]], np.ndarray], sampler: Sampler,
                 model: "Model", own_sampler: bool = False) -> None:
        self._state = _StreamState()
        self._job, self._sampler, self._model = job, sampler, model
        self._own = own_sampler
        self._thread: Optional[threading.Thread] = None
        self._done = False
        #: The generated ids (set when the stream is exhausted).
        self.tokens: Optional[np.ndarray] = None
        self._finalizer = weakref.finalize(self, _stop, self._state, sampler, None, own_sampler)

    def _start(self) -> None:
        state, sampler, job = self._state, self._sampler, self._job

        def work() -> None:
            try:
                toks = job(lambda ev: not state.put(("step", ev)))
                state.put(("done", toks))
            except BaseException as e:
                state.put(("error", e))

        self._thread = threading.Thread(target=work, name="smdiff-generate", daemon=True)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop, state, sampler, self._thread, self._own)
        self._thread.start()

    def __iter__(self) -> "StepStream":
        return self

    def __next__(self) -> StepEvent:
        if self._done:
            raise StopIteration
        if self._thread is None:
            self._start()
        try:
            kind, payload = self._state.q.get()
        except BaseException:
            self.close()
            raise
        if kind == "step":
            return payload
        self.close()
        if kind == "done":
            self.tokens = payload
            raise StopIteration
        raise payload

    @property
    def text(self) -> str:
        """The generated text (after the stream is exhausted)."""
        if self.tokens is None:
            raise StateError("the stream has not finished")
        return self._model.tokenizer_decode(self.tokens)

    def close(self) -> None:
        """Stop the generation (if running) and release the stream's sampler."""
        self._done = True
        self._finalizer()

    def __enter__(self) -> "StepStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

