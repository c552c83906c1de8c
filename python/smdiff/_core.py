"""Pieces every wrapper uses: owned handles, typed options, array checks."""
from __future__ import annotations

import ctypes
import numbers
import threading
import weakref
from contextlib import contextmanager
from ctypes import byref, c_char_p, c_double, c_int32, c_int64, c_size_t, c_void_p
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from ._lib import FAMILY_BASE, TYPE_DOUBLE, TYPE_INT, lib
from .errors import (BufferTooSmallError, InvalidArgumentError, RangeError,
                     StateError, raise_for)


def last_error() -> str:
    """The calling thread's detailed message of its last failing call."""
    return (lib.smdiff_last_error() or b"").decode("utf-8", "replace")


def check(rc: int, message: Optional[Callable[[], bytes]] = None) -> None:
    """Raise the exception for a failing status, with the object's message
    when given (the error rule: it is also in the thread's slot)."""
    if rc:
        text = message() if message is not None else lib.smdiff_last_error()
        raise_for(rc, (text or b"").decode("utf-8", "replace"))


class Handle:
    """One C handle owned by one Python object.

    It is freed exactly once: by :meth:`close` when no call is using it, by
    the last call still using it after a close from another thread, or when
    the owner is garbage-collected (``weakref.finalize``, which runs at most
    once -- so close-then-collect never frees twice). A call on a closed
    handle raises :class:`StateError` instead of touching freed memory.
    """

    __slots__ = ("_ptr", "_what", "_lock", "_users", "_closed", "_finalizer", "__weakref__")

    def __init__(self, owner: object, ptr: int, free: Callable[[int], None], what: str) -> None:
        self._ptr = ptr
        self._what = what
        self._lock = threading.Lock()
        self._users = 0
        self._closed = False
        self._finalizer = weakref.finalize(owner, free, ptr)
        # At interpreter exit the process ends anyway; freeing then could race
        # a daemon thread still inside a call.
        self._finalizer.atexit = False

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self) -> int:
        with self._lock:
            if self._closed:
                raise StateError("this %s is closed" % self._what)
            self._users += 1
            return self._ptr

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            free_now = self._closed and self._users == 0
        if free_now:
            self._finalizer()

    @contextmanager
    def use(self) -> Iterator[int]:
        """``with handle.use() as ptr:`` -- the pointer, valid for the block."""
        ptr = self.acquire()
        try:
            yield ptr
        finally:
            self.release()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            free_now = self._users == 0
        if free_now:
            self._finalizer()


def create(fn: Callable[..., int], *args: Any) -> int:
    """Call a ``*_create(..., &out)`` function and return the new pointer."""
    out = c_void_p()
    check(fn(*args, byref(out)))
    return out.value


# ---------------------------------------------------------------- options
@dataclass(frozen=True)
class OptionInfo:
    """What the library says about one option: its name, key, type (``int``
    or ``float``), bounds and default."""
    name: str
    key: int
    type: type
    min: float
    max: float
    default: Union[int, float]


