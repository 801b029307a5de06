"""Calling C functions by address from Numba kernels, so that a kernel can use OpenSSL's
libcrypto (the SHA-256 and MAC implementations every CPython already links) with the GIL released.

Why not ctypes objects inside the kernels: Numba embeds a ctypes function's address as a
constant, which makes the kernel impossible to cache on disk (a new process would recompile it,
and the address changes from run to run). Here the address is an ordinary ``uint64`` argument,
so the compiled kernel is cached like any other.

Every argument and the return value are passed as 64-bit integers. On x86-64 (System V) and
AArch64, pointers, ``size_t`` and ``int`` arguments all travel in the same 64-bit integer
registers, so this is exact for the functions used here (pointers, sizes, and an ``int`` return
value whose low 32 bits are the result; callers mask it when they need it).
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["call1", "call2", "call3"]

_I64 = ir.IntType(64)


def _caller(n_args):
    def typer(typingctx, address, *args):
        sig = types.uint64(*([types.uint64] * (n_args + 1)))

        def codegen(context, builder, signature, llargs):
            fnty = ir.FunctionType(_I64, [_I64] * n_args)
            fn = builder.inttoptr(llargs[0], fnty.as_pointer())
            return builder.call(fn, list(llargs[1:]))

        return sig, codegen

    return typer


@intrinsic
def call1(typingctx, address, a):
    """``address(a)`` for a C function of one pointer/integer argument."""
    return _caller(1)(typingctx, address, a)


@intrinsic
def call2(typingctx, address, a, b):
    """``address(a, b)``."""
    return _caller(2)(typingctx, address, a, b)


@intrinsic
def call3(typingctx, address, a, b, c):
    """``address(a, b, c)``."""
    return _caller(3)(typingctx, address, a, b, c)
