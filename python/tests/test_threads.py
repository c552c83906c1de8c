"""Threads and interruption: two threads with their own samplers generate at
the same time (shown by a barrier both step callbacks must reach, not by
timing) and get what one-after-the-other runs get; Ctrl-C from a timer
thread stops a generation within one step and leaves the model usable;
abort() and closing a stream stop a run."""
from __future__ import annotations

import _thread
import signal
import threading

import pytest

import smdiff
from conftest import tiny_path

@pytest.fixture(autouse=True)
def python_sigint_handler():
    """A job a shell starts in the background inherits SIGINT ignored, and
    Python then installs no handler of its own: these tests need the
    handler an interactive Python has, so they set it (and restore)."""
    old = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


KW = [dict(gen_len=16, steps=16, temperature=0.9, seed=1, softmask="entropy"),
      dict(gen_len=16, steps=8, temperature=0.0, strategy="low_confidence", block_len=8)]


def test_two_threads_run_concurrently_with_sequential_results(llada):
    sequential = [llada.generate_tokens([4, 5, 6], **kw).tolist() for kw in KW]
    barrier = threading.Barrier(2, timeout=30)
    results, errors, met = [None, None], [], []

    def on_step(ev):
        if ev.step == 1:  # both generations are past their first step at once
            barrier.wait()
            met.append(threading.get_ident())

    def work(i):
        try:
            results[i] = llada.generate_tokens([4, 5, 6], on_step=on_step, **KW[i]).tolist()
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(met) == 2 and met[0] != met[1]
    assert results == sequential


def test_one_sampler_refuses_a_second_thread(llada):
    with smdiff.Sampler(gen_length=8, steps=8) as s:
        inside, release = threading.Event(), threading.Event()

        def on_step(ev):
            inside.set()
            release.wait(60)

        t = threading.Thread(target=lambda: s.generate_tokens(llada, [4, 5], on_step=on_step))
        t.start()
        assert inside.wait(60)
        try:
            with pytest.raises(smdiff.StateError, match="another thread"):
                s.generate_tokens(llada, [4, 5])
        finally:
            release.set()
            t.join()
        assert s.generate_tokens(llada, [4, 5]).dtype.name == "int32"  # usable again


def interrupt_after(step_go: threading.Event, sent: threading.Event, how: str) -> threading.Thread:
    """A timer thread: once told, interrupt the main thread, then say so."""
    def run():
        step_go.wait(60)
        if how == "signal":
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        else:
            _thread.interrupt_main()
        sent.set()
    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.parametrize("how", ["signal", "interrupt_main"])
def test_ctrl_c_stops_within_a_step(llada, how):
    """Step 2 wakes the timer thread, step 3 waits until it has sent Ctrl-C:
    the run must stop before another step completes, raise
    KeyboardInterrupt, and the model must then generate as before."""
    assert threading.current_thread() is threading.main_thread()
    want = llada.generate_tokens([4, 5], gen_len=32, steps=32).tolist()
    go, sent = threading.Event(), threading.Event()
    after = []

    def on_step(ev):
        if sent.is_set():
            after.append(ev.step)
        if ev.step == 2:
            go.set()
        if ev.step == 3:
            assert sent.wait(60)

    timer = interrupt_after(go, sent, how)
    try:
        with pytest.raises(KeyboardInterrupt):
            llada.generate_tokens([4, 5], gen_len=32, steps=32, on_step=on_step)
    finally:
        go.set()
        timer.join()
    assert after in ([], [3]), after  # at most the step that was running
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert llada.generate_tokens([4, 5], gen_len=32, steps=32).tolist() == want


def test_ctrl_c_while_iterating_a_stream(llada):
    go, sent = threading.Event(), threading.Event()
    timer = interrupt_after(go, sent, "interrupt_main")
    seen = 0
    try:
        with pytest.raises(KeyboardInterrupt):
            with llada.generate_steps([4, 5], gen_len=32, steps=32) as stream:
                for ev in stream:
                    seen += 1
                    if ev.step == 2:
                        go.set()
                        sent.wait(60)
                        sum(range(1000))  # bytecode runs: the interrupt is raised here or in next()
    finally:
        go.set()
        timer.join()
    assert 3 <= seen <= 4
    assert len(llada.generate_tokens([4, 5], gen_len=8, steps=8)) == 8


def test_abort_from_another_thread(llada):
    with smdiff.Sampler(gen_length=32, steps=32) as s:
        def on_step(ev):
            if ev.step == 1:
                t = threading.Thread(target=s.abort)
                t.start()
                t.join()
        with pytest.raises(smdiff.AbortedError, match="before step 2"):
            s.generate_tokens(llada, [4, 5], on_step=on_step)
        s.abort()  # idle: nothing to stop
        assert len(s.generate_tokens(llada, [4, 5])) == 32


def test_leaving_a_stream_early_stops_its_generation(llada):
    stream = llada.generate_steps([4, 5], gen_len=32, steps=32)
    first = next(stream)
    assert first.step == 0
    worker = stream._thread
    stream.close()
    assert not worker.is_alive()
    assert list(stream) == []
    # dropped without close: the finaliser stops the worker
    stream = llada.generate_steps([4, 5], gen_len=32, steps=32)
    next(stream)
    worker = stream._thread
    del stream
    import gc
    gc.collect()
    worker.join(60)
    assert not worker.is_alive()


def test_each_thread_its_own_model_too():
    """Models loaded and freed in several threads at once."""
    out, errors = [], []

    def work():
        try:
            with smdiff.Model(tiny_path("dream")) as m:
                out.append(m.generate_tokens([4, 5], gen_len=8, steps=4).tolist())
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(out) == 4 and all(o == out[0] for o in out)


def test_calls_release_the_gil():
    """Every C function is called through ctypes.CDLL without
    FUNCFLAG_PYTHONAPI: ctypes releases the GIL for the call (and callbacks
    take it back), which is what lets the threads above compute at once."""
    import ctypes
    from smdiff._lib import PROTOTYPES, lib
    assert not isinstance(lib, ctypes.PyDLL)
    for name in PROTOTYPES:
        if hasattr(lib, name):  # experimental ones may be absent
            assert not getattr(lib, name)._flags_ & ctypes._FUNCFLAG_PYTHONAPI, name
