"""Every SMDIFF_E_* status is an exception class, each raised by some bad
call; wrong types, closed objects and dropped objects never crash; creating
and freeing models and samplers 1,000 times leaks nothing."""
from __future__ import annotations

import gc
import textwrap

import numpy as np
import pytest

import smdiff
from conftest import DATA, run_python, sanitized, tiny_path


def test_one_class_per_code():
    """The classes cover exactly the codes the library reports, by name."""
    names = {}
    code = -1
    lib = smdiff._lib.lib
    while lib.smdiff_err_name(code) != b"SMDIFF_E_UNKNOWN":
        names[code] = lib.smdiff_err_name(code).decode()
        code -= 1
    assert len(names) == 13
    classes = {c for c in vars(smdiff).values()
               if isinstance(c, type) and issubclass(c, smdiff.SmdiffError) and c is not smdiff.SmdiffError}
    assert {c.c_code: c.c_name for c in classes} == names
    for code, name in names.items():
        cls = smdiff.error_class(code)
        e = cls("detail", code)
        assert e.code == code and e.name == name and e.message == "detail"
        assert isinstance(e, smdiff.SmdiffError) and name in str(e)
    assert smdiff.error_class(-999) is smdiff.SmdiffError


def raises(cls, fn, *args, match=None, **kw):
    with pytest.raises(cls, match=match) as info:
        fn(*args, **kw)
    assert type(info.value) is cls
    assert info.value.code == cls.c_code and info.value.message
    return info.value


def test_inval(dream):
    e = raises(smdiff.InvalidArgumentError, dream.generate_tokens, [], gen_len=4, steps=4)
    assert "prompt" in e.message
    raises(smdiff.InvalidArgumentError, dream.generate_tokens, [4], gen_len=4, steps=8)


def test_range(dream):
    e = raises(smdiff.RangeError, smdiff.Sampler, temperature=1000.0)
    assert "temperature" in e.message
    raises(smdiff.RangeError, smdiff.SoftMask, omega_s=1.0)  # open bound
    raises(smdiff.RangeError, dream.logits, [4, 5, 999])    # id outside the vocabulary
    raises(smdiff.RangeError, dream.generate_tokens, [4] * 60, gen_len=8, steps=8)  # context 64
    raises(smdiff.RangeError, smdiff.Sampler, seed=2**64)   # beyond int64, refused in Python


def test_unsupported():
    """A WordPiece (BERT) vocabulary: smdiff implements byte-level BPE only."""
    raises(smdiff.UnsupportedError, smdiff.Tokenizer.load,
           str(DATA / "tokenizers" / "llama.cpp-vocab" / "ggml-vocab-bert-bge.gguf"))


def test_io_and_format(tmp_path):
    e = raises(smdiff.FileAccessError, smdiff.Model, str(tmp_path / "missing.gguf"))
    assert "missing.gguf" in e.message
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    raises(smdiff.FormatError, smdiff.Model, str(bad))
    raises(smdiff.FormatError, smdiff.Model, str(DATA / "decode_ref.txt"))


def test_state(dream):
    with dream.tokenizer as t:  # the tiny models carry no vocabulary
        e = raises(smdiff.StateError, t.encode, "x")
        assert "tokenizer" in e.message
    t = smdiff.Tokenizer.load(str(DATA / "tokenizers" / "gpt2"))
    assert t.decode(t.encode("hello world")) == "hello world"
    t.close()
    e = raises(smdiff.StateError, t.encode, "x")  # closed: refused in Python
    assert "closed" in e.message


def test_not_found(dream):
    raises(smdiff.NotFoundError, smdiff.Sampler, strategy="no_such_strategy")
    raises(smdiff.NotFoundError, dream.meta, "no.such.key")
    raises(smdiff.NotFoundError, smdiff.Sampler, no_such_option=1)
    assert dream.meta("general.architecture") == "dream"


def test_buffer(dream):
    with smdiff.Sampler(gen_length=8, steps=8) as s:
        raises(smdiff.BufferTooSmallError, s.generate_tokens, dream, [4, 5], out=np.empty(4, np.int32))


def test_aborted(dream):
    with smdiff.Sampler(gen_length=8, steps=8) as s:
        e = raises(smdiff.AbortedError, s.generate_tokens, dream, [4, 5], on_step=lambda ev: ev.step == 2)
        assert "step 2" in e.message
        # an exception in a callback: AbortedError caused by it
        def boom(ev):
            raise ZeroDivisionError("in the callback")
        e = raises(smdiff.AbortedError, s.generate_tokens, dream, [4, 5], on_step=boom)
        assert isinstance(e.__cause__, ZeroDivisionError)
        assert len(s.generate_tokens(dream, [4, 5])) > 0  # still usable