class Family:
    """The typed options of one object kind, addressed by name. Keys are
    looked up through ``smdiff_<kind>_option_key`` and described by
    ``_option_info``; only the family's base is known here."""

    def __init__(self, kind: str, what: str, last_error: Optional[Callable[[int], bytes]]) -> None:
        self.kind, self.what = kind, what
        self._key = getattr(lib, "smdiff_%s_option_key" % kind)
        self._info = getattr(lib, "smdiff_%s_option_info" % kind)
        self._set = {TYPE_INT: getattr(lib, "smdiff_%s_set_int" % kind),
                     TYPE_DOUBLE: getattr(lib, "smdiff_%s_set_double" % kind, None)}
        self._get = {TYPE_INT: getattr(lib, "smdiff_%s_get_int" % kind),
                     TYPE_DOUBLE: getattr(lib, "smdiff_%s_get_double" % kind, None)}
        self._last_error = last_error
        self._cache: Dict[str, OptionInfo] = {}
        self._lock = threading.Lock()

    def info(self, name: str) -> OptionInfo:
        """Describe an option by name; NotFoundError if the library has none."""
        if not isinstance(name, str):
            raise TypeError("option names are str, not %s" % type(name).__name__)
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None:
            return hit
        key = c_int32()
        rc = self._key(name.encode(), byref(key))
        if rc:
            raise_for(rc, "no %s option named %r (options: %s)"
                      % (self.what, name, ", ".join(self.names())))
        info = self._describe(key.value)
        with self._lock:
            self._cache[name] = info
        return info

    def _describe(self, key: int) -> OptionInfo:
        name, typ = c_char_p(), c_int32()
        lo, hi, de = c_double(), c_double(), c_double()
        check(self._info(key, byref(name), byref(typ), byref(lo), byref(hi), byref(de)))
        is_int = typ.value == TYPE_INT
        return OptionInfo(name.value.decode(), key, int if is_int else float, lo.value, hi.value,
                          int(de.value) if is_int else de.value)

    def names(self) -> List[str]:
        """Every option of the family, in key order (asked of the library)."""
        base = FAMILY_BASE[self.kind]
        out = []
        for key in range(base, base + 100):
            name = c_char_p()
            if self._info(key, byref(name), None, None, None, None) == 0:
                out.append(name.value.decode())
        return out

    def set(self, ptr: int, name: str, value: Any) -> None:
        info = self.info(name)
        if info.type is int:
            if isinstance(value, bool) or isinstance(value, numbers.Integral):
                v = int(value)
            else:
                raise TypeError("%s option %r takes an int, not %s"
                                % (self.what, name, type(value).__name__))
            if not -2**63 <= v < 2**63:
                raise RangeError("%s option %r: %d does not fit a 64-bit integer"
                                 % (self.what, name, v))
            rc = self._set[TYPE_INT](ptr, info.key, v)
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError("%s option %r takes a float, not %s"
                                % (self.what, name, type(value).__name__))
            rc = self._set[TYPE_DOUBLE](ptr, info.key, float(value))
        self._check(rc, ptr)

    def get(self, ptr: int, name: str) -> Union[int, float]:
        info = self.info(name)
        if info.type is int:
            out = c_int64()
            self._check(self._get[TYPE_INT](ptr, info.key, byref(out)), ptr)
        else:
            out = c_double()
            self._check(self._get[TYPE_DOUBLE](ptr, info.key, byref(out)), ptr)
        return out.value

    def _check(self, rc: int, ptr: int) -> None:
        if rc:
            check(rc, (lambda: self._last_error(ptr)) if self._last_error else None)


class Options:
    """Mixin for objects with a :class:`Family` of options and a handle."""

    _family: Family
    _handle: Handle

    def get(self, name: str) -> Union[int, float]:
        """The value of option ``name`` (as set, or its default)."""
        with self._handle.use() as ptr:
            return self._family.get(ptr, name)

    def set(self, **options: Any) -> None:
        """Set options by name, e.g. ``set(steps=32, temperature=0.7)``. Each is
        checked by the library: a bad value raises RangeError and leaves the
        object unchanged; an unknown name raises NotFoundError."""
        with self._handle.use() as ptr:
            for name, value in options.items():
                self._family.set(ptr, name, value)

    @property
    def options(self) -> Dict[str, Union[int, float]]:
        """Every option of this object and its current value."""
        return {name: self.get(name) for name in self._family.names()}

    @classmethod
    def option_info(cls, name: str) -> OptionInfo:
        """Name, type, bounds and default of an option, from the library."""
        return cls._family.info(name)

    @classmethod
    def option_names(cls) -> List[str]:
        """The names of every option, from the library."""
        return cls._family.names()


def option_property(name: str, doc: str, typ: type, convert: Optional[Callable[[Any], Any]] = None,
                    to_c: Optional[Callable[[Any], Any]] = None) -> property:
    """A property of type ``typ`` reading and writing option ``name`` of an
    Options object (``convert`` maps the C value, ``to_c`` the one set)."""

    def fget(self: Options) -> Any:
        v = self.get(name)
        return convert(v) if convert else v

    def fset(self: Options, value: Any) -> None:
        self.set(**{name: to_c(value) if to_c else value})

    fget.__annotations__["return"] = typ
    fset.__annotations__["value"] = typ
    return property(fget, fset, doc=doc)


