"""Finding libsmdiff, checking its version and declaring the C functions.

Everything here mirrors include/smdiff/smdiff.h and smdiff_decoder.h. Key
*numbers* of option families are never written here: options are looked up
by name through the library (``smdiff_*_option_key``/``_option_info``). What
the library cannot be asked -- its property keys, flag bits, the decoder
struct layout -- is declared below with the header's names, and
python/tests/test_header.py checks each value against the header.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_float, c_int32,
                    c_int64, c_size_t, c_uint8, c_uint32, c_void_p)
from typing import Mapping, Optional, Sequence, Tuple

#: The C API version this package is written against (major, minor).
API_VERSION: Tuple[int, int] = (0, 2)
#: The shared library's file name as the dynamic loader knows it (SONAME).
SONAME = "libsmdiff.so.%d" % API_VERSION[0]

# ------------------------------------------------------ header constants
# Integer properties of a loaded model (SMDIFF_PROP_*). The library has no
# lookup by name for these, so they are the header's pinned numbers.
PROP = {
    "vocab_size": 500, "mask_id": 501, "context": 502, "embed_dim": 503, "n_layers": 504,
    "n_heads": 505, "n_kv_heads": 506, "ffn_dim": 507, "shift_logits": 508, "bos_id": 509,
    "eos_id": 510, "pad_id": 511, "n_params": 512,
}
# Option families: each owns [base, base + 100) (docs/API.md, "Options").
FAMILY_BASE = {"model": 100, "softmask": 200, "sampler": 300}
TYPE_INT, TYPE_DOUBLE = 1, 2
SM_MODES = {"off": 0, "entropy": 1, "constant": 2}
TOKENIZE_PARSE_SPECIAL, TOKENIZE_ADD_BOS, DETOKENIZE_SPECIAL = 1, 2, 1
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2, 3

DECODER_ABI_VERSION = 2
SCHEDULES = {"timestep": 0, "even": 1, "until_done": 2}
CONFIDENCES = {"sampled": 0, "raw": 1}
FINALS = {"commit_all": 0, "argmax": 1}  # SMDIFF_FINAL_*
NEEDS = {"position": 0x01, "token": 0x02, "confidence": 0x04, "top2": 0x08, "entropy": 0x10,
         "random": 0x20}
NEED_ALL = 0x3F
DECODER_MAX_SCRATCH = 4096

# --------------------------------------------------------- callback types
STEP_FN = CFUNCTYPE(c_int32, c_size_t, c_size_t, POINTER(c_int32), POINTER(c_uint8),
                    POINTER(c_float), c_size_t, c_void_p)
ABORT_FN = CFUNCTYPE(c_int32, c_void_p)
LOG_FN = CFUNCTYPE(None, c_int32, c_char_p, c_void_p)
ALLOC_FN = CFUNCTYPE(c_void_p, c_size_t, c_void_p)
FREE_FN = CFUNCTYPE(None, c_void_p, c_void_p)
UNIFORM_FN = CFUNCTYPE(c_double, c_void_p)


class StepViewC(Structure):
    """smdiff_step_view (smdiff_decoder.h, version 2)."""
    _fields_ = [
        ("struct_size", c_uint32), ("step", c_size_t), ("n_steps", c_size_t),
        ("block", c_size_t), ("n_blocks", c_size_t), ("n_masked", c_size_t),
        ("n_masked_total", c_size_t), ("n_transfer", c_size_t), ("t", c_double), ("s", c_double),
        ("alg_temp", c_double), ("threshold", c_double), ("position", POINTER(c_int32)),
        ("token", POINTER(c_int32)), ("confidence", POINTER(c_float)), ("top1", POINTER(c_float)),
        ("top2", POINTER(c_float)), ("entropy", POINTER(c_float)), ("uniform", UNIFORM_FN),
        ("rng_state", c_void_p), ("scratch", c_void_p),
        # appended in smdiff 0.2: re-masking
        ("n_committed", c_size_t), ("committed_position", POINTER(c_int32)),
        ("committed_token", POINTER(c_int32)), ("committed_confidence", POINTER(c_float)),
        ("remask_capacity", c_size_t), ("remdm_eta", c_double), ("remdm_t_on", c_double),
        ("remdm_t_off", c_double), ("remdm_alpha_on", c_double),
        # appended in smdiff 0.2 (experimental): Fast-dLLM's factor rule
        ("factor", c_double),
    ]


SELECT_FN = CFUNCTYPE(c_int32, POINTER(StepViewC), POINTER(c_int32), POINTER(c_int32),
                      POINTER(c_int32), POINTER(c_int32), c_void_p)
RELEASE_FN = CFUNCTYPE(None, c_void_p)


class DecoderC(Structure):
    """smdiff_decoder (smdiff_decoder.h, version 2)."""
    _fields_ = [
        ("struct_size", c_uint32), ("abi_version", c_uint32), ("name", c_char_p),
        ("description", c_char_p), ("select", SELECT_FN), ("release", RELEASE_FN),
        ("schedule", c_int32), ("confidence", c_int32), ("needs", c_uint32),
        ("scratch_per_position", c_size_t),
        ("remask", c_int32),  # appended in smdiff 0.2
        ("final", c_int32),   # appended in smdiff 0.2 (SMDIFF_FINAL_*)
    ]


# ------------------------------------------------------------- prototypes
P = POINTER
_i32, _i64, _sz, _dbl, _str, _vp = c_int32, c_int64, c_size_t, c_double, c_char_p, c_void_p
_INFO = [_i32, P(c_char_p), P(_i32), P(_dbl), P(_dbl), P(_dbl)]
PROTOTYPES = {
    "smdiff_version_number": (c_uint32, []),
    "smdiff_version_string": (_str, []),
    "smdiff_strerror": (_str, [_i32]),
    "smdiff_err_name": (_str, [_i32]),
    "smdiff_last_error": (_str, []),
    "smdiff_set_log_callback": (_i32, [LOG_FN, _vp, _i32]),
    "smdiff_set_allocator": (_i32, [ALLOC_FN, FREE_FN, _vp]),
    # model
    "smdiff_model_create": (_i32, [P(_vp)]),
    "smdiff_model_retain": (_i32, [_vp]),
    "smdiff_model_free": (None, [_vp]),
    "smdiff_model_set_int": (_i32, [_vp, _i32, _i64]),
    "smdiff_model_get_int": (_i32, [_vp, _i32, P(_i64)]),
    "smdiff_model_option_info": (_i32, _INFO),
    "smdiff_model_option_key": (_i32, [_str, P(_i32)]),
    "smdiff_model_load_file": (_i32, [_vp, _str]),
    "smdiff_model_is_loaded": (_i32, [_vp, P(_i32)]),
    "smdiff_model_property": (_i32, [_vp, _i32, P(_i64)]),
    "smdiff_model_arch": (_i32, [_vp, P(c_char_p)]),
    "smdiff_model_meta": (_i32, [_vp, _str, _vp, _sz, P(_sz)]),
    "smdiff_model_logits": (_i32, [_vp, _vp, _sz, _vp, _sz, _vp, _sz]),
    "smdiff_model_logits_embd": (_i32, [_vp, _vp, _sz, _vp, _sz, _vp, _sz]),
    # tokenizer
    "smdiff_model_tokenize": (_i32, [_vp, _vp, _sz, _i32, _vp, _sz, P(_sz)]),
    "smdiff_model_detokenize": (_i32, [_vp, _vp, _sz, _i32, _vp, _sz, P(_sz)]),
    "smdiff_model_load_tokenizer": (_i32, [_vp, _str]),
    "smdiff_model_save_tokenizer": (_i32, [_vp, _str]),
    "smdiff_model_token_piece": (_i32, [_vp, _i32, _vp, _sz, P(_sz)]),
    "smdiff_chat_template": (_i32, [_vp, _sz, P(c_char_p), P(c_char_p), _i32, _vp, _sz, P(_sz)]),
    # soft-mask schedule
    "smdiff_softmask_create": (_i32, [P(_vp)]),
    "smdiff_softmask_create_from_model": (_i32, [_vp, P(_vp)]),
    "smdiff_softmask_clone": (_i32, [_vp, P(_vp)]),
    "smdiff_softmask_free": (None, [_vp]),
    "smdiff_softmask_set_int": (_i32, [_vp, _i32, _i64]),
    "smdiff_softmask_set_double": (_i32, [_vp, _i32, _dbl]),
    "smdiff_softmask_get_int": (_i32, [_vp, _i32, P(_i64)]),
    "smdiff_softmask_get_double": (_i32, [_vp, _i32, P(_dbl)]),
    "smdiff_softmask_option_info": (_i32, _INFO),
    "smdiff_softmask_option_key": (_i32, [_str, P(_i32)]),
    "smdiff_softmask_last_error": (_str, [_vp]),
    "smdiff_softmask_lambda": (_i32, [_vp, _vp, _sz, _sz, _sz, P(_dbl)]),
    # sampler
    "smdiff_sampler_create": (_i32, [P(_vp)]),
    "smdiff_sampler_free": (None, [_vp]),
    "smdiff_sampler_set_int": (_i32, [_vp, _i32, _i64]),
    "smdiff_sampler_set_double": (_i32, [_vp, _i32, _dbl]),
    "smdiff_sampler_get_int": (_i32, [_vp, _i32, P(_i64)]),
    "smdiff_sampler_get_double": (_i32, [_vp, _i32, P(_dbl)]),
    "smdiff_sampler_option_info": (_i32, _INFO),
    "smdiff_sampler_option_key": (_i32, [_str, P(_i32)]),
    "smdiff_sampler_set_strategy": (_i32, [_vp, _str]),
    "smdiff_sampler_get_strategy": (_i32, [_vp, P(c_char_p)]),
    "smdiff_sampler_set_softmask": (_i32, [_vp, _vp]),
    "smdiff_sampler_set_step_callback": (_i32, [_vp, STEP_FN, _vp]),
    "smdiff_sampler_set_abort_callback": (_i32, [_vp, ABORT_FN, _vp]),
    "smdiff_sampler_last_error": (_str, [_vp]),
    "smdiff_generate_tokens": (_i32, [_vp, _vp, _vp, _sz, _vp, _sz, P(_sz)]),
    # decoder plug-ins
    "smdiff_decoder_register": (_i32, [P(DecoderC), _vp]),
    "smdiff_decoder_unregister": (_i32, [_str]),
    "smdiff_decoder_count": (_i32, [P(_sz)]),
    "smdiff_decoder_name": (_i32, [_sz, P(c_char_p), P(c_char_p)]),
    # experimental section (SMDIFF_EXPERIMENTAL): infilling
    "smdiff_generate_canvas": (_i32, [_vp, _vp, _vp, _sz]),
    "smdiff_generate_infill_text": (_i32, [_vp, _vp, _str, _str, _vp, _sz, P(_sz)]),
}
#: Functions of the header's experimental section: a library without them
#: still loads; the features that need them raise UnsupportedError.
EXPERIMENTAL = {"smdiff_generate_canvas", "smdiff_generate_infill_text"}


def candidates(env: Mapping[str, str]) -> Sequence[str]:
    """The library files or names tried, in order: $SMDIFF_LIB alone when it
    is set, else the SONAME and what ctypes.util.find_library reports, both
    resolved by the dynamic loader (LD_LIBRARY_PATH, the ld.so cache, an
    installed prefix)."""
    path = env.get("SMDIFF_LIB")
    if path:
        return [path]
    names = [SONAME]
    found = ctypes.util.find_library("smdiff")
    if found and found not in names:
        names.append(found)
    return names


def load(env: Optional[Mapping[str, str]] = None,
         names: Optional[Sequence[str]] = None) -> ctypes.CDLL:
    """Open libsmdiff (see :func:`candidates`); ImportError naming every try."""
    env = os.environ if env is None else env
    names = list(candidates(env) if names is None else names)
    tried = []
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            tried.append("%s (%s)" % (name, e))
    how = ("(SMDIFF_LIB is set, so only that file was tried.)" if env.get("SMDIFF_LIB") else
           "Set SMDIFF_LIB to the library file, or install it (make install) or add its "
           "folder to LD_LIBRARY_PATH")
    raise ImportError("smdiff: cannot load the C library; tried: %s. %s"
                      % ("; ".join(tried) or "nothing", how))


def check_version(number: int, wanted: Tuple[int, int] = API_VERSION) -> None:
    """Refuse a library whose version cannot serve this package: another
    major version, or while the major version is 0, another minor one (0.x
    minor releases may break the ABI); from 1.0 a newer minor is fine."""
    major, minor, patch = number // 10000, number // 100 % 100, number % 100
    ok = major == wanted[0] and (minor == wanted[1] if major == 0 else minor >= wanted[1])
    if not ok:
        raise ImportError(
            "smdiff: the C library is version %d.%d.%d but this Python package needs %d.%d.x; "
            "install the matching library or package (SMDIFF_LIB selects the library file)"
            % (major, minor, patch, wanted[0], wanted[1]))


def declare(dll: ctypes.CDLL) -> ctypes.CDLL:
    """Set argtypes/restype of every function the package calls. CDLL calls
    release the GIL while the C code runs."""
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(dll, name)
        except AttributeError:
            if name in EXPERIMENTAL:
                continue
            raise ImportError("smdiff: the C library lacks %s; it is not a usable libsmdiff %d.%d"
                              % (name, API_VERSION[0], API_VERSION[1])) from None
        fn.restype = restype
        fn.argtypes = argtypes
    return dll


def _open() -> ctypes.CDLL:
    dll = load()
    # The version check comes before any other symbol is looked up, so an old
    # library gets the version message rather than a missing-symbol one.
    try:
        version = dll.smdiff_version_number
    except AttributeError:
        raise ImportError("smdiff: %r is not libsmdiff (no smdiff_version_number)"
                          % dll._name) from None
    version.restype = c_uint32
    version.argtypes = []
    check_version(int(version()))
    return declare(dll)


lib = _open()


def has(name: str) -> bool:
    """Whether the loaded library exports ``name`` (for experimental ones)."""
    return hasattr(lib, name)

