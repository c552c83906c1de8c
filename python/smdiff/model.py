"""Model (weights, tokenizer, architecture) and Tokenizer."""
from __future__ import annotations

import os
from ctypes import byref, c_char_p, c_int32, c_int64, c_size_t
from typing import (TYPE_CHECKING, Any, Callable, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np

from . import _core
from ._core import Family, Handle, Options, check, int32_array, ptr, typed_property
from ._lib import (DETOKENIZE_SPECIAL, PROP, TOKENIZE_ADD_BOS, TOKENIZE_PARSE_SPECIAL, lib)
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from .sampler import StepStream
    from .softmask import SoftMask
    from .strategy import Strategy

PathLike = Union[str, "os.PathLike[str]"]
Prompt = Union[str, Sequence[int], np.ndarray]


def _path(p: PathLike, what: str) -> bytes:
    if not isinstance(p, (str, os.PathLike)):
        raise TypeError("%s must be a path (str or os.PathLike), not %s" % (what, type(p).__name__))
    return os.fsencode(p)


class Model(Options):
    """A masked diffusion language model loaded from a GGUF file.

    A loaded model is immutable and may be shared by any number of threads;
    each generation uses its own sampler. Close it with :meth:`close` or a
    ``with`` block (or let it be garbage-collected); using it afterwards
    raises :class:`StateError`.

    Example::

        with smdiff.Model("models/smdiff-gutenberg-18m-sm.gguf") as m:
            print(m.generate("It was a dark and stormy night,", gen_len=32, steps=32))

    Args:
        path: the GGUF file (architectures ``dream`` and ``llada``).
        use_mmap: map the weights instead of reading them (default True).
        threads: threads for :meth:`logits` (default 0 = all CPUs).
        context: override the file's context length (default 0 = the file's).
        **options: any other model option by its library name.
    """

    _family = Family("model", "model", None)

    def __init__(self, path: PathLike, *, use_mmap: Optional[bool] = None,
                 threads: Optional[int] = None, context: Optional[int] = None,
                 **options: int) -> None:
        raw = _core.create(lib.smdiff_model_create)
        self._handle = Handle(self, raw, lib.smdiff_model_free, "Model")
        self.path: str = os.fsdecode(path) if isinstance(path, (str, os.PathLike)) else ""
        try:
            given = dict(use_mmap=use_mmap, threads=threads, context=context, **options)
            self.set(**{k: v for k, v in given.items() if v is not None})
            with self._handle.use() as p:
                check(lib.smdiff_model_load_file(p, _path(path, "path")))
        except BaseException:
            self._handle.close()
            raise

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Release the model (its Tokenizers keep their own reference). A call
        still running in another thread finishes first. Idempotent."""
        self._handle.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle.closed

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<smdiff.Model %r (closed)>" % self.path
        return "<smdiff.Model %r %s, %d layers, vocab %d>" % (
            self.path, self.architecture, self.n_layers, self.vocab_size)

    # ---------------------------------------------------------- properties
    def _prop(self, name: str) -> int:
        out = c_int64()
        with self._handle.use() as p:
            check(lib.smdiff_model_property(p, PROP[name], byref(out)))
        return out.value

    def _opt_id(self, name: str) -> Optional[int]:
        v = self._prop(name)
        return None if v < 0 else v

    @property
    def architecture(self) -> str:
        """The architecture name, ``"dream"`` or ``"llada"``."""
        out = c_char_p()
        with self._handle.use() as p:
            check(lib.smdiff_model_arch(p, byref(out)))
        return out.value.decode()

    vocab_size = typed_property(lambda self: self._prop("vocab_size"), int,
                          doc="Rows of the output head (the vocabulary size).")
    mask_id = typed_property(lambda self: self._prop("mask_id"), int, doc="Id of the [MASK] token.")
    context = typed_property(lambda self: self._prop("context"), int,
                       doc="Maximum canvas length (prompt plus generation).")
    embed_dim = typed_property(lambda self: self._prop("embed_dim"), int,
                         doc="d, the width of an input embedding (for :meth:`logits_embd`).")
    n_layers = typed_property(lambda self: self._prop("n_layers"), int, doc="Transformer layers.")
    n_heads = typed_property(lambda self: self._prop("n_heads"), int, doc="Attention heads.")
    n_kv_heads = typed_property(lambda self: self._prop("n_kv_heads"), int, doc="Key/value heads.")
    ffn_dim = typed_property(lambda self: self._prop("ffn_dim"), int, doc="Feed-forward width.")
    shift_logits = typed_property(lambda self: bool(self._prop("shift_logits")), bool,
                            doc="True if logits row i predicts position i+1 (dream).")
    bos_id = typed_property(lambda self: self._opt_id("bos_id"), Optional[int], doc="BOS token id, or None.")
    eos_id = typed_property(lambda self: self._opt_id("eos_id"), Optional[int], doc="EOS token id, or None.")
    pad_id = typed_property(lambda self: self._opt_id("pad_id"), Optional[int], doc="Padding token id, or None.")
    n_params = typed_property(lambda self: self._prop("n_params"), int,
                        doc="Parameter count, embeddings included.")

    @property
    def softmask(self) -> "SoftMask":
        """A new :class:`SoftMask` holding the soft-mask parameters the file
        stores (the reference defaults for those it does not)."""
        from .softmask import SoftMask
        return SoftMask.from_model(self)

    @property
    def tokenizer(self) -> "Tokenizer":
        """The model's :class:`Tokenizer` (a new object sharing the model)."""
        return Tokenizer._from_model(self)

    def meta(self, key: str) -> str:
        """A metadata value of the file as text (arrays as ``"[n items]"``);
        NotFoundError if absent."""
        k = _core.text(key, "key")
        with self._handle.use() as p:
            raw = _core.two_call(lambda buf, cap, need: lib.smdiff_model_meta(p, k, buf, cap, need))
        return raw.rstrip(b"\0").decode("utf-8", "replace")

    # -------------------------------------------------------------- logits
    def logits(self, ids: Union[Sequence[int], np.ndarray], rows: Optional[Sequence[int]] = None,
               *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Logits of chosen rows of a canvas of token ids.

        Args:
            ids: the canvas (prompt, committed and mask tokens), 1..context ids.
            rows: canvas rows wanted (default: all). With :attr:`shift_logits`
                row i predicts position i+1.
            out: optional float32 C-contiguous array to fill (``n_rows *
                vocab_size`` elements); the library writes into it directly.

        Returns:
            float32 array ``[n_rows, vocab_size]`` (``out`` when given). An
            int32 canvas and rows are passed without copying.
        """
        a = int32_array(ids, "ids")
        r = np.arange(a.size, dtype=np.int32) if rows is None else int32_array(rows, "rows")
        with self._handle.use() as p:
            vocab = self._prop("vocab_size")
            o = _core.out_array(out, (r.size, vocab), np.float32, "out")
            check(lib.smdiff_model_logits(p, ptr(a), a.size, ptr(r), r.size, ptr(o), o.size))
        return o

    def logits_embd(self, embd: np.ndarray, rows: Optional[Sequence[int]] = None,
                    *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """As :meth:`logits`, with the canvas given as input embeddings
        ``[n_pos, embed_dim]`` -- e.g. soft-masked mixtures of token
        embeddings. A float32 C-contiguous ``embd`` is passed without copying.
        """
        e = _core.float32_array(embd, "embd", 2)
        d = self.embed_dim
        if e.shape[1] != d:
            raise InvalidArgumentError("embd has rows of %d values; this model's embed_dim is %d"
                                       % (e.shape[1], d))
        n = e.shape[0]
        r = np.arange(n, dtype=np.int32) if rows is None else int32_array(rows, "rows")
        with self._handle.use() as p:
            vocab = self._prop("vocab_size")
            o = _core.out_array(out, (r.size, vocab), np.float32, "out")
            check(lib.smdiff_model_logits_embd(p, ptr(e), n, ptr(r), r.size, ptr(o), o.size))
        return o

    # ---------------------------------------------------------- generation
    def generate(self, prompt: Prompt, *, steps: Optional[int] = None,
                 gen_len: Optional[int] = None, block_len: Optional[int] = None,
                 strategy: Union[str, "Strategy", None] = None,
                 temperature: Optional[float] = None, top_p: Optional[float] = None,
                 top_k: Optional[int] = None, seed: Optional[int] = None,
                 softmask: Union["SoftMask", str, bool, None] = None,
                 suffix: Optional[Prompt] = None, chat: bool = False,
                 on_step: Optional[Any] = None, **options: Any) -> str:
        """Generate text after ``prompt`` and return it (the generated part).

        Args:
            prompt: text (tokenized with special tokens recognised, as the CLI
                does) or a sequence of token ids.
            steps: denoising steps (default 64, at most gen_len).
            gen_len: tokens to generate (default 128, clamped to the context).
            block_len: semi-autoregressive block length (default: one block).
            strategy: a strategy name (``"maskgit_plus"``, ``"low_confidence"``,
                ...) or a registered :class:`Strategy`.
            temperature, top_p, top_k, seed: sampling (temperature 0 = greedy).
            softmask: None = the model's stored schedule; ``"off"``/False,
                ``"entropy"``, ``"constant"`` = the stored parameters in that
                mode; or a :class:`SoftMask`.
            suffix: text (or ids) that must follow the generation: infilling,
                the canvas prompt + gen_len masks + suffix filled by the
                library (gen_len left unset: what the context leaves, at most
                128); the filled span is returned, up to its first EOS.
            chat: wrap the prompt in the model's chat template (one user turn).
            on_step: called with a :class:`StepEvent` after every step; return
                True to stop (AbortedError).
            **options: any other sampler option by name (alg_temp, threshold,
                eps, threads, stop_at_eos).

        Ctrl-C (KeyboardInterrupt) stops the run within one step; the model
        stays usable. The C code runs without the GIL, so threads sharing
        this model generate in parallel.
        """
        ids = self._generate_ids(prompt, steps, gen_len, block_len, strategy, temperature, top_p,
                                 top_k, seed, softmask, suffix, chat, on_step, options)
        return self.tokenizer_decode(ids)

    def generate_tokens(self, prompt: Prompt, **kwargs: Any) -> np.ndarray:
        """As :meth:`generate` (same arguments), returning the generated token
        ids (int32, up to the first EOS) instead of text."""
        return self._generate_ids(prompt, **_generate_args(kwargs))

    def generate_steps(self, prompt: Prompt, **kwargs: Any) -> "StepStream":
        """As :meth:`generate` (same arguments but ``on_step``), as an iterator
        of :class:`StepEvent` -- step index, canvas ids, positions committed,
        the soft-mask weight lambda of each masked position -- produced while
        the generation runs in a worker thread. After the last event,
        ``stream.tokens`` and ``stream.text`` hold the result. Leaving the loop
        early (break, an exception, Ctrl-C) stops the generation.
        """
        from .sampler import StepStream
        args = _generate_args(kwargs)
        if args.pop("on_step") is not None:
            raise TypeError("generate_steps() yields the steps; it takes no on_step")
        sampler = self._sampler_for(args)
        try:
            job = self._job(sampler, prompt, args["suffix"], args["chat"], args)
        except BaseException:
            sampler.close()
            raise
        return StepStream(job, sampler, self, own_sampler=True)

    def fill(self, canvas: Union[Sequence[int], np.ndarray], **kwargs: Any) -> np.ndarray:
        """Fill every position of ``canvas`` (token ids) that holds
        :attr:`mask_id` -- infilling with context anywhere, one span or
        several -- and return the canvas (an int32 array given is filled in
        place). Keyword arguments as :meth:`generate` (``gen_len`` is not
        used: the masks are the span; ``block_len`` must divide their
        number). Uses the library's experimental ``smdiff_generate_canvas``.
        """
        args = _generate_args(kwargs)
        if args["suffix"] is not None or args["chat"]:
            raise TypeError("fill() takes the whole canvas: no suffix or chat")
        sampler = self._sampler_for(args)
        try:
            return sampler.fill(self, canvas, on_step=args["on_step"])
        finally:
            sampler.close()

    def prompt_ids(self, prompt: Prompt, *, chat: bool = False) -> np.ndarray:
        """The token ids generation starts from: text is (optionally wrapped in
        the chat template and) tokenized with special tokens recognised;
        ids pass through."""
        if isinstance(prompt, (str, bytes)):
            t = self.tokenizer
            try:
                s = prompt.decode("utf-8") if isinstance(prompt, bytes) else prompt
                if chat:
                    s = t.chat_template([("user", s)], add_generation_prompt=True)
                return np.asarray(t.encode(s, parse_special=True), dtype=np.int32)
            finally:
                t.close()
        if chat:
            raise TypeError("chat=True needs a text prompt")
        return int32_array(prompt, "prompt")

    def tokenizer_decode(self, ids: Union[Sequence[int], np.ndarray]) -> str:
        """Text of token ids with the model's tokenizer (special tokens skipped)."""
        t = self.tokenizer
        try:
            return t.decode(ids)
        finally:
            t.close()

    def _sampler_for(self, a: Mapping[str, Any]) -> Any:
        from .sampler import Sampler
        opts = dict(a["options"])
        for name, value in (("steps", a["steps"]), ("gen_length", a["gen_len"]),
                            ("block_length", a["block_len"]), ("temperature", a["temperature"]),
                            ("top_p", a["top_p"]), ("top_k", a["top_k"]), ("seed", a["seed"])):
            if value is not None:
                opts[name] = value
        return Sampler(strategy=a["strategy"], softmask=a["softmask"], model=self, **opts)

    def _job(self, sampler: Any, prompt: Prompt, suffix: Optional[Prompt], chat: bool,
             a: Mapping[str, Any]) -> Callable[[Any], np.ndarray]:
        """The generation as a function of the step callback: the prompt
        continued, or, with a suffix, the canvas prefix + span + suffix
        filled (the library's infilling) and the span returned."""
        ids = self.prompt_ids(prompt, chat=chat)
        if suffix is None:
            return lambda on_step: sampler.generate_tokens(self, ids, on_step=on_step)
        if chat:
            raise TypeError("chat=True cannot be combined with suffix=")
        suf = self.prompt_ids(suffix)
        gen_set = a["gen_len"] is not None or "gen_length" in a["options"]
        span = int(sampler.gen_length)
        if not gen_set:  # as the library's text infilling: what the context leaves
            span = min(span, self.context - ids.size - suf.size)
            if span < 1:
                raise _core.RangeError("the prompt and the suffix fill the context of %d tokens"
                                       % self.context)
        canvas = np.concatenate([ids, np.full(span, self.mask_id, np.int32), suf]).astype(np.int32)
        eos = self.eos_id

        def job(on_step: Any) -> np.ndarray:
            out = sampler.fill(self, canvas, on_step=on_step, n_prompt=ids.size, n_gen=span)
            gen = out[ids.size:ids.size + span]
            if eos is not None and sampler.stop_at_eos:
                hits = np.flatnonzero(gen == eos)
                gen = gen[:hits[0]] if hits.size else gen
            return gen

        return job

    def _generate_ids(self, prompt: Prompt, steps: Optional[int] = None,
                      gen_len: Optional[int] = None, block_len: Optional[int] = None,
                      strategy: Any = None, temperature: Optional[float] = None,
                      top_p: Optional[float] = None, top_k: Optional[int] = None,
                      seed: Optional[int] = None, softmask: Any = None,
                      suffix: Optional[Prompt] = None, chat: bool = False, on_step: Any = None,
                      options: Optional[Mapping[str, Any]] = None) -> np.ndarray:
        a = dict(steps=steps, gen_len=gen_len, block_len=block_len, strategy=strategy,
                 temperature=temperature, top_p=top_p, top_k=top_k, seed=seed, softmask=softmask,
                 suffix=suffix, options=options or {})
        sampler = self._sampler_for(a)
        try:
            return self._job(sampler, prompt, suffix, chat, a)(on_step)
        finally:
            sampler.close()


_GENERATE_KEYS = ("steps", "gen_len", "block_len", "strategy", "temperature", "top_p", "top_k",
                  "seed", "softmask", "suffix", "chat", "on_step")


def _generate_args(kwargs: Mapping[str, Any]) -> dict:
    """generate()'s keyword arguments, with the sampler options left over."""
    a = {k: kwargs.get(k) for k in _GENERATE_KEYS}
    a["chat"] = bool(a["chat"])
    a["options"] = {k: v for k, v in kwargs.items() if k not in _GENERATE_KEYS}
    return a


class Tokenizer:
    """Text to token ids and back, and the chat template.

    Take one from a model (``model.tokenizer``) or load one alone with
    :meth:`Tokenizer.load` (a GGUF file or a Hugging Face tokenizer folder
    or ``tokenizer.json``). A Tokenizer holds its own reference to the model,
    so closing either does not affect the other.
    """

    def __init__(self) -> None:
        raise TypeError("use Model.tokenizer or Tokenizer.load(path)")

    @classmethod
    def _wrap(cls, raw: int) -> "Tokenizer":
        t = cls.__new__(cls)
        t._handle = Handle(t, raw, lib.smdiff_model_free, "Tokenizer")
        return t

    @classmethod
    def _from_model(cls, model: Model) -> "Tokenizer":
        with model._handle.use() as p:
            check(lib.smdiff_model_retain(p))
            return cls._wrap(p)

    @classmethod
    def load(cls, path: PathLike) -> "Tokenizer":
        """Load only a tokenizer: a GGUF file (its ``tokenizer.ggml.*``
        metadata), a Hugging Face tokenizer folder, or a ``tokenizer.json``."""
        raw = _core.create(lib.smdiff_model_create)
        t = cls._wrap(raw)
        try:
            with t._handle.use() as p:
                check(lib.smdiff_model_load_tokenizer(p, _path(path, "path")))
        except BaseException:
            t.close()
            raise
        return t

    def close(self) -> None:
        """Release this tokenizer's reference. Idempotent."""
        self._handle.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle.closed

    def __enter__(self) -> "Tokenizer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def encode(self, text: str, *, parse_special: bool = False, add_bos: bool = False) -> List[int]:
        """Token ids of ``text``. ``parse_special`` matches special tokens
        written in the text (``<|im_end|>``); ``add_bos`` prepends BOS when
        the tokenizer asks for one (``tokenizer.ggml.add_bos_token``)."""
        data = _core.text(text, "text")
        flags = (TOKENIZE_PARSE_SPECIAL if parse_special else 0) | (TOKENIZE_ADD_BOS if add_bos else 0)
        n = c_size_t()
        with self._handle.use() as p:
            cap = len(data) + 8
            for _ in range(2):
                ids = (c_int32 * max(cap, 1))()
                rc = lib.smdiff_model_tokenize(p, data, len(data), flags, ids, cap, byref(n))
                if rc == _core.BufferTooSmallError.c_code and n.value > cap:
                    cap = n.value
                    continue
                check(rc)
                return list(ids[:n.value])
        raise _core.BufferTooSmallError("tokenize kept asking for more room")

    def decode_bytes(self, ids: Union[Sequence[int], np.ndarray], *, special: bool = False) -> bytes:
        """The bytes of token ids (special tokens rendered when ``special``)."""
        a = int32_array(ids, "ids")
        flags = DETOKENIZE_SPECIAL if special else 0
        with self._handle.use() as p:
            return _core.two_call(lambda buf, cap, need: lib.smdiff_model_detokenize(
                p, ptr(a), a.size, flags, buf, cap, need), initial=8 * a.size + 16)

    def decode(self, ids: Union[Sequence[int], np.ndarray], *, special: bool = False,
               errors: str = "replace") -> str:
        """Text of token ids; bytes that are not UTF-8 are handled by
        ``errors`` (as bytes.decode)."""
        return self.decode_bytes(ids, special=special).decode("utf-8", errors)

    def piece(self, token_id: int) -> bytes:
        """The bytes one token stands for (may end inside a UTF-8 character)."""
        if isinstance(token_id, bool) or not isinstance(token_id, (int, np.integer)):
            raise TypeError("token_id must be an int, not %s" % type(token_id).__name__)
        if not -2**31 <= int(token_id) < 2**31:
            raise _core.RangeError("token id %d does not fit 32 bits" % token_id)
        with self._handle.use() as p:
            return _core.two_call(lambda buf, cap, need: lib.smdiff_model_token_piece(
                p, int(token_id), buf, cap, need), initial=64)

    def chat_template(self, messages: Iterable[Union[Tuple[str, str], Mapping[str, str]]],
                      *, add_generation_prompt: bool = True) -> str:
        """Render a conversation with the model's (ChatML) template.

        ``messages`` are ``(role, content)`` pairs or ``{"role": ..,
        "content": ..}`` dicts; roles are system, user, assistant, tool.
        Tokenize the result with ``parse_special=True``."""
        pairs = []
        for m in messages:
            role, content = (m["role"], m["content"]) if isinstance(m, Mapping) else m
            pairs.append((_core.text(role, "role"), _core.text(content, "content")))
        n = len(pairs)
        roles = (c_char_p * max(n, 1))(*[r for r, _ in pairs])
        contents = (c_char_p * max(n, 1))(*[c for _, c in pairs])
        with self._handle.use() as p:
            raw = _core.two_call(lambda buf, cap, need: lib.smdiff_chat_template(
                p, n, roles, contents, int(bool(add_generation_prompt)), buf, cap, need),
                initial=1024)
        return raw.rstrip(b"\0").decode("utf-8")

    def save(self, path: PathLike) -> None:
        """Write the tokenizer as a vocabulary-only GGUF file."""
        with self._handle.use() as p:
            check(lib.smdiff_model_save_tokenizer(p, _path(path, "path")))

    def __repr__(self) -> str:
        return "<smdiff.Tokenizer%s>" % (" (closed)" if self.closed else "")

