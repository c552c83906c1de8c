"""The numbers the package cannot ask the library for (property keys, flag
bits, schedule and confidence kinds, the decoder ABI version) equal the
header's, and the option names the package documents exist in the library."""
from __future__ import annotations

import re

import pytest

import smdiff
from smdiff import _lib
from conftest import REPO

HEADERS = [REPO / "include" / "smdiff" / "smdiff.h", REPO / "include" / "smdiff" / "smdiff_decoder.h"]


def defines():
    if not all(h.is_file() for h in HEADERS):
        pytest.skip("the C headers are not next to the tests")
    out = {}
    for h in HEADERS:
        for name, value in re.findall(r"^#define (SMDIFF_\w+)\s+\(?(-?(?:0x)?[0-9a-fA-F]+)u?\)?",
                                      h.read_text(), re.M):
            out[name] = int(value, 0)
    return out


def test_constants_match_the_header():
    d = defines()
    prop_names = {"vocab_size": "VOCAB_SIZE", "mask_id": "MASK_ID", "context": "CONTEXT",
                  "embed_dim": "EMBED_DIM", "n_layers": "LAYERS", "n_heads": "HEADS",
                  "n_kv_heads": "KV_HEADS", "ffn_dim": "FFN_DIM", "shift_logits": "SHIFT_LOGITS",
                  "bos_id": "BOS_ID", "eos_id": "EOS_ID", "pad_id": "PAD_ID", "n_params": "N_PARAMS"}
    assert set(prop_names) == set(_lib.PROP)
    for py, c in prop_names.items():
        assert _lib.PROP[py] == d["SMDIFF_PROP_" + c], py
    assert d["SMDIFF_PROP_OPT_LAST_"] == max(_lib.PROP.values())  # no property left out
    for fam, c in (("model", "MODEL"), ("softmask", "SM"), ("sampler", "SAMPLER")):
        assert _lib.FAMILY_BASE[fam] == d["SMDIFF_%s_OPT_FIRST_" % c]
    assert _lib.SM_MODES == {"off": d["SMDIFF_SM_OFF"], "entropy": d["SMDIFF_SM_ENTROPY"],
                             "constant": d["SMDIFF_SM_CONSTANT"]}
    assert (_lib.TYPE_INT, _lib.TYPE_DOUBLE) == (d["SMDIFF_TYPE_INT"], d["SMDIFF_TYPE_DOUBLE"])
    assert _lib.TOKENIZE_PARSE_SPECIAL == d["SMDIFF_TOKENIZE_PARSE_SPECIAL"]
    assert _lib.TOKENIZE_ADD_BOS == d["SMDIFF_TOKENIZE_ADD_BOS"]
    assert _lib.DETOKENIZE_SPECIAL == d["SMDIFF_DETOKENIZE_SPECIAL"]
    assert _lib.DECODER_ABI_VERSION == d["SMDIFF_DECODER_ABI_VERSION"]
    assert _lib.DECODER_MAX_SCRATCH == d["SMDIFF_DECODER_MAX_SCRATCH"]
    for k, v in _lib.SCHEDULES.items():
        assert v == d["SMDIFF_SCHEDULE_" + k.upper()]
    for k, v in _lib.CONFIDENCES.items():
        assert v == d["SMDIFF_CONFIDENCE_" + k.upper()]
    for k, v in _lib.FINALS.items():
        assert v == d["SMDIFF_FINAL_" + k.upper()]
    for k, v in _lib.NEEDS.items():
        assert v == d["SMDIFF_NEED_" + k.upper()]
    assert _lib.NEED_ALL == d["SMDIFF_NEED_ALL"]
    assert _lib.API_VERSION == (d["SMDIFF_VERSION_MAJOR"], d["SMDIFF_VERSION_MINOR"])


def test_prototypes_cover_the_header_names():
    """Every function the package declares is declared in the headers."""
    text = "".join(h.read_text() for h in HEADERS) if all(h.is_file() for h in HEADERS) else None
    if text is None:
        pytest.skip("the C headers are not next to the tests")
    for name in _lib.PROTOTYPES:
        assert re.search(r"\b%s\(" % name, text), name


def test_documented_option_properties_exist():
    """The option properties of SoftMask and Sampler name real options; the
    library lists no option they lack."""
    for cls in (smdiff.SoftMask, smdiff.Sampler):
        props = {n for n, v in vars(cls).items() if isinstance(v, property)}
        names = set(cls.option_names())
        assert names <= props, names - props
    for name in ("use_mmap", "threads", "context"):
        assert name in smdiff.Model.option_names()
