"""Feature columns passed to a kernel by address.

A policy update reads every feature column of a batch in one pass over row blocks. The columns
are separate Arrow buffers; copying them into one matrix first would write and re-read the
whole input. The kernel gets instead an int64 array of the columns' data addresses (float64,
contiguous, each ``n`` long, kept alive by the caller for the call) and views column ``j`` with
:func:`column_at`. Under ``NUMBA_DISABLE_JIT`` the plain-Python body builds the same view
through NumPy's array interface.
"""
import numpy as np
from numba import carray, types
from numba.extending import intrinsic, overload


class _Memory:
    def __init__(self, address, n):
        self.__array_interface__ = {"data": (int(address), True), "shape": (int(n),),
                                    "typestr": "<f8", "version": 3}


def column_at(addresses, j, n):
    """Column ``j`` (``n`` float64 values at ``addresses[j]``) as a read-only array view."""
    return np.asarray(_Memory(addresses[j], n))


@intrinsic
def _float64_pointer(typingctx, address):
    if not isinstance(address, types.Integer):
        return None
    sig = types.CPointer(types.float64)(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@overload(column_at)
def _column_at_compiled(addresses, j, n):
    def impl(addresses, j, n):
        return carray(_float64_pointer(addresses[j]), n)
    return impl
