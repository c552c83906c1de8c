"""smdiff: masked diffusion language models with soft-masking, from Python.

A pure-Python binding (ctypes) of the C library libsmdiff. The library is
found through ``$SMDIFF_LIB`` (the path of ``libsmdiff.so``) or the dynamic
loader's search path; its version is checked at import.

Example::

    import smdiff
    with smdiff.Model("models/smdiff-gutenberg-18m-sm.gguf") as model:
        print(model.generate("It was a dark and stormy night,", gen_len=32, steps=32,
                             temperature=0.7, seed=1))

Objects: :class:`Model`, :class:`Tokenizer`, :class:`SoftMask`,
:class:`Sampler`, :class:`Strategy` (a decoder strategy in Python), with
:class:`StepEvent`/:class:`StepStream` for watching the denoising. Every
``SMDIFF_E_*`` status is an exception class under :class:`SmdiffError`.
docs/PYTHON.md has the guide.
"""
from ._lib import lib as _lib_handle
from ._version import __version__
from .errors import (AbortedError, BufferTooSmallError, FileAccessError, FormatError,
                     InternalError, InvalidArgumentError, NotFoundError, NumericError,
                     OutOfMemoryError, RangeError, SmdiffError, StateError, ThreadError,
                     UnsupportedError, error_class)
from .model import Model, Tokenizer
from .sampler import Sampler, StepEvent, StepStream
from .softmask import SoftMask
from .strategy import Selection, Strategy, StepView, strategies


def library_version() -> str:
    """Version of the loaded C library, "MAJOR.MINOR.PATCH"."""
    return _lib_handle.smdiff_version_string().decode()


def library_path() -> str:
    """The file or name the C library was loaded from."""
    return _lib_handle._name


__all__ = [
    "__version__", "library_version", "library_path",
    "Model", "Tokenizer", "SoftMask", "Sampler", "StepEvent", "StepStream",
    "Strategy", "StepView", "Selection", "strategies",
    "SmdiffError", "error_class", "InvalidArgumentError", "OutOfMemoryError", "RangeError",
    "UnsupportedError", "FileAccessError", "FormatError", "StateError", "NotFoundError",
    "BufferTooSmallError", "AbortedError", "NumericError", "ThreadError", "InternalError",
]
