"""Float64 columns passed to a kernel by address.

The columns of an Arrow table are separate buffers; gathering them into one matrix before a
kernel costs a copy of every value (and its page faults) before any work. A kernel gets instead
an int64 array of the columns' data addresses (float64, contiguous, kept alive by the caller for
the call) and views column ``j`` with ``column_view(addresses[j], n)``. Used by the bandit
update/decide kernels and the monitor's drift kernel.
"""
import numpy as np
from numba import carray, types
from numba.extending import intrinsic, overload


class _Buffer:
    """Memory at an address, as NumPy's array interface describes it (read-only)."""

    def __init__(self, address, n):
        self.__array_interface__ = {"data": (int(address), True), "shape": (int(n),),
                                    "typestr": "<f8", "version": 3}


def column_view(address, n):
    """The ``n`` float64 values at ``address`` as an array (read, never written). This Python
    body runs under ``NUMBA_DISABLE_JIT``; compiled kernels use the overload below."""
    if n == 0:
        return np.empty(0)
    return np.asarray(_Buffer(address, n))


@intrinsic
def _float64_pointer(typingctx, address):
    if not isinstance(address, types.Integer):
        return None
    sig = types.CPointer(types.float64)(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@overload(column_view)
def _column_view_compiled(address, n):
    def impl(address, n):
        return carray(_float64_pointer(address), n)
    return impl
