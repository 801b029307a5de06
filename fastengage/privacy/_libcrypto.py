"""Locating OpenSSL's libcrypto -- the one this Python's ``hashlib``/``hmac`` already use -- and
the addresses of the few functions the hashing kernels call.

No build-time dependency on OpenSSL headers: the library is opened at run time with ctypes.
The library is found, in order, as the ``libcrypto`` mapped into this process by CPython's
``_hashlib`` extension (Linux: read from ``/proc/self/maps``; macOS: dyld's image list), then by
``ctypes.util`` (not on macOS), then by its versioned sonames. If none is usable,
:func:`libcrypto` returns ``None`` and pseudonymisation falls back to Python's ``hmac`` (same
tokens, slower). The functions used are OpenSSL's
``SHA256_Init/Update/Final`` (deprecated in 3.0 in favour of EVP, still exported by every
OpenSSL 3 build with the default options; a build without them takes the fallback), and
``SHA256_Transform`` when exported (the one-block path of short ids; optional).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from dataclasses import dataclass

__all__ = ["Libcrypto", "libcrypto"]

# Never the bare "libcrypto.dylib": on macOS that is the system's LibreSSL stub, and loading
# it aborts the process.
_SONAMES = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.3.dylib", "libcrypto.so")


@dataclass(frozen=True)
class Libcrypto:
    """Addresses (ints) of the libcrypto functions the kernels call, and the library handle."""

    path: str
    version: str
    lib: ctypes.CDLL
    sha256_init: int
    sha256_update: int
    sha256_final: int
    #: ``SHA256_Transform`` (one 64-byte block into ``ctx->h``, no buffering); 0 if absent
    sha256_transform: int = 0


def _dyld_path() -> str | None:
    """macOS: the libcrypto image already loaded (by ``_hashlib``), from dyld's image list."""
    try:
        libc = ctypes.CDLL(None)
        count, name = libc._dyld_image_count, libc._dyld_get_image_name
    except (OSError, AttributeError):
        return None
    count.restype, name.restype, name.argtypes = ctypes.c_uint32, ctypes.c_char_p, [ctypes.c_uint32]
    for i in range(count()):
        path = (name(i) or b"").decode(errors="replace")
        if "libcrypto" in os.path.basename(path):
            return path
    return None


def _mapped_path() -> str | None:
    try:
        import _hashlib  # noqa: F401  (maps the libcrypto CPython was built against)
    except ImportError:
        return None
    if sys.platform == "darwin":
        return _dyld_path()
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.rsplit(None, 1)[-1]
                if "libcrypto" in os.path.basename(path) and os.path.isfile(path):
                    return path
    except OSError:
        return None
    return None


def _address(lib, name: str) -> int:
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


def _optional_address(lib, name: str) -> int:
    try:
        return _address(lib, name) or 0
    except AttributeError:
        return 0


def _open() -> Libcrypto | None:
    found = ctypes.util.find_library("crypto") if sys.platform != "darwin" else None
    candidates = [p for p in (_mapped_path(), found) if p]
    candidates += list(_SONAMES)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            version_fn = lib.OpenSSL_version
            version_fn.restype = ctypes.c_char_p
            version_fn.argtypes = [ctypes.c_int]
            version = version_fn(0).decode()
            if not version.startswith(("OpenSSL 1.1", "OpenSSL 3")):
                continue  # SHA256_CTX's layout is known (and <= 256 bytes) for these
            return Libcrypto(
                path=path, version=version, lib=lib,
                sha256_init=_address(lib, "SHA256_Init"),
                sha256_update=_address(lib, "SHA256_Update"),
                sha256_final=_address(lib, "SHA256_Final"),
                sha256_transform=_optional_address(lib, "SHA256_Transform"),
            )
        except (OSError, AttributeError):
            continue
    return None


_LOCK = threading.Lock()
_CACHE: list = []


def libcrypto() -> Libcrypto | None:
    """The process's libcrypto (OpenSSL 1.1 or 3), opened once; ``None`` when not available."""
    if not _CACHE:
        with _LOCK:
            if not _CACHE:
                _CACHE.append(None if os.environ.get("FASTENGAGE_NO_LIBCRYPTO") else _open())
    return _CACHE[0]
