"""Model properties, logits into NumPy (against the fixtures of
tests/ref/tiny_models.py, float64 PyTorch), and the tokenizer (against
llama.cpp's test vectors, made with Hugging Face tokenizers)."""
from __future__ import annotations

import numpy as np
import pytest

import smdiff
from conftest import DATA, tiny_path

# tests/ref/tiny_models.py's CFG and canvas length
CFG = {"dream": dict(vocab=160, d=32, layers=2, heads=4, kv_heads=2, ffn=96, ctx=64, mask=158,
                     bos=0, eos=1, pad=2, shift=True),
       "llada": dict(vocab=128, d=32, layers=2, heads=4, kv_heads=2, ffn=96, ctx=64, mask=126,
                     bos=0, eos=1, pad=3, shift=False)}
L = 9


def fixture(name, dtype):
    return np.fromfile(DATA / name, dtype=dtype)


def rel_err(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("arch", ["dream", "llada"])
def test_properties(arch):
    c = CFG[arch]
    with smdiff.Model(tiny_path(arch), use_mmap=False, threads=2) as m:
        assert m.architecture == arch
        assert (m.vocab_size, m.embed_dim, m.n_layers, m.n_heads, m.n_kv_heads, m.ffn_dim) == (
            c["vocab"], c["d"], c["layers"], c["heads"], c["kv_heads"], c["ffn"])
        assert (m.context, m.mask_id, m.bos_id, m.eos_id, m.pad_id) == (
            c["ctx"], c["mask"], c["bos"], c["eos"], c["pad"])
        assert m.shift_logits is c["shift"]
        assert m.n_params > c["vocab"] * c["d"]
        assert m.options == {"use_mmap": 0, "threads": 2, "context": 0}
        assert m.meta("general.architecture") == arch
        assert arch in repr(m)
    with smdiff.Model(tiny_path(arch), context=16) as m:
        assert m.context == 16


@pytest.mark.parametrize("arch", ["dream", "llada"])
def test_logits_against_reference(arch):
    c = CFG[arch]
    ids = fixture("tiny_%s_ids.i32" % arch, np.int32)
    ref = fixture("tiny_%s_f32.logits.f32" % arch, np.float32).reshape(L, c["vocab"])
    with smdiff.Model(tiny_path(arch)) as m:
        got = m.logits(ids)
        assert got.shape == (L, c["vocab"]) and got.dtype == np.float32
        assert rel_err(got, ref) <= 1e-4
        # chosen rows, out of order and repeated, as a list of Python ints
        part = m.logits(ids.tolist(), rows=[8, 2, 2, 0])
        assert rel_err(part, got[[8, 2, 2, 0]]) <= 1e-6
        # written into the caller's array: no copy made
        out = np.zeros((2, c["vocab"]), np.float32)
        res = m.logits(ids, rows=np.array([1, 3], np.int32), out=out)
        assert res is out and rel_err(out, got[[1, 3]]) <= 1e-6
        # input embeddings (the soft-mask path)
        embd = fixture("tiny_%s_embd.f32" % arch, np.float32).reshape(L, c["d"])
        eref = fixture("tiny_%s_f32_embd.logits.f32" % arch, np.float32).reshape(L, c["vocab"])
        ge = m.logits_embd(embd)
        assert rel_err(ge, eref) <= 1e-4
        assert rel_err(ge, ref) > 1e-2  # the embedding canvas is another input
        out = np.empty((1, c["vocab"]), np.float32)
        assert m.logits_embd(embd.astype(np.float64), rows=[4], out=out) is out
        assert rel_err(out[0], ge[4]) <= 1e-6


def test_int32_inputs_are_not_copied(dream, monkeypatch):
    """An int32 canvas and a float32 embedding reach the C call by address."""
    seen = []
    real = smdiff.model.lib

    class Spy:
        def __getattr__(self, name):
            fn = getattr(real, name)
            if name in ("smdiff_model_logits", "smdiff_model_logits_embd"):
                return lambda *a: (seen.append(a[1]), fn(*a))[1]
            return fn

    monkeypatch.setattr(smdiff.model, "lib", Spy())
    ids = np.array([4, 5, 6], np.int32)
    embd = np.zeros((3, dream.embed_dim), np.float32)
    dream.logits(ids)
    dream.logits_embd(embd)
    assert seen == [ids.ctypes.data, embd.ctypes.data]


def test_tokenizer_against_llama_cpp_vectors():
    """llama.cpp's GPT-2 vectors (expected ids from Hugging Face tokenizers)."""
    base = DATA / "tokenizers" / "llama.cpp-vocab"
    texts = (base / "ggml-vocab-gpt-2.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    want = (base / "ggml-vocab-gpt-2.gguf.out").read_text().split("\n")
    with smdiff.Tokenizer.load(str(base / "ggml-vocab-gpt-2.gguf")) as t:
        n = 0
        for text, ids in zip(texts, want):
            if text == "" and ids.strip() == "":
                continue
            got = t.encode(text)
            assert got == [int(x) for x in ids.split()], text
            assert t.decode(got) == text
            n += 1
        assert n >= 40
        assert t.piece(15496) == b"Hello"
        assert t.decode_bytes([15496, 995]) == b"Hello world"


def test_special_tokens_and_chat_template():
    """Dream's tokenizer: special tokens and the ChatML template
    (the rendering Dream-Instruct's tokenizer_config.json describes)."""
    with smdiff.Tokenizer.load(str(DATA / "tokenizers" / "dream-qwen2.5")) as t:
        assert t.encode("<|im_end|>", parse_special=True) == [151645]
        assert len(t.encode("<|im_end|>")) > 1
        assert t.decode([151645], special=True) == "<|im_end|>" and t.decode([151645]) == ""
        msgs = [("system", "Be brief."), {"role": "user", "content": "Hi"}]
        assert t.chat_template(msgs, add_generation_prompt=True) == (
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n")
        assert t.chat_template([("user", "q")], add_generation_prompt=False) == (
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nq<|im_end|>\n")
        long = "x" * 5000  # beyond the first buffer: the two-call pattern
        assert t.chat_template([("user", long)]).count("x") == 5000


def test_tokenizer_save_and_reload(tmp_path):
    with smdiff.Tokenizer.load(str(DATA / "tokenizers" / "gpt2")) as t:
        t.save(str(tmp_path / "tok.gguf"))
        ids = t.encode("The quick brown fox")
    with smdiff.Tokenizer.load(tmp_path / "tok.gguf") as u:
        assert u.encode("The quick brown fox") == ids


def test_bundled_text_roundtrip_and_chat_unsupported(bundled):
    with bundled.tokenizer as t:
        ids = t.encode("It was a dark and stormy night.")
        assert t.decode(ids) == "It was a dark and stormy night."
        with pytest.raises(smdiff.UnsupportedError):  # GPT-2 vocabulary: no ChatML tokens
            t.chat_template([("user", "hi")])
    assert bundled.prompt_ids("It was").tolist() == ids[:2]