def typed_property(fget: Callable[[Any], Any], typ: Any, doc: str) -> property:
    """A read-only property whose getter is annotated to return ``typ``."""

    def get(self: Any) -> Any:
        return fget(self)

    get.__annotations__["return"] = typ
    return property(get, doc=doc)


# ---------------------------------------------------------------- arrays
def int32_array(values: Any, what: str) -> np.ndarray:
    """A C-contiguous 1-D int32 array of ``values`` (no copy when it already
    is one); TypeError for non-integers, RangeError for values that do not
    fit int32."""
    if isinstance(values, (str, bytes)):
        raise TypeError("%s must be a sequence of token ids, not %s" % (what, type(values).__name__))
    a = np.asarray(values)
    if a.dtype == np.int32 and a.ndim == 1 and a.flags.c_contiguous:
        return a
    if a.size == 0:
        return np.zeros(0, np.int32)
    if a.dtype.kind not in "iub" or a.dtype == np.bool_:
        raise TypeError("%s must hold integers, not %s" % (what, a.dtype))
    if a.ndim != 1:
        raise InvalidArgumentError("%s must be one-dimensional, not of shape %s" % (what, a.shape))
    lo, hi = int(a.min()), int(a.max())
    if lo < -2**31 or hi >= 2**31:
        raise RangeError("%s: %d does not fit a 32-bit token id" % (what, lo if lo < -2**31 else hi))
    return np.ascontiguousarray(a, dtype=np.int32)


def float32_array(values: Any, what: str, ndim: int) -> np.ndarray:
    """A C-contiguous float32 array (no copy when it already is one)."""
    a = np.asarray(values)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError("%s must hold numbers, not %s" % (what, a.dtype))
    if a.ndim != ndim:
        raise InvalidArgumentError("%s must have %d dimension(s), not shape %s" % (what, ndim, a.shape))
    return np.ascontiguousarray(a, dtype=np.float32)


def out_array(out: Optional[np.ndarray], shape: Sequence[int], dtype: Any, what: str) -> np.ndarray:
    """``out`` checked to be a writable C-contiguous array of ``dtype`` that
    the C call may fill (its size is passed as the capacity), or a new one."""
    if out is None:
        return np.empty(tuple(shape), dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError("%s must be a numpy.ndarray, not %s" % (what, type(out).__name__))
    if out.dtype != np.dtype(dtype) or not out.flags.c_contiguous or not out.flags.writeable:
        raise InvalidArgumentError("%s must be a writable C-contiguous %s array"
                                   % (what, np.dtype(dtype).name))
    return out


def ptr(a: np.ndarray) -> int:
    """Address of an array's first element."""
    return a.ctypes.data


def two_call(fill: Callable[[Optional[ctypes.Array], int, Any], int],
             message: Optional[Callable[[], bytes]] = None, initial: int = 256) -> bytes:
    """Run a (buffer, capacity, *needed) call: try a buffer of ``initial``
    bytes, and once more with the size the library reports. Returns the
    bytes written (``*needed`` of them, a trailing NUL not included when
    the call counts one -- the caller strips it)."""
    cap = initial
    for _ in range(3):
        buf = ctypes.create_string_buffer(cap)
        needed = c_size_t()
        rc = fill(buf, cap, byref(needed))
        if rc == BufferTooSmallError.c_code and needed.value > cap:
            cap = needed.value
            continue
        check(rc, message)
        return buf.raw[:needed.value]
    raise BufferTooSmallError("the library kept asking for a larger buffer")


def text(s: Union[str, bytes], what: str) -> bytes:
    """UTF-8 bytes of a str (bytes pass through)."""
    if isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        raise TypeError("%s must be str, not %s" % (what, type(s).__name__))
    return s.encode("utf-8")


__all__ = ["OptionInfo"]