def test_numeric(tmp_path):
    """A model whose last weights are NaN: the generation stops with NUMERIC."""
    data = bytearray((DATA / "tiny_llada_f32.gguf").read_bytes())
    data[-4096:] = np.full(1024, np.nan, np.float32).tobytes()
    path = tmp_path / "nan.gguf"
    path.write_bytes(bytes(data))
    with smdiff.Model(str(path)) as m:
        assert np.isnan(m.logits([4, 5])).any()
        e = raises(smdiff.NumericError, m.generate_tokens, [4, 5], gen_len=4, steps=4)
        assert "not finite" in e.message


def test_internal_via_strategy(llada):
    """SMDIFF_E_INTERNAL means a bug in smdiff, which no bad call should
    reach; the code still travels through the plug-in interface: a Python
    strategy that raises it fails the run with it."""
    def broken(view):
        raise smdiff.InternalError("strategy detected an impossible state")
    with smdiff.Strategy("py_internal", broken) as st:
        e = raises(smdiff.InternalError, llada.generate_tokens, [4, 5], strategy=st, gen_len=4, steps=4)
        assert "py_internal" in e.message and isinstance(e.__cause__, smdiff.InternalError)


def test_nomem_in_a_fresh_process():
    """NOMEM through the library's allocator hooks (failing on demand) and
    through an address-space limit that leaves no room for worker stacks
    (a thread that cannot start for lack of memory is NOMEM too) -- each in
    its own process."""
    code = textwrap.dedent("""
        import ctypes, ctypes.util, smdiff
        from smdiff._lib import lib, ALLOC_FN, FREE_FN
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p; libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        fail = [False]
        alloc = ALLOC_FN(lambda n, ud: None if fail[0] else libc.malloc(n))
        free = FREE_FN(lambda p, ud: libc.free(p))
        assert lib.smdiff_set_allocator(alloc, free, None) == 0, lib.smdiff_last_error()
        s = smdiff.Sampler()
        fail[0] = True
        try:
            smdiff.Sampler()
        except smdiff.OutOfMemoryError as e:
            print("NOMEM", e.code)
        fail[0] = False
        s.close()
        assert lib.smdiff_set_allocator(ALLOC_FN(), FREE_FN(), None) == 0
    """)
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "NOMEM %d" % smdiff.OutOfMemoryError.c_code in r.stdout
    if sanitized():
        pytest.skip("address-space limits and ASan's shadow memory do not mix (SAN=1)")
    code = textwrap.dedent("""
        import resource, smdiff
        m = smdiff.Model(%r)
        s = smdiff.Sampler(steps=2, gen_length=4, threads=64)
        vm = int([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 64 * 2**20, resource.RLIM_INFINITY))
        try:
            s.generate_tokens(m, [4, 5])
        except smdiff.OutOfMemoryError as e:
            print("NOMEM", e.code, e.message)
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print("after", len(s.generate_tokens(m, [4, 5])))
    """ % tiny_path("llada"))
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "NOMEM %d" % smdiff.OutOfMemoryError.c_code in r.stdout and "after 4" in r.stdout
    assert "worker thread" in r.stdout


# ----------------------------------------------------- types, closed objects
def test_wrong_types_raise_type_errors(dream):
    with pytest.raises(TypeError):
        smdiff.Model(42)
    with pytest.raises(TypeError):
        smdiff.Sampler(steps="many")
    with pytest.raises(TypeError):
        smdiff.Sampler(temperature="hot")
    with pytest.raises(TypeError):
        smdiff.Sampler(steps=2.5)
    with pytest.raises(TypeError):
        smdiff.Sampler(strategy=3)
    with pytest.raises(TypeError):
        dream.logits("hello")
    with pytest.raises(TypeError):
        dream.logits([1.5, 2.5])
    with pytest.raises(TypeError):
        dream.generate_tokens([object()])
    with pytest.raises(TypeError):
        dream.generate_tokens([4, 5], on_step=3)
    with pytest.raises(TypeError):
        smdiff.SoftMask(topk=1.5)
    with pytest.raises(TypeError):
        smdiff.Sampler(softmask=42)
    with pytest.raises(TypeError):
        dream.meta(5)
    with pytest.raises(TypeError):
        smdiff.Tokenizer()
    with pytest.raises(smdiff.InvalidArgumentError):
        dream.logits([[1, 2], [3, 4]])
    with pytest.raises(smdiff.InvalidArgumentError):
        dream.logits_embd(np.zeros((3, 5), np.float32))  # width is not embed_dim
    with pytest.raises(smdiff.InvalidArgumentError):
        dream.logits([4, 5], out=np.empty((2, 160), np.float64))
    with pytest.raises(smdiff.RangeError):
        dream.logits([4, 5], out=np.empty((1, 160), np.float32))  # capacity below n_rows * vocab
    with pytest.raises(smdiff.RangeError):
        dream.logits([4, 5], rows=[7])


