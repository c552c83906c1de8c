"""Exceptions: one class per SMDIFF_E_* status code, all under SmdiffError.

The numbers come from the loaded library (``smdiff_err_name``), not from
this file: each class names its C code, and at import the codes the library
knows are matched to the classes by name. A code this package does not know
(a newer library) raises :class:`SmdiffError` itself, with that code.
"""
from __future__ import annotations

from typing import Dict, Optional, Type

from ._lib import lib


class SmdiffError(Exception):
    """An smdiff call failed.

    Attributes:
        code: the negative ``SMDIFF_E_*`` status (e.g. -1).
        name: its symbolic name (e.g. ``"SMDIFF_E_INVAL"``).
        message: the library's detailed message (the option, file field or
            value at fault), or the package's own for checks made in Python.
    """

    #: The C name of the status this class stands for (set on subclasses).
    c_name: str = ""
    #: Its number, filled in from the library at import (0 if unknown).
    c_code: int = 0

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        self.code: int = self.c_code if code is None else int(code)
        self.name: str = lib.smdiff_err_name(self.code).decode()
        self.message: str = message or lib.smdiff_strerror(self.code).decode()
        super().__init__(self.message)

    def __str__(self) -> str:
        return "%s [%s]" % (self.message, self.name)

    def __reduce__(self):  # picklable across processes
        return (error_class(self.code), (self.message, self.code))


class InvalidArgumentError(SmdiffError):
    """SMDIFF_E_INVAL: an invalid argument (bad key, wrong type, bad shape)."""
    c_name = "SMDIFF_E_INVAL"


class OutOfMemoryError(SmdiffError):
    """SMDIFF_E_NOMEM: an allocation failed (nothing leaked, object unchanged)."""
    c_name = "SMDIFF_E_NOMEM"


class RangeError(SmdiffError):
    """SMDIFF_E_RANGE: a value outside an option's bounds, or an id or row
    outside the vocabulary or canvas."""
    c_name = "SMDIFF_E_RANGE"


class UnsupportedError(SmdiffError):
    """SMDIFF_E_UNSUPPORTED: not implemented in this build or version."""
    c_name = "SMDIFF_E_UNSUPPORTED"


class FileAccessError(SmdiffError):
    """SMDIFF_E_IO: a file could not be opened, read or written."""
    c_name = "SMDIFF_E_IO"


class FormatError(SmdiffError):
    """SMDIFF_E_FORMAT: malformed or unsupported file contents."""
    c_name = "SMDIFF_E_FORMAT"


class StateError(SmdiffError):
    """SMDIFF_E_STATE: not valid in the object's current state (a model
    without weights, a closed object, a sampler already running)."""
    c_name = "SMDIFF_E_STATE"


class NotFoundError(SmdiffError):
    """SMDIFF_E_NOT_FOUND: a named item (option, strategy, metadata key) is
    unknown."""
    c_name = "SMDIFF_E_NOT_FOUND"


class BufferTooSmallError(SmdiffError):
    """SMDIFF_E_BUFFER: a caller-supplied output array is too small."""
    c_name = "SMDIFF_E_BUFFER"


class AbortedError(SmdiffError):
    """SMDIFF_E_ABORTED: the run was stopped -- by :meth:`Sampler.abort`, a
    step callback returning True, or a Python callback or strategy that
    raised (then ``__cause__`` is that exception)."""
    c_name = "SMDIFF_E_ABORTED"


class NumericError(SmdiffError):
    """SMDIFF_E_NUMERIC: NaN or infinity in a computation."""
    c_name = "SMDIFF_E_NUMERIC"


class ThreadError(SmdiffError):
    """SMDIFF_E_THREAD: a thread or synchronisation primitive failed."""
    c_name = "SMDIFF_E_THREAD"


class InternalError(SmdiffError):
    """SMDIFF_E_INTERNAL: a bug in smdiff; please report it."""
    c_name = "SMDIFF_E_INTERNAL"


_CLASSES = (InvalidArgumentError, OutOfMemoryError, RangeError, UnsupportedError, FileAccessError,
            FormatError, StateError, NotFoundError, BufferTooSmallError, AbortedError,
            NumericError, ThreadError, InternalError)


def _codes_by_name() -> Dict[str, int]:
    """Every status the library knows, walking down from -1 until it answers
    SMDIFF_E_UNKNOWN."""
    out: Dict[str, int] = {}
    code = -1
    while True:
        name = lib.smdiff_err_name(code).decode()
        if name == "SMDIFF_E_UNKNOWN" or code < -10000:
            return out
        out[name] = code
        code -= 1


_BY_CODE: Dict[int, Type[SmdiffError]] = {}
for _cls in _CLASSES:
    _code = _codes_by_name().get(_cls.c_name)
    if _code is not None:
        _cls.c_code = _code
        _BY_CODE[_code] = _cls


def error_class(code: int) -> Type[SmdiffError]:
    """The exception class for a status code (SmdiffError for an unknown one)."""
    return _BY_CODE.get(int(code), SmdiffError)


def raise_for(code: int, message: str) -> None:
    """Raise the exception of ``code`` with ``message`` if code is not 0."""
    if code:
        raise error_class(code)(message, code)


__all__ = ["SmdiffError", "error_class"] + [c.__name__ for c in _CLASSES]