def test_closed_objects_raise_state_error():
    m = smdiff.Model(tiny_path("llada"))
    t = m.tokenizer
    s = smdiff.Sampler(gen_length=4, steps=4)
    sm = smdiff.SoftMask()
    for obj in (m, s, sm, t):
        obj.close()
        obj.close()  # idempotent
        assert obj.closed
    for call in (lambda: m.vocab_size, lambda: m.logits([1]), lambda: m.generate_tokens([4]),
                 lambda: s.steps, lambda: s.generate_tokens(smdiff.Model(tiny_path("llada")), [4]),
                 lambda: sm.scale, lambda: t.encode("x"), lambda: smdiff.Sampler(softmask=sm),
                 lambda: setattr(s, "steps", 3)):
        with pytest.raises(smdiff.StateError, match="closed"):
            call()
    assert "closed" in repr(m) and "closed" in repr(s) and "closed" in repr(sm)


def test_tokenizer_outlives_its_model():
    m = smdiff.Model(str(DATA / "tiny_llada_f32.gguf"))
    g = smdiff.Tokenizer.load(str(DATA / "tokenizers" / "gpt2"))
    t = m.tokenizer
    m.close()
    del m
    gc.collect()
    with pytest.raises(smdiff.StateError):  # a model without a tokenizer: the library says so
        t.encode("x")
    t.close()
    assert g.encode("hello") == [31373]
    g.close()


def test_model_closed_while_generating_is_freed_after(llada):
    """close() from a step callback (standing in for another thread) does
    not free the model under the running generation; later calls refuse."""
    m = smdiff.Model(tiny_path("llada"))
    want = llada.generate_tokens([4, 5], gen_len=8, steps=8).tolist()
    got = m.generate_tokens([4, 5], gen_len=8, steps=8, on_step=lambda ev: m.close())
    assert got.tolist() == want
    with pytest.raises(smdiff.StateError):
        m.generate_tokens([4, 5])


def test_leaks_nothing_over_1000_cycles():
    """1,000 models and samplers created and freed (half closed explicitly,
    half left to the garbage collector), some generating: afterwards the
    library has no live allocation (smdiff_set_allocator succeeds only
    then), the model file is no longer mapped, no descriptor is left open
    and resident memory is flat. A sampler kept alive is detected (the
    check can fail)."""
    code = textwrap.dedent("""
        import gc, os, smdiff
        from smdiff._lib import lib, ALLOC_FN, FREE_FN
        path = %r
        def rss():
            return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
        def mapped():
            return sum(path in l for l in open('/proc/self/maps'))
        def cycle(i):
            if i %% 2:
                with smdiff.Model(path) as m, smdiff.Sampler(steps=2, gen_length=4, threads=1) as s:
                    if i %% 10 == 1:
                        s.generate_tokens(m, [4, 5])
            else:
                m = smdiff.Model(path); s = smdiff.Sampler(steps=2, gen_length=4, threads=1)
                t = m.tokenizer; sm = m.softmask
                del m, s, t, sm
        for i in range(100):
            cycle(i)
        gc.collect()
        r0, fds0 = rss(), len(os.listdir('/proc/self/fd'))
        for i in range(1000):
            cycle(i)
        gc.collect()
        r1, fds1 = rss(), len(os.listdir('/proc/self/fd'))
        print("live_ok", lib.smdiff_set_allocator(ALLOC_FN(), FREE_FN(), None) == 0, lib.smdiff_last_error().decode())
        print("mapped", mapped(), "fds", fds1 - fds0, "rss_growth", r1 - r0)
        keep = smdiff.Sampler()
        print("detects", lib.smdiff_set_allocator(ALLOC_FN(), FREE_FN(), None), lib.smdiff_last_error().decode())
    """ % tiny_path("llada"))
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.strip().split("\n"))
    assert out["live_ok"].startswith("True"), out["live_ok"]
    f = out["mapped"].split()
    assert f[0] == "0" and f[2] == "0", out["mapped"]
    assert out["detects"].startswith(str(smdiff.StateError.c_code)) and "live" in out["detects"]
    if not sanitized():
        assert int(f[4]) < 4 * 2**20, "resident memory grew by %s bytes" % f[4]
